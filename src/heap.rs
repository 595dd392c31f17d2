//! What ticketd asks of the memory allocator.

/// Let every thread allocate from one heap.
///
/// glibc gives each thread that allocates at the same time as another a heap of its own (up to
/// eight per core), and each keeps its own free space: with the runtime's worker threads taking
/// turns at the calls of 100,000 tickets, that was 2.6 MiB more resident (BENCHMARKS.md, section
/// 2). ticketd allocates little and mostly from glibc's per-thread caches, which take no lock, so
/// one heap costs it no measurable time. Call before any thread starts. Elsewhere than glibc it
/// does nothing.
pub fn use_one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no thread but this one exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Give the heap's free pages back to the kernel.
///
/// glibc keeps memory that was freed in the middle of its heaps mapped, so the bursts of a big
/// daemon (100,000 tickets refreshed in a few seconds, the calls' buffers, saving the state) would
/// stay in its resident size for good: about 7 MiB at 100,000 tickets (BENCHMARKS.md, section 2).
/// The scheduler calls this after saving the state. Elsewhere than glibc it does nothing.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only changes the allocator's own bookkeeping and mappings.
    unsafe {
        libc::malloc_trim(0);
    }
}
