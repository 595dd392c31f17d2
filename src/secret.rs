//! Keeping secrets (keys, tokens, tickets) out of sight: never printed, wiped when dropped, out of core dumps.
//!
//! `Secret` prints as `<redacted>` in `Debug` and `Display`, so a secret that reaches a log line,
//! an error message or a panic by accident shows nothing. The value is reached only through
//! [`Secret::expose`], which makes every real use easy to find. Serde sees the real value: secrets
//! are serialized only into 0600 files (state, sinks) and API answers that exist to hand them out.
//! [`scrub`] cuts secrets out of server text before it reaches an error.
//!
//! How the bytes are stored is this module's alone (no caller sees it or helps it): a pool of
//! slots on pages of their own, wiped when a secret is dropped (`zeroize`) and left out of core
//! dumps (`MADV_DONTDUMP`). The binary's allocator, [`ZeroOnFree`], wipes every other freed block,
//! where copies of secrets pass (HTTP and TLS buffers, rendered sink files). This is the only
//! module with `unsafe` code.
//!
//! # Why a pool
//!
//! A daemon holding 100,000 tickets holds 200,000 secrets of a few hundred bytes each, replaced
//! one by one as tokens are refreshed. On the general heap each would cost an allocation header,
//! and the new ones land between the short-lived buffers of the calls that fetched them, leaving
//! holes that keep the heap big (measured: 15 MiB of 100 MiB at 100,000 tickets, see
//! BENCHMARKS.md). Here each size class (a multiple of 8 bytes) has its own blocks of slots and its
//! own free list (`slots.rs`): a new token of about the old one's length takes the old one's slot,
//! nothing else is ever placed between them, and a slot costs no header. A page on which no slot
//! holds a secret any more is given back to the system (once its size class has 256 KiB of free
//! slots), so when tokens change length, the size class they leave shrinks as the one they enter
//! grows. And only pages of their own can be left out of a core dump while the rest of the
//! process is in it (`core_dumps = true`).

