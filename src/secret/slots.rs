//! The secret pool's bookkeeping: which slots of each size class are free, which pages hold a secret.
//!
//! Addresses are plain numbers here: mapping blocks, writing, wiping and giving pages back to the
//! system is [`crate::secret`]'s (the only module that touches the memory). Everything here is safe
//! code, tested on its own with made-up addresses.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Slot sizes are multiples of this.
pub(crate) const GRAIN: usize = 8;
/// Longer secrets (rare: a TCR long-term password is about 1,000 bytes) get an allocation of
/// their own.
pub(crate) const MAX_POOLED: usize = 2048;
/// Slots are cut from blocks of this size. A block's pages cost memory only once used, so the
/// part of a block not yet cut costs nothing.
pub(crate) const BLOCK: usize = 1024 * 1024;
const CLASSES: usize = MAX_POOLED / GRAIN;
/// A size class gives empty pages back only while this many bytes of its slots are free: one
/// that holds a few secrets, taken and dropped in turn (the calls of a small daemon), would
/// otherwise give back and fault in the same page for each of them.
pub(crate) const RELEASE_AFTER: usize = 256 * 1024;

/// The size class for a secret of `len` bytes, when pooled.
pub(crate) fn class_of(len: usize) -> Option<usize> {
    (len > 0 && len <= MAX_POOLED).then(|| len.div_ceil(GRAIN) - 1)
}

/// One size class: slots freed for reuse, lowest address first, and the uncut rest of its
/// newest block.
struct Class {
    free: BinaryHeap<Reverse<usize>>,
    next: usize,
    end: usize,
}

/// A block, and how many slots holding a secret touch each of its pages: a page whose count
/// drops to zero holds nothing but wiped free slots, and may be given back.
struct Block {
    base: usize,
    live: Box<[u16]>,
}

/// The slots of every size class, cut from blocks of [`BLOCK`] bytes.
pub(crate) struct Slots {
    classes: Vec<Class>,
    /// Every block, by address.
    blocks: Vec<Block>,
    page: usize,
}

impl Slots {
    /// No blocks yet; pages of `page` bytes (a power of two dividing [`BLOCK`]).
    pub(crate) fn new(page: usize) -> Slots {
        assert!(page.is_power_of_two() && BLOCK.is_multiple_of(page), "a page size of {page} bytes");
        let classes = (0..CLASSES).map(|_| Class { free: BinaryHeap::new(), next: 0, end: 0 }).collect();
        Slots { classes, blocks: Vec::new(), page }
    }

    /// Bytes held in blocks.
    #[cfg(test)]
    pub(crate) fn reserved(&self) -> usize {
        self.blocks.len() * BLOCK
    }

    /// Whether the slot at `addr` of size class `class` is free (holds no secret).
    #[cfg(test)]
    pub(crate) fn is_free(&self, class: usize, addr: usize) -> bool {
        self.classes[class].free.iter().any(|&Reverse(a)| a == addr)
    }

    /// The lowest free slot of size class `class`, counted as holding a secret. When the class
    /// has none, `new_block` maps a fresh block of [`BLOCK`] bytes and answers its address.
    pub(crate) fn take(&mut self, class: usize, new_block: impl FnOnce() -> usize) -> usize {
        let size = (class + 1) * GRAIN;
        let addr = match self.classes[class].free.pop() {
            Some(Reverse(addr)) => addr,
            None => {
                if self.classes[class].next + size > self.classes[class].end {
                    let base = new_block();
                    let at = self.blocks.partition_point(|b| b.base < base);
                    let live = vec![0; BLOCK / self.page].into_boxed_slice();
                    self.blocks.insert(at, Block { base, live });
                    self.classes[class].next = base;
                    self.classes[class].end = base + BLOCK;
                }
                let class = &mut self.classes[class];
                class.next += size;
                class.next - size
            }
        };
        let (block, pages) = self.pages_of(addr, size);
        for p in pages {
            block.live[p] += 1;
        }
        addr
    }

    /// Make the (wiped) slot at `addr` of size class `class` free for the next secret. Each page
    /// left with no secret on it is handed to `release` (by address) while the class has
    /// [`RELEASE_AFTER`] bytes of free slots.
    pub(crate) fn free(&mut self, class: usize, addr: usize, mut release: impl FnMut(usize)) {
        let size = (class + 1) * GRAIN;
        self.classes[class].free.push(Reverse(addr));
        let releasing = self.classes[class].free.len() * size >= RELEASE_AFTER;
        let page = self.page;
        let (block, pages) = self.pages_of(addr, size);
        for p in pages {
            block.live[p] -= 1;
            if block.live[p] == 0 && releasing {
                release(block.base + p * page);
            }
        }
    }

