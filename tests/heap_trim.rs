//! The heap's free pages go back to the system once a burst of frees is over, however little it
//! freed (review F13): the binary's allocator, as the daemon runs it.

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: ticketd::secret::ZeroOnFree = ticketd::secret::ZeroOnFree;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_burst_of_frees_below_the_trim_threshold_goes_back_once_it_is_over() {
    // A process holding secrets, as the daemon is.
    let _secret = ticketd::secret::Secret::new("the first secret");
    // About 5.6 MiB in small blocks from the heap itself (not mapped apart), with one block in
    // every thousand kept: glibc cannot give the freed ones back by shrinking the heap's top,
    // only a trim can.
    let (count, size) = (40_000, 128);
    let mut blocks: Vec<Box<[u8]>> = Vec::with_capacity(count);
    blocks.extend((0..count).map(|i| vec![(i % 251) as u8 | 1; size].into_boxed_slice()));
    let freed = (count - count / 1000) * size;
    assert!(freed < ticketd::secret::TRIM_AFTER, "the burst stays below the threshold that trims by itself");
    let mut kept = Vec::new();
    for (i, block) in blocks.drain(..).enumerate() {
        if i % 1000 == 0 {
            kept.push(block);
        }
    }
    drop(blocks);
    let after_free = rss_kib();
    // Nothing else frees in this process: within a few windows of quiet, the pages go back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rss = rss_kib();
        if rss + 4 * 1024 <= after_free {
            break;
        }
        assert!(Instant::now() < deadline, "still {rss} KiB resident 30 s after freeing 5 MiB ({after_free} KiB then)");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(kept.len(), count / 1000);
}