use std::alloc::{GlobalAlloc, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

mod slots;
mod trim;

use slots::{BLOCK, Slots, class_of};
pub use trim::TRIM_AFTER;

/// A secret string, never printed.
///
/// Its bytes are a slot of the secret pool (or, past 2,048 bytes, an allocation of their own),
/// written once when it is made, wiped when it is dropped, and never shared: a clone is a copy.
/// The handle is one word (an address with the length in its high bits): a board record holds
/// two secrets, so at 100,000 tickets an address-and-length pair would cost 1.6 MB more.
pub struct Secret {
    handle: Handle,
}

/// Where a secret's bytes are and how many, in one word on a 64-bit target: the address in the
/// low [`ADDR_BITS`] bits (user space addresses never reach past them: Linux maps higher only
/// when asked to), the length above. A secret of [`LONG`] bytes or more (never a token in
/// practice) keeps its length in a word of its own allocation, before its bytes, and the handle
/// points at that word.
#[derive(Clone, Copy)]
struct Handle(std::num::NonZeroUsize);

#[cfg(target_pointer_width = "64")]
const ADDR_BITS: u32 = 48;
#[cfg(not(target_pointer_width = "64"))]
const ADDR_BITS: u32 = usize::BITS - 1;
/// The length kept in the handle is below this; this value says "kept before the bytes".
const LONG: usize = (1usize << (usize::BITS - ADDR_BITS)) - 1;
/// The word before a long secret's bytes.
const LEN_WORD: usize = std::mem::size_of::<usize>();

impl Handle {
    /// The handle of `len` bytes at `addr` (for a long secret, `len` is [`LONG`] and `addr` its
    /// length word's).
    fn new(addr: usize, len: usize) -> Handle {
        assert!(addr >> ADDR_BITS == 0 && len <= LONG, "a secret's address {addr:#x} fits in {ADDR_BITS} bits");
        let word = addr | (len << ADDR_BITS);
        Handle(std::num::NonZeroUsize::new(word).expect("no secret at address 0"))
    }

    fn addr(self) -> usize {
        self.0.get() & ((1usize << ADDR_BITS) - 1)
    }

    /// The length, or [`LONG`] for a long secret.
    fn short_len(self) -> usize {
        self.0.get() >> ADDR_BITS
    }

    /// The secret's bytes and their length.
    fn parts(self) -> (NonNull<u8>, usize) {
        let at: *mut u8 = std::ptr::with_exposed_provenance_mut(self.addr());
        if self.short_len() < LONG {
            return (NonNull::new(at).expect("a secret's address is not 0"), self.short_len());
        }
        // SAFETY: a long secret's handle points at its allocation's length word (see `Secret::new`),
        // aligned for a usize and written before the handle was made.
        let len = unsafe { at.cast::<usize>().read() };
        // SAFETY: the bytes follow the length word in the same allocation.
        (NonNull::new(unsafe { at.add(LEN_WORD) }).expect("inside an allocation"), len)
    }
}

/// A long secret's allocation: its length word, then its bytes.
fn long_layout(len: usize) -> Layout {
    Layout::from_size_align(LEN_WORD + len, LEN_WORD).expect("a secret of a sane length")
}

// SAFETY: a `Secret` owns its bytes exclusively (no other handle points at its slot until it is
// dropped and the slot freed), and they are never written after `new` returns: moving or sharing
// it between threads is as safe as for a `Box<str>`.
unsafe impl Send for Secret {}
// SAFETY: `&Secret` only ever reads the bytes (see above).
unsafe impl Sync for Secret {}

impl Secret {
    pub fn new(value: impl AsRef<str>) -> Self {
        let value = value.as_ref().as_bytes();
        #[cfg(test)]
        MADE_HERE.with(|made| made.set(made.get() + 1));
        // A process that holds secrets is one whose heap sees bursts: trim it once each is over.
        if ONE_HEAP.load(Ordering::Relaxed) {
            trim::start(trim_heap);
        }
        let len = value.len();
        if len >= LONG {
            let layout = long_layout(len);
            // SAFETY: `layout` has a non-zero size.
            let block = unsafe { std::alloc::alloc(layout) };
            if block.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            // SAFETY: `block` holds the length word (aligned for it) and then `len` bytes.
            unsafe {
                block.cast::<usize>().write(len);
                std::ptr::copy_nonoverlapping(value.as_ptr(), block.add(LEN_WORD), len);
            }
            return Secret { handle: Handle::new(block.expose_provenance(), LONG) };
        }
        let ptr = take(&POOL, len);
        // SAFETY: `take` returned `len` writable bytes that nothing else points at.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), ptr.as_ptr(), len) };
        Secret { handle: Handle::new(ptr.as_ptr().expose_provenance(), len) }
    }

    /// The real value. Call only where the secret is sent, signed or written on purpose.
    pub fn expose(&self) -> &str {
        let (ptr, len) = self.handle.parts();
        // SAFETY: `ptr` points at `len` bytes this secret owns, copied from a `str` in `new` and
        // never written since; they live until `drop`, which needs `&mut self`.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr.as_ptr(), len)) }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length in bytes, for accounting only.
    pub fn len(&self) -> usize {
        self.handle.parts().1
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let (ptr, len) = self.handle.parts();
        if self.handle.short_len() < LONG {
            // SAFETY: the bytes came from `take(&POOL, len)` and are given back once.
            unsafe { give_back(&POOL, ptr, len) };
            return;
        }
        // SAFETY: the secret owns these `len` bytes; `zeroize` writes them in a way the
        // compiler keeps. Then the allocation made in `new` with this layout is freed once.
        unsafe {
            std::slice::from_raw_parts_mut(ptr.as_ptr(), len).zeroize();
            std::alloc::dealloc(ptr.as_ptr().sub(LEN_WORD), long_layout(len));
        }
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret::new(self.expose())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            // Straight from the parser's buffer into the pool: no second copy on the heap.
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
                Ok(Secret::new(value))
            }
        }
        deserializer.deserialize_str(SecretVisitor)
    }
}

