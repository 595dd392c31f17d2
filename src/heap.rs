//! What ticketd asks of the memory allocator.

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
