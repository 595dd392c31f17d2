//! What ticketd asks of the memory allocator, and of the kernel about its memory.

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

/// The system allocator, zeroing every block before it is freed.
///
/// A token passes through buffers ticketd does not own: hyper's read and write buffers, the
/// TLS library's plaintext buffers, serde's scratch space, the rendered sink contents, the
/// state file's write buffer. Freed, their bytes stay in the heap until something else happens
/// to overwrite them, so a core dump or a read of `/proc/<pid>/mem` found superseded tokens
/// there. Zeroing at the one place every buffer ends up (their free) covers them all, including
/// the ones of other crates. A growing block is moved by hand (new block, copy, zero and free the
/// old one) unless it fits where it is, because the system's `realloc` would free the old copy
/// unzeroed. The secrets themselves live in the secret pool ([`crate::secret::pool`]), which
/// wipes its own slots.
///
/// The cost is a `memset` per free: about 0.1 ms per megabyte freed.
pub struct ZeroOnFree;

/// Zero `len` bytes at `ptr`, in a way the compiler cannot drop as a store to memory about to
/// be freed.
///
/// # Safety
/// `ptr` must be valid for `len` bytes of writes.
unsafe fn zero(ptr: *mut u8, len: usize) {
    // SAFETY: the caller's promise.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    // The pointer escapes into an opaque use: the zeroing above must have happened.
    std::hint::black_box(ptr);
}

// SAFETY: every method hands the system allocator's own answer back, and only writes to blocks
// the caller gives up (dealloc, the tail of a shrinking realloc, the old block of a moved one).
unsafe impl std::alloc::GlobalAlloc for ZeroOnFree {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes the caller gives back.
        unsafe {
            zero(ptr, layout.size());
            std::alloc::System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // (An over-aligned block, or one shrinking below its alignment, is always moved by hand:
        // std's realloc then moves it itself and frees the old copy unzeroed.)
        let plain = layout.align() <= 2 * std::mem::size_of::<usize>() && layout.align() <= new_size;
        if plain && (new_size <= layout.size() || fits_in_place(ptr, new_size)) {
            // Shrinking (the tail given up is zeroed first) or growing within the block: the
            // system keeps the block where it is (glibc never moves a block that fits; one
            // mapped on its own is moved by remapping its pages, which leaves no copy).
            // SAFETY: the tail lies inside the caller's block; then the caller's arguments.
            unsafe {
                if new_size < layout.size() {
                    zero(ptr.add(new_size), layout.size() - new_size);
                }
                return std::alloc::System.realloc(ptr, layout, new_size);
            }
        }
        // SAFETY: GlobalAlloc requires `new_size`, rounded up to `layout.align()`, not to overflow.
        let new_layout = unsafe { std::alloc::Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size (it is larger than the old one).
        let new = unsafe { std::alloc::System.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: two distinct live blocks, the new one larger; the old one is given back once.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Whether the malloc'd block at `ptr` can grow to `new_size` without moving.
fn fits_in_place(ptr: *mut u8, new_size: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `ptr` is a live block from malloc (the system allocator, at this alignment).
        new_size <= unsafe { libc::malloc_usable_size(ptr.cast()) }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (ptr, new_size);
        false
    }
}

/// Whether the kernel may write ticketd's memory to a core file (and let processes of its own
/// user read it through `/proc` and ptrace): the config's `core_dumps`, off by default, since a
/// core dump holds whatever tokens are live. Root's debuggers can still attach.
pub fn set_core_dumps(allowed: bool) -> std::io::Result<()> {
    use rustix::process::DumpableBehavior;
    let behaviour = if allowed { DumpableBehavior::Dumpable } else { DumpableBehavior::NotDumpable };
    rustix::process::set_dumpable_behavior(behaviour).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::*;

    #[test]
    fn zero_on_free_keeps_the_bytes_a_realloc_keeps() {
        let a = ZeroOnFree;
        // SAFETY: blocks taken from `a` and given back to it once, with their layouts.
        unsafe {
            let layout = Layout::from_size_align(64, 8).unwrap();
            let p = a.alloc(layout);
            for i in 0..64 {
                p.add(i).write(i as u8);
            }
            // Grown past any slack: moved by hand.
            let q = a.realloc(p, layout, 1 << 20);
            assert!((0..64).all(|i| q.add(i).read() == i as u8));
            // Shrunk: the head stays.
            let big = Layout::from_size_align(1 << 20, 8).unwrap();
            let r = a.realloc(q, big, 16);
            assert!((0..16).all(|i| r.add(i).read() == i as u8));
            a.dealloc(r, Layout::from_size_align(16, 8).unwrap());
            // An over-aligned block.
            let aligned = Layout::from_size_align(100, 4096).unwrap();
            let s = a.alloc(aligned);
            assert_eq!(s as usize % 4096, 0);
            s.write(7);
            let t = a.realloc(s, aligned, 10_000);
            assert_eq!((t as usize % 4096, t.read()), (0, 7));
            a.dealloc(t, Layout::from_size_align(10_000, 4096).unwrap());
        }
    }
}