/// Longest server-supplied text kept in an error (hostile or huge bodies are cut).
pub const MAX_SERVER_TEXT: usize = 300;

/// Server text made safe to log: at most [`MAX_SERVER_TEXT`] characters, control characters
/// dropped, and any of `secrets` replaced by `<redacted>`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(MAX_SERVER_TEXT).collect();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "<redacted>");
        // A secret cut in half at the end must not leak its first part either. The cuts tried
        // fall between characters only: a secret may hold multi-byte characters (a pasted
        // U+200B, a hostile server's ticket), and cutting inside one would panic with the whole
        // secret in the panic message.
        let cuts = s.char_indices().map(|(at, _)| at).filter(|&at| at >= 4).rev();
        if let Some(kept) = cuts.filter_map(|at| s.get(..at)).find_map(|prefix| out.strip_suffix(prefix).map(str::len))
        {
            out.truncate(kept);
            out.push_str("<redacted>");
        }
    }
    out
}

/// A JSON error said without the values it may quote. serde's own text quotes a value of the
/// wrong type (``invalid type: string "eyJ…", expected u64``), and the JSON ticketd reads (API
/// answers, the state file) holds tokens and tickets: this says only what kind of error it was
/// and where.
pub fn json_error_without_values(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "a read error",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "a value of the wrong type or a missing field",
        serde_json::error::Category::Eof => "the text ends too early",
    };
    format!("{kind} at line {}, column {}", e.line(), e.column())
}

#[cfg(test)]
thread_local! {
    static MADE_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Secrets made on this thread so far: tests check that a reader copies none.
#[cfg(test)]
pub(crate) fn made_here() -> usize {
    MADE_HERE.with(std::cell::Cell::get)
}

/// Where every `Secret`'s bytes live.
static POOL: LazyLock<Mutex<Slots>> = LazyLock::new(|| Mutex::new(Slots::new(rustix::param::page_size())));

fn lock(pool: &Mutex<Slots>) -> MutexGuard<'_, Slots> {
    // The lists are consistent between statements: a panic elsewhere cannot leave them
    // half-changed, so a poisoned lock is safe to keep using.
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `len` writable bytes from `pool` that nothing else points at.
fn take(pool: &Mutex<Slots>, len: usize) -> NonNull<u8> {
    let Some(class) = class_of(len) else {
        if len == 0 {
            return NonNull::dangling();
        }
        let layout = Layout::array::<u8>(len).expect("a secret of a sane length");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        return NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
    };
    let addr = lock(pool).take(class, map_block);
    NonNull::new(std::ptr::with_exposed_provenance_mut(addr)).expect("slots are never at address 0")
}

/// Wipe the `len` bytes at `ptr` and make their slot free for the next secret.
///
/// # Safety
/// `ptr` must come from `take(pool, len)` with this very pool and `len`, and be given back once.
unsafe fn give_back(pool: &Mutex<Slots>, ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller owns these `len` bytes (none when `len` is 0: a dangling pointer is
    // valid for an empty slice). `zeroize` writes them in a way the compiler keeps.
    unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) }.zeroize();
    match class_of(len) {
        Some(class) => lock(pool).free(class, ptr.as_ptr().expose_provenance(), release_page),
        None if len == 0 => {}
        None => {
            let layout = Layout::array::<u8>(len).expect("the layout it was taken with");
            // SAFETY: allocated in `take` with this layout.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
        }
    }
}

/// A fresh block, mapped straight from the kernel: its pages cost memory only once slots in them
/// are used, it sits between no other allocations (a block taken from the heap would leave the
/// heap's own free space in pieces around it), and it is kept out of core dumps.
fn map_block() -> usize {
    use rustix::mm::{Advice, MapFlags, ProtFlags};
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory.
    let mapped = unsafe {
        rustix::mm::mmap_anonymous(std::ptr::null_mut(), BLOCK, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)
    };
    let block = mapped.unwrap_or_else(|_| {
        std::alloc::handle_alloc_error(Layout::from_size_align(BLOCK, slots::GRAIN).expect("a valid block layout"))
    });
    // SAFETY: advice on the mapping just made; failing (an old kernel) changes nothing.
    let _ = unsafe { rustix::mm::madvise(block, BLOCK, Advice::LinuxDontDump) };
    block.expose_provenance()
}

