//! The probes both listeners answer: `/healthz` (the process is serving), `/readyz` (every
//! `required` ticket holds a valid token).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::board::{Board, WRITE_WAIT};
use crate::clock::{Clock, Now};

/// `/healthz`: always `ok`.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`, once the sink writes under way are over (a probe sees what the sinks hold).
pub(crate) async fn readyz(board: &Board, clock: &dyn Clock) -> Response {
    board.settle_writes(None, WRITE_WAIT).await;
    readiness(board, clock.read())
}

/// 200 when every `required` ticket holds a valid token, 503 with their names otherwise.
pub(crate) fn readiness(board: &Board, now: Now) -> Response {
    #[derive(Serialize)]
    struct NotReady<'a> {
        ready: bool,
        not_ready: &'a [&'a str],
    }
    // Written straight from the borrowed names into one buffer.
    let not_ready = board.not_ready(now, |names| {
        (!names.is_empty()).then(|| serde_json::to_vec(&NotReady { ready: false, not_ready: names }))
    });
    match not_ready {
        None => axum::Json(json!({"ready": true})).into_response(),
        Some(Ok(body)) => {
            (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Some(Err(e)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readiness_names_the_required_tickets_without_a_token_in_order() {
        use crate::board::Ticket;
        let board = Board::default();
        let hour = std::time::Duration::from_secs(3600);
        for (name, required) in [("b", true), ("a", true), ("optional", false)] {
            let mut spec = crate::scheduler::tests::sls_ticket(name, 24 * hour, hour);
            spec.consumers.required = required;
            board.write().insert(Ticket::new(spec, crate::token::Holding::default(), 0, 1 << 15));
        }
        let response = readiness(&board, Clock::read(&crate::clock::SystemClock));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"ready": false, "not_ready": ["a", "b"]}));
    }
}
