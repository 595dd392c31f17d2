//! A redacting wrapper for keys, tokens and tickets, held in memory of their own.
//!
//! `Secret` prints as `<redacted>` in `Debug` and `Display`, so a secret that reaches a log line,
//! an error message or a panic by accident shows nothing. The value is reached only through
//! [`Secret::expose`], which makes every real use easy to find. Serde sees the real value: secrets
//! are serialized only into 0600 files (state, sinks) and API answers that exist to hand them out.
//!
//! The bytes live in the secret pool (see [`pool`]), apart from the rest of the heap, and are wiped
//! when the secret is dropped.

use std::fmt;
use std::ptr::NonNull;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string, never printed.
///
/// Its bytes are a slot of the secret pool (or, past [`pool::MAX_POOLED`] bytes, an allocation of
/// their own), written once when it is made, wiped when it is dropped, and never shared: a clone
/// is a copy.
pub struct Secret {
    ptr: NonNull<u8>,
    len: usize,
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
        let ptr = pool::take(value.len());
        // SAFETY: `take` returned `len` writable bytes that nothing else points at.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), ptr.as_ptr(), value.len()) };
        Secret { ptr, len: value.len() }
    }

    /// The real value. Call only where the secret is sent, signed or written on purpose.
    pub fn expose(&self) -> &str {
        // SAFETY: `ptr` points at `len` bytes this secret owns, copied from a `str` in `new` and
        // never written since; they live until `drop`, which needs `&mut self`.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr.as_ptr(), self.len)) }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length in bytes, for accounting only.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Move the bytes into the lowest free slot of their size class, when one lies below theirs.
    /// The daemon does this to every secret it holds when the pool is [scattered](pool::scattered),
    /// so the secrets gather in the low slots and the high pages, left empty, go back to the
    /// system. True if the secret moved.
    pub fn settle(&mut self) -> bool {
        // SAFETY: `ptr` came from `pool::take(self.len)` and is still this secret's; `&mut self`
        // means nothing reads it meanwhile.
        match unsafe { pool::move_down(self.ptr, self.len) } {
            Some(lower) => {
                self.ptr = lower;
                true
            }
            None => false,
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: the slot came from `pool::take(self.len)` and is given back once.
        unsafe { pool::give_back(self.ptr, self.len) }
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

/// Where secrets' bytes live.
///
/// A daemon holding 100,000 tickets holds 200,000 secrets of a few hundred bytes each, replaced
/// one by one as tokens are refreshed. On the general heap each would cost an allocation header,
/// and the new ones land between the short-lived buffers of the calls that fetched them, leaving
/// holes that keep the heap big (measured: 15 MiB of 100 MiB at 100,000 tickets, see
/// BENCHMARKS.md). Here each size class (a multiple of [`GRAIN`](pool::GRAIN) bytes) has its own
/// blocks of slots and its own free list: a new token of about the old one's length takes the old
/// one's slot, nothing else is ever placed between them, and a slot costs no header.
///
/// Blocks stay mapped, but a page on which no slot holds a secret any more is given back to the
/// system (once its size class has 256 KiB of free slots), and costs memory again only when a
/// slot on it is reused. So when tokens change length (a serial number in them gains a digit),
/// the size class they leave shrinks as the one they enter grows, instead of both staying as big
/// as they ever were (measured: 11 MiB at 100,000 tickets). A class hands out its lowest free slot
/// first, and while the tokens leave it, the daemon moves the ones still there down into the
/// holes the others left ([`Secret::settle`]), so its pages empty from the top instead of all at
/// once at the end. Freed slots are wiped first, so a dropped token does not linger in memory,
/// and blocks are left out of core dumps.
pub mod pool {
    use std::alloc::Layout;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::ptr::NonNull;
    use std::sync::Mutex;

    /// Slot sizes are multiples of this.
    pub const GRAIN: usize = 8;
    /// Longer secrets (rare: a TCR long-term password is about 1,000 bytes) get an allocation of
    /// their own.
    pub const MAX_POOLED: usize = 2048;
    /// Slots are cut from blocks of this size. A block's pages cost memory only once used, so the
    /// part of a block not yet cut costs nothing.
    const BLOCK: usize = 1024 * 1024;
    const CLASSES: usize = MAX_POOLED / GRAIN;
    /// A size class gives empty pages back only while this many bytes of its slots are free.
    pub(super) const RELEASE_AFTER: usize = 256 * 1024;
    /// The pool is [`scattered`] when its pages that hold a secret have at least this many bytes
    /// of free slots, and at least 1/[`SCATTER_SHARE`] of the bytes the secrets fill.
    const SCATTER_MIN: usize = 512 * 1024;
    const SCATTER_SHARE: usize = 64;

    /// One size class: slots freed for reuse, lowest address first, and the uncut rest of its
    /// newest block. Addresses are kept as integers so the pool can sit in a `static`.
    struct Class {
        free: BinaryHeap<Reverse<usize>>,
        next: usize,
        end: usize,
    }

    /// A block, and how many slots holding a secret touch each of its pages: a page whose count
    /// drops to zero holds nothing but wiped free slots, and is given back.
    struct Block {
        base: usize,
        live: Box<[u16]>,
    }

    struct Pool {
        classes: [Class; CLASSES],
        /// Every block, by address.
        blocks: Vec<Block>,
        /// Bytes in blocks (for the accounting tests).
        reserved: usize,
        /// Bytes of the slots holding a secret, and pages with at least one such slot on them.
        live_bytes: usize,
        live_pages: usize,
    }

    static POOL: Mutex<Pool> = Mutex::new(Pool {
        classes: [const { Class { free: BinaryHeap::new(), next: 0, end: 0 } }; CLASSES],
        blocks: Vec::new(),
        reserved: 0,
        live_bytes: 0,
        live_pages: 0,
    });

    /// The system's page size.
    pub(super) fn page_size() -> usize {
        static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        // SAFETY: sysconf reads a constant of the system.
        *PAGE.get_or_init(|| usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096))
    }

    impl Pool {
        /// A new block for size class `class`, its slots still uncut.
        fn add_block(&mut self, class: usize) {
            let base = map_block();
            let at = self.blocks.partition_point(|b| b.base < base);
            let live = vec![0; BLOCK.div_ceil(page_size())].into_boxed_slice();
            self.blocks.insert(at, Block { base, live });
            self.reserved += BLOCK;
            let class = &mut self.classes[class];
            class.next = base;
            class.end = base + BLOCK;
        }

        /// The block holding the slot of `size` bytes at `addr`, and the pages the slot touches.
        fn pages_of(&mut self, addr: usize, size: usize) -> (&mut Block, std::ops::RangeInclusive<usize>) {
            let page = page_size();
            let at = self.blocks.partition_point(|b| b.base <= addr) - 1;
            let block = &mut self.blocks[at];
            let pages = (addr - block.base) / page..=(addr + size - 1 - block.base) / page;
            (block, pages)
        }

        /// Count the slot of `size` bytes at `addr` as holding a secret.
        fn slot_taken(&mut self, addr: usize, size: usize) {
            let (block, pages) = self.pages_of(addr, size);
            let mut newly_live = 0;
            for p in pages {
                newly_live += usize::from(block.live[p] == 0);
                block.live[p] += 1;
            }
            self.live_pages += newly_live;
            self.live_bytes += size;
        }

        /// Count the slot of `size` bytes at `addr` as free again; when `release`, a page left
        /// with no secret on it is given back to the system.
        fn slot_freed(&mut self, addr: usize, size: usize, release: bool) {
            self.live_bytes -= size;
            let (block, pages) = self.pages_of(addr, size);
            let mut emptied = 0;
            for p in pages {
                block.live[p] -= 1;
                emptied += usize::from(block.live[p] == 0);
                if block.live[p] == 0 && release {
                    let start: *mut libc::c_void = std::ptr::with_exposed_provenance_mut(block.base + p * page_size());
                    // SAFETY: the page lies inside a block this pool mapped, and every slot that
                    // touches it is free and wiped: dropping its contents (it reads back as
                    // zeros) loses nothing. Failing changes nothing but the memory held.
                    unsafe { libc::madvise(start, page_size(), libc::MADV_DONTNEED) };
                }
            }
            self.live_pages -= emptied;
        }

        /// The lowest free slot of size class `class`, counted as holding a secret.
        fn take_slot(&mut self, class: usize) -> usize {
            let size = (class + 1) * GRAIN;
            let addr = match self.classes[class].free.pop() {
                Some(Reverse(addr)) => addr,
                None => {
                    if self.classes[class].next + size > self.classes[class].end {
                        self.add_block(class);
                    }
                    let class = &mut self.classes[class];
                    class.next += size;
                    class.next - size
                }
            };
            self.slot_taken(addr, size);
            addr
        }

        /// Make the wiped slot at `addr` of size class `class` free for the next secret.
        fn free_slot(&mut self, class: usize, addr: usize) {
            let size = (class + 1) * GRAIN;
            self.classes[class].free.push(Reverse(addr));
            // Only a class with plenty of free slots gives pages back: one that holds a few
            // secrets, taken and dropped in turn, would otherwise give back and fault in the
            // same page for each of them.
            let release = self.classes[class].free.len() * size >= RELEASE_AFTER;
            self.slot_freed(addr, size, release);
        }
    }

    fn lock() -> std::sync::MutexGuard<'static, Pool> {
        // The pool's lists are consistent between statements: a panic elsewhere cannot leave
        // them half-changed, so a poisoned lock is safe to keep using.
        POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot size for `len` bytes, when pooled.
    fn class_of(len: usize) -> Option<usize> {
        (len > 0 && len <= MAX_POOLED).then(|| len.div_ceil(GRAIN) - 1)
    }

    #[cfg(test)]
    thread_local! {
        static TAKEN_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Secrets made on this thread so far: tests check that a reader copies none.
    #[cfg(test)]
    pub fn taken_here() -> usize {
        TAKEN_HERE.with(std::cell::Cell::get)
    }

    /// `len` writable bytes that nothing else points at.
    pub(super) fn take(len: usize) -> NonNull<u8> {
        #[cfg(test)]
        TAKEN_HERE.with(|taken| taken.set(taken.get() + 1));
        let Some(class) = class_of(len) else {
            if len == 0 {
                return NonNull::dangling();
            }
            let layout = Layout::array::<u8>(len).expect("a secret of a sane length");
            // SAFETY: `layout` has a non-zero size.
            let ptr = unsafe { std::alloc::alloc(layout) };
            return NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        };
        let addr = lock().take_slot(class);
        NonNull::new(std::ptr::with_exposed_provenance_mut(addr)).expect("slots are never at address 0")
    }

    /// A fresh block, mapped straight from the kernel: its pages cost memory only once slots in
    /// them are used, it sits between no other allocations (a block taken from the heap would
    /// leave the heap's own free space in pieces around it), and it is kept out of core dumps.
    fn map_block() -> usize {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory.
        let block = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BLOCK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if block == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(Layout::from_size_align(BLOCK, GRAIN).expect("a valid block layout"));
        }
        // SAFETY: advice on the mapping just made; failing (an old kernel) changes nothing.
        unsafe { libc::madvise(block, BLOCK, libc::MADV_DONTDUMP) };
        block.expose_provenance()
    }

    /// Wipe the `len` bytes at `ptr` and make their slot free for the next secret.
    ///
    /// # Safety
    /// `ptr` must come from `take(len)` with this very `len`, and be given back once.
    pub(super) unsafe fn give_back(ptr: NonNull<u8>, len: usize) {
        // SAFETY: the caller owns these `len` bytes.
        unsafe { wipe(ptr, len) };
        match class_of(len) {
            Some(class) => lock().free_slot(class, ptr.as_ptr().expose_provenance()),
            None if len == 0 => {}
            None => {
                let layout = Layout::array::<u8>(len).expect("the layout it was taken with");
                // SAFETY: allocated in `take` with this layout.
                unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
            }
        }
    }

    /// Zero the `len` bytes at `ptr`. Volatile, so the wipe is not optimised away as a write to
    /// memory about to be freed.
    ///
    /// # Safety
    /// The caller owns these `len` bytes.
    unsafe fn wipe(ptr: NonNull<u8>, len: usize) {
        for i in 0..len {
            // SAFETY: within the `len` bytes the caller owns.
            unsafe { ptr.as_ptr().add(i).write_volatile(0) };
        }
    }

    /// The `len` bytes at `ptr` moved into the lowest free slot of their size class, when that
    /// lies below `ptr`, and their old slot wiped and freed. `None` (nothing moved) otherwise, and
    /// for secrets that are not pooled.
    ///
    /// # Safety
    /// `ptr` must come from `take(len)` with this very `len`, not given back yet, and nothing may
    /// read it meanwhile. On `Some`, the caller uses the new slot in its place.
    pub(super) unsafe fn move_down(ptr: NonNull<u8>, len: usize) -> Option<NonNull<u8>> {
        let class = class_of(len)?;
        let from = ptr.as_ptr().expose_provenance();
        let mut pool = lock();
        let &Reverse(lowest) = pool.classes[class].free.peek()?;
        if lowest >= from {
            return None;
        }
        let to = pool.take_slot(class);
        let lower = NonNull::new(std::ptr::with_exposed_provenance_mut(to)).expect("slots are never at address 0");
        // SAFETY: two distinct slots of one class (so they do not overlap), both `len` bytes or
        // more: the old one the caller's, the new one just taken; the old one is then wiped and
        // freed once, under the same lock.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.as_ptr(), lower.as_ptr(), len);
            wipe(ptr, len);
        }
        pool.free_slot(class, from);
        Some(lower)
    }

    /// The pages that hold secrets have many bytes of free slots between them: at least 512 KiB,
    /// and 1/64 of the bytes the secrets fill. Then moving the secrets down
    /// ([`Secret::settle`](super::Secret::settle)) empties pages that can go back to the system.
    pub fn scattered() -> bool {
        let pool = lock();
        let gaps = (pool.live_pages * page_size()).saturating_sub(pool.live_bytes);
        gaps >= SCATTER_MIN && gaps >= pool.live_bytes / SCATTER_SHARE
    }

    /// Bytes the pool holds in blocks, and how many slots are free.
    pub fn usage() -> (usize, usize) {
        let pool = lock();
        (pool.reserved, pool.classes.iter().map(|c| c.free.len()).sum())
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
        for len in [0, 1, 15, 16, 17, 200, 2047, 2048, 2049, 10_000] {
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

    #[test]
    fn a_dropped_secret_is_wiped_and_its_slot_reused() {
        // A length no other test uses, so no other thread takes this slot in between.
        let len = 2030;
        let first = Secret::new("x".repeat(len));
        let slot = first.ptr;
        drop(first);
        // SAFETY: pool blocks are never freed, so the slot is still readable memory.
        let after = unsafe { std::slice::from_raw_parts(slot.as_ptr(), len) };
        assert!(after.iter().all(|&b| b == 0), "the bytes of a dropped secret are zeroed");
        let second = Secret::new("y".repeat(len - 5));
        assert_eq!(second.ptr, slot, "a secret of the same size class takes the freed slot");
        assert_eq!(second.expose(), "y".repeat(len - 5));
    }

    #[test]
    fn a_page_left_with_no_secret_goes_back_to_the_system_and_is_reused() {
        use std::collections::{BTreeSet, HashSet};
        // A length no other test uses: this size class is this test's alone.
        let len = 1500;
        let page = pool::page_size();
        let held: Vec<Secret> = (0..600).map(|i| Secret::new(format!("{i:0>len$}"))).collect();
        let slots: Vec<usize> = held.iter().map(|s| s.ptr.as_ptr().expose_provenance()).collect();
        let pages_of = |slot: usize| (slot / page)..=((slot + len - 1) / page);
        let resident = |p: usize| resident(p * page);
        // Keep one secret in twenty: the pages between them will hold only freed slots.
        let kept_pages: HashSet<usize> = slots.iter().step_by(20).flat_map(|&slot| pages_of(slot)).collect();
        let free_pages: BTreeSet<usize> =
            slots.iter().flat_map(|&slot| pages_of(slot)).filter(|p| !kept_pages.contains(p)).collect();
        assert!(free_pages.len() > 150, "{} pages", free_pages.len());
        assert!(free_pages.iter().all(|&p| resident(p)), "in use, every page is resident");
        let (kept, dropped): (Vec<_>, Vec<_>) = held.into_iter().enumerate().partition(|(i, _)| i % 20 == 0);
        let freed_slots: HashSet<usize> = dropped.iter().map(|(_, s)| s.ptr.as_ptr().expose_provenance()).collect();
        let freed = dropped.len();
        drop(dropped);
        assert!(kept_pages.iter().all(|&p| resident(p)), "pages with a secret on them stay");
        // Pages emptied before the class had 256 KiB free stay; every later one is given back.
        let given_back = free_pages.iter().filter(|&&p| !resident(p)).count();
        let kept_back = pool::RELEASE_AFTER.div_ceil(page) + 1;
        assert!(given_back + kept_back >= free_pages.len(), "{given_back} of {} pages given back", free_pages.len());
        assert!(kept.iter().all(|(i, s)| s.expose() == format!("{i:0>len$}")), "kept secrets are intact");
        // The freed slots are taken again (no new block), and hold what is written to them. Checked
        // by address in this test's own size class: the pool's total is shared with tests running
        // beside this one, which may take a block of another class meanwhile.
        let again: Vec<Secret> = (0..freed).map(|i| Secret::new(format!("{i:x>len$}"))).collect();
        let reused = again.iter().filter(|s| freed_slots.contains(&s.ptr.as_ptr().expose_provenance())).count();
        assert_eq!(reused, freed, "every secret took a freed slot (no new block)");
        assert!(again.iter().enumerate().all(|(i, s)| s.expose() == format!("{i:x>len$}")));
    }

    #[test]
    fn a_class_with_few_free_slots_keeps_its_pages() {
        // A length no other test uses. Ten secrets taken and dropped in turn (like the calls of a
        // small daemon) never give their pages back only to fault them in again.
        let len = 1700;
        let held: Vec<Secret> = (0..10).map(|_| Secret::new("k".repeat(len))).collect();
        let first = held[0].ptr.as_ptr().expose_provenance();
        drop(held);
        assert!(resident(first), "the page stays resident");
    }

    #[test]
    fn settling_fills_the_holes_below_and_gives_the_pages_above_back() {
        // A length no other test uses: this size class is this test's alone.
        let len = 1800;
        let page = pool::page_size();
        let value = |i: usize| format!("{i:s>len$}");
        let held: Vec<Secret> = (0..400).map(|i| Secret::new(value(i))).collect();
        let mut slots: Vec<usize> = held.iter().map(|s| s.ptr.as_ptr().expose_provenance()).collect();
        slots.sort_unstable();
        // Every other secret goes: each page keeps a secret, so none is given back yet.
        let mut kept: Vec<(usize, Secret)> = held.into_iter().enumerate().filter(|(i, _)| i % 2 == 1).collect();
        assert!(slots.iter().all(|&slot| resident(slot)), "every page still holds a secret");
        let moved = kept.iter_mut().map(|(_, secret)| secret.settle()).filter(|&moved| moved).count();
        assert!(moved >= 90, "only {moved} of 200 secrets moved down");
        assert!(kept.iter().all(|(i, s)| s.expose() == value(*i)), "a moved secret keeps its value");
        // The 200 kept secrets now fill the 200 lowest slots, and the pages above are given back.
        let mut now_at: Vec<usize> = kept.iter().map(|(_, s)| s.ptr.as_ptr().expose_provenance()).collect();
        now_at.sort_unstable();
        assert_eq!(now_at, slots[..200]);
        let top = slots[199] + len;
        let above: std::collections::BTreeSet<usize> =
            slots[200..].iter().map(|&slot| slot / page * page).filter(|&p| p >= top).collect();
        assert!(above.len() > 80, "{} pages above", above.len());
        assert!(above.iter().all(|&p| !resident(p)), "the emptied pages are given back");
        // Settling again moves nothing: there is no hole below any of them.
        assert_eq!(kept.iter_mut().map(|(_, secret)| secret.settle()).filter(|&moved| moved).count(), 0);
        let unpooled = &mut Secret::new("x".repeat(pool::MAX_POOLED + 1));
        assert!(!unpooled.settle(), "a secret with an allocation of its own stays where it is");
    }

    /// Whether the page holding pool address `addr` is in memory.
    fn resident(addr: usize) -> bool {
        let page = pool::page_size();
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
        let (reserved, _free) = pool::usage();
        assert!(reserved > 0);
    }

    #[test]
    fn a_secret_read_from_json_goes_straight_into_the_pool() {
        let back: Secret = serde_json::from_reader(&b"\"from a reader\""[..]).unwrap();
        assert_eq!(back.expose(), "from a reader");
        let escaped: Secret = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(escaped.expose(), "a\"b");
    }
}