/// Give the page at `addr` back to the system: it reads back as zeros, and costs memory again
/// only once a slot on it is reused.
fn release_page(addr: usize) {
    let page = rustix::param::page_size();
    // SAFETY: the page lies inside a block the pool mapped (and never unmaps), and every slot
    // that touches it is free and wiped: dropping its contents loses nothing. Failing changes
    // nothing but the memory held.
    let _ = unsafe {
        rustix::mm::madvise(std::ptr::with_exposed_provenance_mut(addr), page, rustix::mm::Advice::LinuxDontNeed)
    };
}

/// Whether the kernel may write ticketd's memory to a core file (and let processes of its own
/// user read it through `/proc` and ptrace): the config's `core_dumps`, off by default, since a
/// core dump holds whatever tokens are live. Root's debuggers can still attach. Even when allowed,
/// the pool's pages stay out of the dump.
pub fn set_core_dumps(allowed: bool) -> std::io::Result<()> {
    use rustix::process::DumpableBehavior;
    let behaviour = if allowed { DumpableBehavior::Dumpable } else { DumpableBehavior::NotDumpable };
    rustix::process::set_dumpable_behavior(behaviour).map_err(std::io::Error::from)
}

/// The binary's allocator: the system's, zeroing every block before it is freed, on one heap,
/// whose free pages go back to the kernel as calls free them.
///
/// A token passes through buffers ticketd does not own: hyper's read and write buffers, the
/// TLS library's plaintext buffers, serde's scratch space, the rendered sink contents, the
/// state file's write buffer. Freed, their bytes stay in the heap until something else happens
/// to overwrite them, so a core dump or a read of `/proc/<pid>/mem` found superseded tokens
/// there. Zeroing at the one place every buffer ends up (their free) covers them all, including
/// the ones of other crates. A growing block is moved by hand (new block, copy, zero and free the
/// old one) unless it fits where it is, because the system's `realloc` would free the old copy
/// unzeroed. The cost is a `memset` per free: about 0.1 ms per megabyte freed.
///
/// With glibc, two memory policies of a big daemon sit here too, where every allocation passes,
/// so that no caller has to remember them (BENCHMARKS.md, section 2):
/// - One heap for every thread (`M_ARENA_MAX` 1, set before the first block): glibc's per-thread
///   heaps each kept their own free space, 2.7 MiB more resident at 100,000 tickets.
/// - Once a burst of frees is over, the heap's free pages go back to the kernel (`malloc_trim`):
///   glibc keeps memory freed in the middle of its heap mapped, so the bursts of a big daemon
///   (100,000 tickets refreshed in seconds, the calls' buffers, saving the state) would stay
///   resident for good (4.2 MiB at 100,000 tickets). The allocator only counts what it frees; a
///   thread of its own, started with the first secret, trims when half a second passes with
///   (almost) no free, or every [`TRIM_AFTER`] bytes during a longer burst (`trim.rs`). An idle daemon frees
///   nothing and wakes nothing. (A process that makes no secret trims on the freeing thread,
///   every [`TRIM_AFTER`] bytes.)
pub struct ZeroOnFree;

static ONE_HEAP: AtomicBool = AtomicBool::new(false);

