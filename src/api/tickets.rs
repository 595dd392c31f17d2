//! `GET /v1/tickets`: every ticket's status, without secrets, as a JSON array in name order,
//! streamed from the board (see [`crate::api::stream`]).

use std::sync::Arc;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::stream::{self, Render};
use crate::board::{Board, Table, Ticket};
use crate::clock::{Now, rfc3339};

/// Every status [`status`] gives, in the order metrics list them.
pub(crate) const STATUSES: [&str; 5] = ["fresh", "retrying", "expired", "pending", "failing"];

/// A ticket's status at `now`: a valid token (`fresh`; `retrying` while calls fail), an expired
/// one, or none yet (`pending` before the first failure, `failing` after).
pub(crate) fn status(ticket: &Ticket, now: Now) -> &'static str {
    match (ticket.valid(now), ticket.current(), ticket.failures()) {
        (Some(_), _, 0) => "fresh",
        (Some(_), _, _) => "retrying",
        (None, Some(_), _) => "expired",
        (None, None, 0) => "pending",
        (None, None, _) => "failing",
    }
}

/// A ticket's status, without secrets.
#[derive(Serialize)]
struct Summary<'a> {
    name: &'a str,
    kind: &'static str,
    status: &'static str,
    generation: u64,
    token_expires_at: Option<String>,
    ticket_expires_at: Option<String>,
    refreshed_at: Option<String>,
    next_refresh_at: Option<String>,
    failures: u32,
    last_error: Option<&'a str>,
}

fn summary(ticket: &Ticket, now: Now) -> Summary<'_> {
    let current = ticket.current();
    Summary {
        name: ticket.name(),
        kind: ticket.spec().kind().as_str(),
        status: status(ticket, now),
        generation: current.map_or(0, |c| c.generation),
        token_expires_at: current.map(|c| rfc3339(c.token.expires_at)),
        ticket_expires_at: current.and_then(|c| c.ticket.as_ref()).map(|t| rfc3339(t.expires_at)),
        refreshed_at: current.map(|c| rfc3339(c.refreshed_at)),
        next_refresh_at: ticket.next_at(now).map(rfc3339),
        failures: ticket.failures(),
        last_error: ticket.last_error(),
    }
}

/// The array, one summary after another.
struct List {
    now: Now,
    first: bool,
}

impl Render for List {
    fn begin(&mut self, _: &Table, pass: usize, out: &mut Vec<u8>) -> bool {
        if pass == 0 {
            out.push(b'[');
        }
        pass == 0
    }

    fn row(&mut self, _: usize, ticket: &Ticket, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.first) {
            out.push(b',');
        }
        serde_json::to_writer(out, &summary(ticket, self.now)).expect("a summary is plain JSON");
    }

    fn tail(&mut self, _: &Table, out: &mut Vec<u8>) {
        out.push(b']');
    }
}

/// The list, streamed, as of `now`.
pub(crate) fn response(board: &Arc<Board>, now: Now) -> Response {
    let mut response = stream::body(board.clone(), List { now, first: true }).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed list is the JSON the whole-array answer was: `serde_json` of the summaries
    /// in name order.
    #[test]
    fn the_streamed_list_is_the_array_of_summaries_in_name_order() {
        let (board, now) = crate::api::metrics::tests::fixture();
        let text = stream::collect(&board, List { now, first: true });
        let expected = board.by_name(|tickets| {
            serde_json::to_string(&tickets.iter().map(|t| summary(t, now)).collect::<Vec<_>>()).unwrap()
        });
        assert_eq!(text, expected);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let names: Vec<&str> = parsed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["alpha", "beta", "q\"x\\y\nz"]);
        assert_eq!(parsed[0]["status"], "fresh");
        assert_eq!(parsed[2]["status"], "failing");
        assert_eq!(stream::collect(&Board::default(), List { now, first: true }), "[]");
    }
}