    /// The block holding the slot of `size` bytes at `addr`, and the pages the slot touches.
    fn pages_of(&mut self, addr: usize, size: usize) -> (&mut Block, std::ops::RangeInclusive<usize>) {
        let at = self.blocks.partition_point(|b| b.base <= addr) - 1;
        let block = &mut self.blocks[at];
        let pages = (addr - block.base) / self.page..=(addr + size - 1 - block.base) / self.page;
        (block, pages)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const PAGE: usize = 4096;

    /// Slots over made-up blocks at 1 GiB, 2 GiB, ...: no memory is touched.
    fn slots() -> (Slots, impl FnMut() -> usize) {
        let mut n = 0;
        (Slots::new(PAGE), move || {
            n += 1;
            n << 30
        })
    }

    /// `n` slots taken for secrets of `size` bytes, and their class.
    fn taken(size: usize, n: usize) -> (Slots, usize, Vec<usize>) {
        let (mut slots, mut block) = slots();
        let class = class_of(size).unwrap();
        let taken = (0..n).map(|_| slots.take(class, &mut block)).collect();
        (slots, class, taken)
    }

    #[test]
    fn lengths_fall_into_classes_of_eight_bytes() {
        assert_eq!([0, 1, 8, 9, 2048, 2049].map(class_of), [None, Some(0), Some(0), Some(1), Some(255), None]);
    }

    #[test]
    fn a_freed_slot_is_taken_again_lowest_first() {
        let (mut slots, mut block) = slots();
        let class = class_of(100).unwrap();
        let taken: Vec<usize> = (0..10).map(|_| slots.take(class, &mut block)).collect();
        assert_eq!(taken[1] - taken[0], 104, "slots of one class sit side by side");
        slots.free(class, taken[7], |_| panic!("too few free slots to give a page back"));
        slots.free(class, taken[3], |_| panic!("too few free slots to give a page back"));
        assert_eq!(slots.take(class, &mut block), taken[3]);
        assert_eq!(slots.take(class, &mut block), taken[7]);
        assert_eq!(slots.take(class, &mut block), taken[9] + 104, "then the uncut rest");
        assert_eq!(slots.reserved(), BLOCK);
        // Another class has blocks of its own.
        let other = slots.take(class_of(16).unwrap(), &mut block);
        assert_eq!((other, slots.reserved()), (2 << 30, 2 * BLOCK));
    }

    #[test]
    fn a_page_goes_back_once_no_slot_on_it_holds_a_secret_and_the_class_has_plenty_free() {
        let size = 1504;
        let (mut slots, class, taken) = taken(size, 600);
        let pages_of = |slot: usize| (slot / PAGE)..=((slot + size - 1) / PAGE);
        // Keep one secret in twenty: the pages between them hold only freed slots.
        let kept: BTreeSet<usize> = taken.iter().step_by(20).flat_map(|&s| pages_of(s)).collect();
        let mut released = BTreeSet::new();
        for (i, &slot) in taken.iter().enumerate().filter(|(i, _)| i % 20 != 0) {
            let before = released.len();
            slots.free(class, slot, |page| assert!(released.insert(page / PAGE), "page {page} given back twice"));
            let free_bytes = (i - i / 20) * size;
            if free_bytes < RELEASE_AFTER {
                assert_eq!(released.len(), before, "no page given back with {free_bytes} bytes free");
            }
        }
        assert!(released.is_disjoint(&kept), "a page with a secret on it stays");
        let empty: BTreeSet<usize> = taken.iter().flat_map(|&s| pages_of(s)).filter(|p| !kept.contains(p)).collect();
        let kept_back = RELEASE_AFTER.div_ceil(PAGE) + 1;
        assert!(
            released.len() + kept_back >= empty.len(),
            "{} of {} empty pages given back",
            released.len(),
            empty.len()
        );
        assert!(released.len() > 100, "{} pages", released.len());
    }

    #[test]
    fn a_slot_across_two_pages_keeps_both() {
        // The third slot (at 3,008) runs into the second page.
        let (mut slots, class, all) = taken(1504, 400);
        let mut released = Vec::new();
        for &slot in all.iter().skip(3) {
            slots.free(class, slot, |page| released.push(page));
        }
        assert!(!released.contains(&(1 << 30)) && !released.contains(&((1 << 30) + PAGE)), "pages under slot 2 stay");
        slots.free(class, all[2], |page| released.push(page));
        slots.free(class, all[1], |page| released.push(page));
        assert!(released.contains(&((1 << 30) + PAGE)), "the second page goes with the last slot on it");
        assert!(!released.contains(&(1 << 30)), "the first still holds slot 0");
    }
}