impl ZeroOnFree {
    fn first_block() {
        if !ONE_HEAP.swap(true, Ordering::Relaxed) {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: mallopt only sets an allocator parameter; it allocates nothing through us.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
    }

    fn freed(bytes: usize) {
        if trim::freed(bytes) {
            trim_heap();
        }
    }
}

/// Give the heap's free pages back to the kernel.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only changes the allocator's own bookkeeping and mappings, and
    // allocates nothing through us; no block of ours is held half-freed here.
    unsafe {
        libc::malloc_trim(0);
    }
}

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
unsafe impl GlobalAlloc for ZeroOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::first_block();
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::first_block();
        // SAFETY: as above.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes the caller gives back.
        unsafe {
            zero(ptr, layout.size());
            std::alloc::System.dealloc(ptr, layout);
        }
        Self::freed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
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
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(<redacted>)");
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn scrub_removes_secrets_and_cuts_long_text() {
        assert_eq!(scrub("ticket eyJabc.def is bad", &["eyJabc.def"]), "ticket <redacted> is bad");
        let long = format!("{}eyJsecret", "x".repeat(MAX_SERVER_TEXT - 5));
        let out = scrub(&long, &["eyJsecret"]);
        assert!(!out.contains("eyJs"), "{out}");
        assert_eq!(scrub("a\nb\u{7}c", &[]), "abc");
    }

    /// Issue #16 item 1: a secret with a multi-byte character made `scrub` cut inside it, and
    /// the panic message carried the whole secret.
    #[test]
    fn issue_16_secrets_with_multi_byte_characters_are_scrubbed_without_panicking() {
        for secret in
            ["LTAI5t\u{200b}Secret", "s\u{e9}cr\u{e9}t-key", "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}", "abc\u{1f600}def"]
        {
            let answer = format!("the ticket {secret} is invalid");
            let out = std::panic::catch_unwind(|| scrub(&answer, &[secret])).expect("scrub never panics");
            assert_eq!(out, "the ticket <redacted> is invalid");
            // Every prefix of the secret (cut between characters) left at the end of the text.
            for (at, _) in secret.char_indices().filter(|&(at, _)| at >= 4) {
                let cut = format!("answer: {}", &secret[..at]);
                let out = std::panic::catch_unwind(|| scrub(&cut, &[secret])).expect("no panic");
                assert_eq!(out, "answer: <redacted>", "prefix of {at} bytes");
            }
            // An answer that does not mention the secret at all (the hostile case: any error).
            assert_eq!(scrub("the ticket is invalid", &[secret]), "the ticket is invalid");
        }
    }

    #[test]
    fn issue_16_json_errors_never_quote_a_value() {
        let e = serde_json::from_str::<u64>(r#""eyJsecret-token""#).unwrap_err();
        assert!(e.to_string().contains("eyJsecret-token"), "serde's own text quotes it: {e}");
        let said = json_error_without_values(&e);
        assert_eq!(said, "a value of the wrong type or a missing field at line 1, column 17");
        let e = serde_json::from_str::<serde_json::Value>(r#"{"a": "eyJsecret"#).unwrap_err();
        assert!(!json_error_without_values(&e).contains("eyJ"));
    }

    #[test]
    fn serde_round_trips_the_real_value() {
        let secret = Secret::new("abc");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"abc\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, secret);
    }

    #[test]
    fn every_length_round_trips_pooled_or_not() {
        assert_eq!(size_of::<Secret>(), size_of::<usize>(), "a secret's handle is one word");
        assert_eq!(size_of::<Option<Secret>>(), size_of::<usize>(), "and leaves a niche for `None`");
        for len in [0, 1, 15, 16, 17, 200, 2047, 2048, 2049, 10_000, LONG - 1, LONG, LONG + 1, 200_000] {
            let value: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let secret = Secret::new(&value);
            assert_eq!(secret.expose(), value);
            assert_eq!(secret.len(), len);
            assert_eq!(secret.is_empty(), len == 0);
            let copy = secret.clone();
            drop(secret);
            assert_eq!(copy.expose(), value, "a clone owns its own bytes");
        }
    }

    /// A pool of its own: what a test takes and gives back here, no other test sees.
    fn local_pool() -> Mutex<Slots> {
        Mutex::new(Slots::new(rustix::param::page_size()))
    }

    /// The `len` bytes at `ptr`, in pool memory (blocks are never unmapped, so they stay readable).
    fn bytes<'a>(ptr: NonNull<u8>, len: usize) -> &'a [u8] {
        // SAFETY: a slot in a pool block, which stays mapped; nothing writes it meanwhile.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) }
    }

    fn fill(ptr: NonNull<u8>, len: usize, byte: u8) {
        // SAFETY: `len` bytes this test took from its pool and has not given back.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), byte, len) }
    }

    #[test]
    fn a_slot_given_back_is_wiped_and_taken_again() {
        let pool = local_pool();
        let first = take(&pool, 200);
        fill(first, 200, b'x');
        // SAFETY: taken from `pool` with this length, given back once.
        unsafe { give_back(&pool, first, 200) };
        assert!(bytes(first, 200).iter().all(|&b| b == 0), "the bytes of a given-back slot are zeroed");
        let second = take(&pool, 195);
        assert_eq!(second, first, "a secret of the same size class takes the freed slot");
        // SAFETY: as above.
        unsafe { give_back(&pool, second, 195) };
    }

    #[test]
    fn a_dropped_secret_no_longer_holds_its_value() {
        // A value no other test makes: whatever takes the slot meanwhile cannot write it back.
        let value = format!("dropped-{:?}-{}", std::thread::current().id(), std::process::id());
        let secret = Secret::new(&value);
        let (ptr, len) = secret.handle.parts();
        drop(secret);
        assert_ne!(bytes(ptr, len), value.as_bytes(), "the slot was wiped");
    }

    #[test]
    fn a_secret_dropped_in_the_global_pool_leaves_its_slot_all_zeros() {
        // Through `Secret`'s own drop, on the pool every secret uses. Under the pool's lock, a
        // slot still on its free list holds no secret (taking one needs the lock, and its taker
        // writes it only after), so each of its bytes is the wipe's, whatever other tests do.
        // Another test may have taken the slot by then: try again, a bounded number of times.
        for attempt in 0..200 {
            let value = format!("wiped-{attempt}-{:?}-{}", std::thread::current().id(), std::process::id());
            let secret = Secret::new(&value);
            let (ptr, len) = secret.handle.parts();
            drop(secret);
            let pool = lock(&POOL);
            if pool.is_free(class_of(len).expect("a pooled length"), ptr.as_ptr().expose_provenance()) {
                assert!(bytes(ptr, len).iter().all(|&b| b == 0), "a dropped secret's slot is all zeros");
                return;
            }
        }
        panic!("other tests took the freed slot before it could be read, 200 times");
    }

    #[test]
    fn a_page_left_with_no_secret_goes_back_to_the_system_and_comes_back_as_zeros() {
        use std::collections::HashSet;
        let pool = local_pool();
        let (len, page) = (1500, rustix::param::page_size());
        let held: Vec<NonNull<u8>> = (0..600).map(|_| take(&pool, len)).collect();
        held.iter().for_each(|&p| fill(p, len, 0xab));
        let addr = |p: NonNull<u8>| p.as_ptr().expose_provenance();
        let pages_of = |p: NonNull<u8>| (addr(p) / page)..=((addr(p) + len - 1) / page);
        let kept_pages: HashSet<usize> = held.iter().step_by(20).flat_map(|&p| pages_of(p)).collect();
        let empty_pages: HashSet<usize> =
            held.iter().flat_map(|&p| pages_of(p)).filter(|p| !kept_pages.contains(p)).collect();
        assert!(empty_pages.len() > 150 && empty_pages.iter().all(|&p| resident(p * page)), "in use, resident");
        let (kept, freed): (Vec<_>, Vec<_>) = held.into_iter().enumerate().partition(|(i, _)| i % 20 == 0);
        // SAFETY: each taken from `pool` with `len`, given back once.
        freed.iter().for_each(|&(_, p)| unsafe { give_back(&pool, p, len) });
        assert!(kept_pages.iter().all(|&p| resident(p * page)), "pages with a secret on them stay");
        // Pages emptied before the class had 256 KiB free stay; every later one is given back.
        let given_back = empty_pages.iter().filter(|&&p| !resident(p * page)).count();
        let kept_back = slots::RELEASE_AFTER.div_ceil(page) + 1;
        assert!(given_back + kept_back >= empty_pages.len(), "{given_back} of {} given back", empty_pages.len());
        assert!(kept.iter().all(|&(_, p)| bytes(p, len).iter().all(|&b| b == 0xab)), "kept secrets are intact");
        // The freed slots are taken again (no new block), reading as zeros.
        let freed_at: HashSet<usize> = freed.iter().map(|&(_, p)| addr(p)).collect();
        let again: Vec<NonNull<u8>> = (0..freed.len()).map(|_| take(&pool, len)).collect();
        assert!(again.iter().all(|&p| freed_at.contains(&addr(p))), "every slot taken again was a freed one");
        assert!(again.iter().all(|&p| bytes(p, len).iter().all(|&b| b == 0)));
        assert_eq!(lock(&pool).reserved(), BLOCK);
    }

    #[test]
    fn a_class_with_few_free_slots_keeps_its_pages() {
        // Ten secrets taken and given back in turn (like the calls of a small daemon) never give
        // their pages back only to fault them in again.
        let pool = local_pool();
        let held: Vec<NonNull<u8>> = (0..10).map(|_| take(&pool, 1700)).collect();
        held.iter().for_each(|&p| fill(p, 1700, b'k'));
        // SAFETY: each taken from `pool` with this length, given back once.
        held.iter().for_each(|&p| unsafe { give_back(&pool, p, 1700) });
        assert!(held.iter().all(|&p| resident(p.as_ptr().expose_provenance())), "the pages stay resident");
    }

    #[test]
    fn the_pool_is_left_out_of_core_dumps() {
        let pool = local_pool();
        let slot = take(&pool, 64);
        let at = slot.as_ptr().expose_provenance();
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let mut in_block = false;
        let mut flags = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ').filter(|(r, _)| r.contains('-')) {
                let (lo, hi) = range.split_once('-').expect("a range");
                let (lo, hi) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16));
                in_block = matches!((lo, hi), (Ok(lo), Ok(hi)) if lo <= at && at < hi);
            } else if let Some(f) = line.strip_prefix("VmFlags:").filter(|_| in_block) {
                flags = Some(f.split_whitespace().map(str::to_string).collect::<Vec<_>>());
            }
        }
        let flags = flags.expect("the block is mapped");
        assert!(flags.iter().any(|f| f == "dd"), "MADV_DONTDUMP: VmFlags {flags:?}");
        // SAFETY: taken from `pool` with this length, given back once.
        unsafe { give_back(&pool, slot, 64) };
    }

    /// Whether the page holding pool address `addr` is in memory.
    fn resident(addr: usize) -> bool {
        let page = rustix::param::page_size();
        let mut state = 0u8;
        let start: *mut libc::c_void = std::ptr::with_exposed_provenance_mut(addr / page * page);
        // SAFETY: the page lies in a pool block, which stays mapped; mincore only reads.
        assert_eq!(unsafe { libc::mincore(start, page, &mut state) }, 0);
        state & 1 == 1
    }

    #[test]
    fn threads_taking_and_dropping_secrets_never_see_each_others_bytes() {
        let workers: Vec<_> = (0..4u8)
            .map(|worker| {
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..5_000usize {
                        let len = 1 + (i * 7 + usize::from(worker) * 13) % 300;
                        let fill = char::from(b'a' + worker);
                        held.push((Secret::new(fill.to_string().repeat(len)), fill, len));
                        if i % 3 == 0 {
                            held.swap_remove(i % held.len());
                        }
                    }
                    for (secret, fill, len) in &held {
                        assert_eq!(secret.len(), *len);
                        assert!(secret.expose().chars().all(|c| c == *fill));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("no worker panicked");
        }
        assert!(lock(&POOL).reserved() > 0);
    }

    #[test]
    fn a_secret_read_from_json_goes_straight_into_the_pool() {
        let back: Secret = serde_json::from_reader(&b"\"from a reader\""[..]).unwrap();
        assert_eq!(back.expose(), "from a reader");
        let escaped: Secret = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(escaped.expose(), "a\"b");
    }

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
