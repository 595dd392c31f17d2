//! Answers streamed from the board in name order, a few hundred tickets per chunk: an answer
//! about 100,000 tickets holds one chunk of text and a window of names at a time, never the
//! whole answer or a list of every ticket, and takes the board's read lock only while it
//! renders one chunk. The answer's last text ([`Render::unlocked`]) is rendered after the lock is
//! released: it may read the system (`/proc` for the metrics) without delaying the scheduler.
//!
//! The answer is not one snapshot: each chunk shows its tickets as they are when it is
//! rendered. A ticket removed meanwhile is left out; one added meanwhile may be (it shows if its
//! name comes after the window of names being sent).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};

use crate::board::{Board, Table, Ticket};

/// Names taken from the board per pass over it (a pass looks at every ticket): at 100,000
/// tickets, 49 passes per answer. At most 128 bytes each (the longest name config allows).
const WINDOW: usize = 2048;
/// Tickets rendered per chunk: about 120 kB of the list's JSON.
const CHUNK: usize = 256;

/// What an answer writes: some passes over the tickets (each in name order), each with text
/// before and after it.
pub(crate) trait Render: Send + Unpin + 'static {
    /// Text before pass `pass`; `false` when there is no such pass (the answer's tail is next).
    fn begin(&mut self, table: &Table, pass: usize, out: &mut Vec<u8>) -> bool;
    /// One ticket, in pass `pass`.
    fn row(&mut self, pass: usize, ticket: &Ticket, out: &mut Vec<u8>);
    /// Text after pass `pass`.
    fn end(&mut self, _pass: usize, _out: &mut Vec<u8>) {}
    /// Text after the last pass.
    fn tail(&mut self, _table: &Table, _out: &mut Vec<u8>) {}
    /// Text after the tail, rendered with the board's lock released: work that reads the system
    /// (files, `/proc`) goes here, never under the lock the scheduler's writes wait for.
    fn unlocked(&mut self, _out: &mut Vec<u8>) {}
}

/// `render` over `board`, as a response body.
pub(crate) fn body(board: Arc<Board>, render: impl Render) -> Body {
    Body::from_stream(Chunks::new(board, render))
}

/// `render` over `board`, all of it in one buffer (tests, and answers known to be small).
#[cfg(test)]
pub(crate) fn collect(board: &Board, render: impl Render) -> String {
    let mut chunks = Chunks::new(board, render);
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next_chunk() {
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).expect("answers are UTF-8")
}

enum State {
    Begin,
    /// In a pass: names after `after` are next (`None`: from the first).
    Rows {
        after: Option<Box<str>>,
    },
    /// The tail is written; [`Render::unlocked`] is next, once the lock is released.
    Unlocked,
    Done,
}

/// The names of the next tickets of a pass, copied out of the board: one string and where each
/// name ends in it.
#[derive(Default)]
struct Window {
    names: String,
    ends: Vec<usize>,
    /// The next name to render.
    next: usize,
    /// The pass found every remaining name (no more passes over the board for this one).
    last: bool,
}

impl Window {
    fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.names[start..self.ends[i]]
    }

    fn remaining(&self) -> usize {
        self.ends.len() - self.next
    }

    /// The first [`WINDOW`] names after `after`, in order.
    fn fill(&mut self, table: &Table, after: Option<&str>) {
        // A max-heap of the smallest names seen: each ticket costs one comparison once it is full
        // (the config's order is usually the name order, so pushes are rare).
        let mut heap = std::collections::BinaryHeap::with_capacity(WINDOW + 1);
        let mut more = false;
        for name in table.tickets().map(Ticket::name).filter(|n| after.is_none_or(|a| *n > a)) {
            if heap.len() < WINDOW {
                heap.push(name);
            } else if heap.peek().is_some_and(|&top| name < top) {
                heap.pop();
                heap.push(name);
                more = true;
            } else {
                more = true;
            }
        }
        self.names.clear();
        self.ends.clear();
        self.next = 0;
        self.last = !more;
        for name in heap.into_sorted_vec() {
            self.names.push_str(name);
            self.ends.push(self.names.len());
        }
    }
}

/// The answer, chunk by chunk ([`Chunks::next_chunk`]).
pub(crate) struct Chunks<B, R> {
    board: B,
    render: R,
    pass: usize,
    state: State,
    window: Window,
}

impl<B: std::ops::Deref<Target = Board>, R: Render> Chunks<B, R> {
    pub(crate) fn new(board: B, render: R) -> Self {
        Chunks { board, render, pass: 0, state: State::Begin, window: Window::default() }
    }

    /// The next piece of the answer, rendered under the read lock (the last piece's
    /// [`Render::unlocked`] text after it is released); `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        self.locked_chunk(&mut out);
        if matches!(self.state, State::Unlocked) {
            self.render.unlocked(&mut out);
            self.state = State::Done;
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// What [`Chunks::next_chunk`] renders under the read lock, up to the tail.
    fn locked_chunk(&mut self, out: &mut Vec<u8>) {
        let table = self.board.table();
        while out.is_empty() {
            match &mut self.state {
                State::Done | State::Unlocked => return,
                State::Begin => {
                    if self.render.begin(&table, self.pass, out) {
                        self.state = State::Rows { after: None };
                    } else {
                        self.render.tail(&table, out);
                        self.state = State::Unlocked;
                    }
                }
                State::Rows { after } => {
                    if self.window.remaining() == 0 {
                        let at_end = self.window.last && !self.window.ends.is_empty();
                        if !at_end {
                            self.window.fill(&table, after.as_deref());
                        }
                        if at_end || self.window.ends.is_empty() {
                            self.window = Window::default();
                            self.render.end(self.pass, out);
                            self.pass += 1;
                            self.state = State::Begin;
                            continue;
                        }
                    }
                    let upto = (self.window.next + CHUNK).min(self.window.ends.len());
                    for i in self.window.next..upto {
                        if let Some(ticket) = table.by_name(self.window.name(i)) {
                            self.render.row(self.pass, ticket, out);
                        }
                    }
                    self.window.next = upto;
                    *after = Some(self.window.name(upto - 1).into());
                }
            }
        }
    }
}

impl<B: std::ops::Deref<Target = Board> + Unpin, R: Render> futures_core::Stream for Chunks<B, R> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Rendering is quick and never waits: each chunk is ready when asked for.
        Poll::Ready(self.get_mut().next_chunk().map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names, one per line, in each of two passes, between markers.
    struct Names;

    impl Render for Names {
        fn begin(&mut self, _: &Table, pass: usize, out: &mut Vec<u8>) -> bool {
            out.extend_from_slice(format!("pass {pass}\n").as_bytes());
            pass < 2
        }
        fn row(&mut self, _: usize, ticket: &Ticket, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("{}\n", ticket.name()).as_bytes());
        }
        fn end(&mut self, pass: usize, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("end {pass}\n").as_bytes());
        }
        fn tail(&mut self, _: &Table, out: &mut Vec<u8>) {
            out.extend_from_slice(b"tail\n");
        }
    }

    fn board(names: impl IntoIterator<Item = String>) -> Arc<Board> {
        let board = Arc::new(Board::default());
        let hour = std::time::Duration::from_secs(3600);
        for name in names {
            let spec = crate::scheduler::tests::sls_ticket(&name, 24 * hour, hour);
            board.write().insert(Ticket::new(spec, crate::token::Holding::default(), 0, 1 << 15));
        }
        board
    }

    #[test]
    fn every_ticket_once_per_pass_in_name_order_across_windows() {
        // More than two windows, inserted out of order (so the heap does replace names).
        let n = 2 * WINDOW + 77;
        let names: Vec<String> = (0..n).map(|i| format!("t{:05}", (i * 7919) % n)).collect();
        let text = collect(&board(names), Names);
        let mut sorted: Vec<String> = (0..n).map(|i| format!("t{i:05}")).collect();
        sorted.sort();
        let listed = sorted.join("\n");
        assert_eq!(text, format!("pass 0\n{listed}\nend 0\npass 1\n{listed}\nend 1\npass 2\ntail\n"));
    }

    #[test]
    fn an_empty_board_still_gets_its_heads_and_tail() {
        assert_eq!(collect(&board([]), Names), "pass 0\nend 0\npass 1\nend 1\npass 2\ntail\n");
    }

    #[test]
    fn a_ticket_removed_while_the_answer_is_sent_is_left_out() {
        let board = board((0..CHUNK * 2).map(|i| format!("b{i:04}")));
        let mut chunks = Chunks::new(board.clone(), Names);
        let mut text = String::from_utf8(chunks.next_chunk().unwrap().to_vec()).unwrap();
        text.push_str(std::str::from_utf8(&chunks.next_chunk().unwrap()).unwrap());
        assert!(text.ends_with(&format!("b{:04}\n", CHUNK - 1)), "{text}");
        {
            let mut table = board.write();
            let gone = table.id(&format!("b{:04}", CHUNK + 1)).unwrap();
            table.remove(gone);
            let hour = std::time::Duration::from_secs(3600);
            for name in ["a-before", "c-after"] {
                let spec = crate::scheduler::tests::sls_ticket(name, 24 * hour, hour);
                table.insert(Ticket::new(spec, crate::token::Holding::default(), 0, 1 << 15));
            }
        }
        let rest = String::from_utf8(chunks.next_chunk().unwrap().to_vec()).unwrap();
        assert!(rest.starts_with(&format!("b{:04}\nb{:04}\n", CHUNK, CHUNK + 2)), "{rest}");
        assert!(rest.ends_with(&format!("b{:04}\n", 2 * CHUNK - 1)), "{rest}");
        assert!(!rest.contains("a-before"), "names before the cursor are not gone back to: {rest}");
    }

    /// The streaming bound: no chunk of an answer about 20,000 tickets is bigger than `CHUNK`
    /// rows, and the names kept between chunks are one window's.
    #[test]
    fn a_chunk_holds_at_most_its_share_of_the_answer() {
        let board = board((0..20_000).map(|i| format!("ticket-{i:06}")));
        let mut chunks = Chunks::new(board, Names);
        let (mut count, mut biggest) = (0, 0);
        while let Some(chunk) = chunks.next_chunk() {
            count += 1;
            biggest = biggest.max(chunk.len());
            assert!(chunks.window.names.capacity() <= WINDOW * 128, "{}", chunks.window.names.capacity());
        }
        assert!(biggest <= CHUNK * "ticket-000000\n".len() + "end 0\npass 1\n".len(), "{biggest}");
        assert!(count >= 2 * 20_000 / CHUNK, "{count} chunks");
    }
}
