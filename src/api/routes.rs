//! The API's routes. Token answers carry `Cache-Control: no-store`; an expired token is never
//! served; a caller outside a ticket's allow lists gets 403 and a log line, never the token.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::peer::Peer;
use crate::api::{probes, tickets};
use crate::board::{Board, WRITE_WAIT};
use crate::clock::{Clock, rfc3339};
use crate::cluster::view::ClusterView;
use crate::config::{ConsumerSpec, Kind, TicketSpec};
use crate::sinks::render::TokenView;
use crate::token::Current;

/// The longest long-poll (`?wait=` with `timeout=`); the default is [`DEFAULT_WAIT`].
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(300);
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// What every route reads: the board, the clock, and who ticketd itself is.
pub(crate) struct ApiState {
    pub(crate) board: Arc<Board>,
    pub(crate) clock: Arc<dyn Clock>,
    /// ticketd's own uid, always allowed.
    pub(crate) own_uid: u32,
    /// `metrics_ticket_series`, as the running config says.
    pub(crate) ticket_series: Arc<AtomicUsize>,
    /// The fleet's view from this node (`[cluster]`); `None` when it runs alone.
    pub(crate) cluster: Option<Arc<ClusterView>>,
}

pub(crate) fn router(state: Arc<ApiState>) -> Router {
    let router = Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(state): State<Arc<ApiState>>, headers: axum::http::HeaderMap| async move {
                // Sinks being written now: the scrape shows what they hold (see `readable`).
                state.board.settle_writes(None, WRITE_WAIT).await;
                let limit = state.ticket_series.load(Ordering::Relaxed);
                let cluster = state.cluster.as_deref();
                crate::api::metrics::response(&state.board, state.clock.read(), &headers, limit, cluster)
            }),
        )
        .route("/v1/cluster", get(cluster))
        .route("/v1/tickets", get(list))
        .route("/v1/revocations", get(revocations))
        .route("/v1/tickets/{name}", get(ticket))
        .route("/v1/tickets/{name}/token", get(raw_token))
        .fallback(|| async { error(StatusCode::NOT_FOUND, json!({"error": "no such endpoint"})) })
        .with_state(state.clone());
    // `/v1/<kind>/{name}/access-token` for each API whose page embeds a ticket (SLS: `/v1/sls/…`).
    Kind::ALL.iter().filter(|kind| kind.embeds()).fold(router, |router, &kind| {
        let handler = move |state, peer, name| embed_access_token(kind, state, peer, name);
        let path = format!("/v1/{}/{{name}}/access-token", kind.as_str());
        router.route(&path, get(handler).with_state(state.clone()))
    })
}

fn error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    probes::readyz(&state.board, &*state.clock).await
}

/// `GET /v1/cluster`: this node's name and role, the leader's name, and each member's last sync;
/// 404 when the config has no `[cluster]`.
async fn cluster(State(state): State<Arc<ApiState>>) -> Response {
    match &state.cluster {
        Some(view) => axum::Json(view.snapshot()).into_response(),
        None => error(StatusCode::NOT_FOUND, json!({"error": "this ticketd runs alone: it runs no [cluster]"})),
    }
}

async fn list(State(state): State<Arc<ApiState>>) -> Response {
    state.board.settle_writes(None, WRITE_WAIT).await;
    tickets::response(&state.board, state.clock.read())
}

/// A TCR long-term token waiting to be revoked (no secret: a `TokenId` is not one).
#[derive(Serialize)]
struct RevocationSummary {
    ticket: String,
    token_id: String,
    registry_id: String,
    stage: &'static str,
    since: String,
    attempts: u32,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
}

/// `GET /v1/revocations`: the replaced TCR long-term tokens not revoked yet.
async fn revocations(State(state): State<Arc<ApiState>>) -> Response {
    let all: Vec<RevocationSummary> = state
        .board
        .revocations()
        .entries()
        .iter()
        .map(|e| RevocationSummary {
            ticket: e.pending.ticket.clone(),
            token_id: e.pending.token_id.clone(),
            registry_id: e.pending.registry_id.clone(),
            stage: e.stage(),
            since: rfc3339(e.pending.since),
            attempts: e.attempts,
            next_attempt_at: e.next_attempt.map(rfc3339),
            last_error: e.last_error.clone(),
        })
        .collect();
    axum::Json(all).into_response()
}

#[derive(Deserialize)]
struct WaitQuery {
    wait: Option<u64>,
    timeout: Option<String>,
}

/// Whether `peer` may read a ticket with these consumer settings.
pub(crate) fn allowed(consumers: &ConsumerSpec, peer: &Peer, own_uid: u32) -> bool {
    if peer.uid == 0 || peer.uid == own_uid || !consumers.restricted() {
        return true;
    }
    // The groups are the connection's own (fixed at accept), never read from /proc by pid.
    consumers.allow_uids.contains(&peer.uid) || consumers.allow_gids.iter().any(|&g| peer.in_group(g))
}

/// What a look at one ticket found, for [`readable`] (made under the board's read lock).
enum Look<R> {
    Missing,
    Denied,
    /// Its generation is not above the one waited past (`?wait=`).
    NotNewer,
    Token(R),
    Expired {
        since: String,
        last_error: Option<String>,
    },
    NoToken {
        last_error: Option<String>,
    },
}

/// Look at ticket `name` for `peer` at `now`: `answer` is made from the ticket in place (no copy of
/// it), only when the caller may read it, its generation is above `after` and its token is valid.
fn look<R>(
    table: &crate::board::Table,
    name: &str,
    peer: &Peer,
    own_uid: u32,
    after: Option<u64>,
    now: crate::clock::Now,
    answer: &impl Fn(&TicketSpec, &Current) -> R,
) -> Look<R> {
    let Some(t) = table.by_name(name) else { return Look::Missing };
    if !allowed(&t.spec().consumers, peer, own_uid) {
        return Look::Denied;
    }
    let current = t.current();
    if after.is_some_and(|seen| current.is_none_or(|c| c.generation <= seen)) {
        return Look::NotNewer;
    }
    let last_error = || t.last_error().map(str::to_string);
    match current {
        Some(c) if c.is_valid(now) => Look::Token(answer(t.spec(), c)),
        Some(c) => Look::Expired { since: rfc3339(c.token.expires_at), last_error: last_error() },
        None => Look::NoToken { last_error: last_error() },
    }
}

/// The 403 for a caller outside a ticket's allow lists, logged with `why`.
fn denied(name: &str, peer: &Peer, why: &'static str) -> Response {
    tracing::warn!(ticket = %name, uid = peer.uid, gid = peer.gid, groups = ?peer.groups, pid = ?peer.pid, "{why}");
    error(StatusCode::FORBIDDEN, json!({"error": format!("uid {} may not read `{name}`", peer.uid), "ticket": name}))
}

/// Find, authorize and (for `?wait=`) wait for a ticket; then insist on a valid token, and make
/// `answer` from it under the board's read lock (an answer copies out only what it sends, never
/// the ticket: issue #18's socket reads). Access is checked when the request arrives and again
/// whenever the wait wakes, against the running config.
async fn readable<R>(
    state: &ApiState,
    name: &str,
    peer: &Peer,
    query: &WaitQuery,
    answer: impl Fn(&TicketSpec, &Current) -> R,
) -> Result<R, Response> {
    // A sink of this ticket may hold a token the board does not show yet (the file is renamed into
    // place before the scheduler hears of it): a consumer that saw the file and asks at once
    // gets that token, so the answer waits for the write under way, if any.
    state.board.settle_writes(Some(name), WRITE_WAIT).await;
    let at = |after: Option<u64>| {
        let now = state.clock.read();
        state.board.read(|table| look(table, name, peer, state.own_uid, after, now, &answer))
    };
    let found = match at(None) {
        Look::Missing => {
            return Err(error(
                StatusCode::NOT_FOUND,
                json!({"error": format!("no ticket named `{name}`"), "ticket": name}),
            ));
        }
        Look::Denied => return Err(denied(name, peer, "denied a caller outside allow_uids/allow_gids")),
        found => found,
    };
    let found = match query.wait {
        None => found,
        Some(seen) => {
            let limit = match &query.timeout {
                None => DEFAULT_WAIT,
                Some(t) => match humantime::parse_duration(t).or_else(|_| t.parse::<u64>().map(Duration::from_secs)) {
                    Ok(d) => d.min(MAX_WAIT),
                    Err(_) => {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            json!({"error": format!("timeout `{t}` is not a duration (e.g. 30s)")}),
                        ));
                    }
                },
            };
            let mut changes = state.board.subscribe();
            let wait = async {
                loop {
                    // Checked in place: a wake for another ticket's change copies nothing. Access is
                    // checked again on every wake, against the ticket's spec as it is now: a reload
                    // that revoked the caller ends its wait, and no token reaches it afterwards.
                    match at(Some(seen)) {
                        Look::NotNewer => {}
                        found => return found,
                    }
                    if changes.changed().await.is_err() {
                        return Look::Missing;
                    }
                }
            };
            match tokio::time::timeout(limit, wait).await {
                Ok(Look::Missing) => {
                    return Err(error(StatusCode::NOT_FOUND, json!({"error": format!("`{name}` was removed")})));
                }
                Ok(Look::Denied) => {
                    return Err(denied(name, peer, "a reload revoked a waiting caller's access; its long-poll ends"));
                }
                Ok(found) => found,
                Err(_) => {
                    return Err(error(
                        StatusCode::REQUEST_TIMEOUT,
                        json!({"error": format!("no generation newer than {seen} within {}", humantime::format_duration(limit)), "ticket": name}),
                    ));
                }
            }
        }
    };
    match found {
        Look::Token(answer) => Ok(answer),
        Look::Expired { since, last_error } => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the token has expired", "ticket": name, "expired_since": since, "last_error": last_error}),
        )),
        Look::NoToken { last_error } => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "no token yet", "ticket": name, "last_error": last_error}),
        )),
        // Handled above (a look without `after` is never `NotNewer`).
        Look::Missing | Look::Denied | Look::NotNewer => {
            Err(error(StatusCode::NOT_FOUND, json!({"error": format!("no ticket named `{name}`"), "ticket": name})))
        }
    }
}

async fn ticket(
    State(state): State<Arc<ApiState>>,
    Extension(peer): Extension<Peer>,
    Path(name): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Response {
    let json = |spec: &TicketSpec, current: &Current| serde_json::to_vec(&TokenView::new(spec, current));
    match readable(&state, &name, &peer, &query, json).await {
        Ok(Ok(body)) => {
            let mut response = body.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            no_store(response)
        }
        Ok(Err(e)) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": format!("cannot encode the answer: {e}")}))
        }
        Err(response) => response,
    }
}

async fn raw_token(
    State(state): State<Arc<ApiState>>,
    Extension(peer): Extension<Peer>,
    Path(name): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Response {
    let token = |_: &TicketSpec, current: &Current| current.token.value.expose().to_string();
    match readable(&state, &name, &peer, &query, token).await {
        Ok(token) => {
            let mut response = token.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            no_store(response)
        }
        Err(response) => response,
    }
}

/// What the embedding page posts back to the API's iframe (SLS): `{accessToken, ticket}`.
async fn embed_access_token(
    kind: Kind,
    State(state): State<Arc<ApiState>>,
    Extension(peer): Extension<Peer>,
    Path(name): Path<String>,
) -> Response {
    if state.board.read(|table| table.by_name(&name).is_some_and(|t| t.spec().kind() != kind)) {
        return error(
            StatusCode::NOT_FOUND,
            json!({"error": format!("`{name}` is not {} ticket", kind.a()), "ticket": name}),
        );
    }
    let pair = |_: &TicketSpec, current: &Current| {
        let ticket = current.ticket.as_ref().map(|t| t.value.expose()).unwrap_or_default();
        json!({"accessToken": current.token.value.expose(), "ticket": ticket})
    };
    match readable(&state, &name, &peer, &WaitQuery { wait: None, timeout: None }, pair).await {
        Ok(pair) => no_store(axum::Json(pair).into_response()),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules() {
        let open = ConsumerSpec::default();
        let only = ConsumerSpec { allow_uids: vec![1000], allow_gids: vec![2000], ..ConsumerSpec::default() };
        let peer = Peer::without_groups;
        assert!(allowed(&open, &peer(65534, 65534), 999));
        assert!(allowed(&only, &peer(1000, 1), 999));
        assert!(allowed(&only, &peer(5, 2000), 999));
        assert!(allowed(&only, &peer(0, 0), 999), "root");
        assert!(allowed(&only, &peer(999, 999), 999), "ticketd's own uid");
        assert!(!allowed(&only, &peer(65534, 65534), 999));
    }

    /// Issue #16 item 5: a long-poll started by an allowed uid must not hand it the next token
    /// after a reload removed that uid; a caller the reload kept still gets it.
    #[tokio::test]
    async fn a_long_poll_ends_in_403_when_a_reload_revokes_the_caller() {
        use std::future::Future;
        use std::task::Poll;

        use crate::board::{Board, Ticket};
        use crate::secret::Secret;
        use crate::token::{Holding, TokenPart};
        let hour = Duration::from_secs(3600);
        let board = Arc::new(Board::default());
        let mut spec = crate::scheduler::tests::sls_ticket("t", 24 * hour, hour);
        spec.consumers.allow_uids = vec![4242, 7];
        let id = board.write().insert(Ticket::new(spec, Holding::default(), 0, 1 << 15));
        let state = ApiState {
            board: board.clone(),
            clock: Arc::new(crate::clock::SystemClock),
            own_uid: 999,
            ticket_series: Arc::default(),
            cluster: None,
        };
        let query = WaitQuery { wait: Some(0), timeout: Some("60s".into()) };
        let (revoked, kept) = (Peer::without_groups(4242, 4242), Peer::without_groups(7, 7));
        let generation = |_: &TicketSpec, c: &Current| Some(c.generation);
        let mut revoked_wait = std::pin::pin!(readable(&state, "t", &revoked, &query, generation));
        let mut kept_wait = std::pin::pin!(readable(&state, "t", &kept, &query, generation));
        // Both pass the first check and wait for generation 1.
        std::future::poll_fn(|cx| {
            assert!(revoked_wait.as_mut().poll(cx).is_pending() && kept_wait.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;

        // A reload drops uid 4242, as the scheduler applies one (the spec changes in place) ...
        {
            let mut table = board.write();
            let ticket = table.get_mut(id).unwrap();
            let mut spec = ticket.spec().clone();
            spec.consumers.allow_uids = vec![7];
            ticket.reconfigured(spec, false);
        }
        board.changed();
        // ... and then the next token arrives.
        let now = std::time::SystemTime::now();
        {
            let mut table = board.write();
            let ticket = table.get_mut(id).unwrap();
            let token = TokenPart {
                value: Secret::new("t"),
                username: None,
                token_id: None,
                issued_at: now.into(),
                expires_at: (now + hour).into(),
            };
            ticket.written_by_this_process(Holding {
                current: Some(Current {
                    ticket: None,
                    token,
                    generation: 1,
                    refreshed_at: now.into(),
                    expires_mono: None,
                }),
                pending: None,
            });
        }
        board.changed();

        let answer = revoked_wait.await;
        let response = answer.expect_err("uid 4242 was revoked while it waited; it must not get the token");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let kept = kept_wait.await.map_err(|r| r.status());
        assert_eq!(kept, Ok(Some(1)), "uid 7 is still allowed and gets generation 1");
    }

    /// The embedding route exists for the APIs that embed (SLS: `/v1/sls/…`), and refuses a
    /// ticket of another kind in the same words as before the registry generated it.
    #[tokio::test]
    async fn the_embedding_route_is_the_sls_one_and_refuses_other_kinds() {
        use crate::board::{Board, Ticket};
        use crate::token::Holding;
        let hour = Duration::from_secs(3600);
        let board = Arc::new(Board::default());
        let mut dsw = crate::scheduler::tests::sls_ticket("d", 24 * hour, hour);
        dsw.api = crate::apis::kinds::ApiSpec::Dsw(crate::apis::dsw::spec::DswSpec {
            endpoint: crate::http::Endpoint { base: "https://pai-dsw.cn-hangzhou.aliyuncs.com".parse().unwrap() },
            instance_id: "dsw-1".into(),
            token_lifetime: hour,
            token_type: None,
            audience: None,
        });
        board.write().insert(Ticket::new(dsw, Holding::default(), 0, 1 << 15));
        let state = Arc::new(ApiState {
            board,
            clock: Arc::new(crate::clock::SystemClock),
            own_uid: 999,
            ticket_series: Arc::default(),
            cluster: None,
        });
        let mut router = router(state);
        let mut get = async |path: &str| {
            let mut request = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
            request.extensions_mut().insert(Peer::without_groups(999, 999));
            let response = tower_service::Service::call(&mut router, request).await.unwrap();
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        };
        let (status, body) = get("/v1/sls/d/access-token").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": "`d` is not an sls ticket", "ticket": "d"}));
        let (status, body) = get("/v1/dsw/d/access-token").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"error": "no such endpoint"})));
    }

    /// `GET /v1/cluster` answers the fleet's view from this node, and 404 when the node runs alone;
    /// the metrics show the `ticketd_cluster_*` gauges only with a view.
    #[tokio::test]
    async fn issue_19_the_cluster_route_and_metrics_show_the_view_or_say_the_node_runs_alone() {
        use crate::board::Board;
        use crate::cluster::view::{ClusterView, Role};
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let view = ClusterView::new("web-1");
        view.set_role(Role::Leader);
        view.set_leader(Some("web-1"));
        view.synced(at);
        view.member("web-2", Some(at - Duration::from_secs(2)));
        let answer = async |cluster: Option<Arc<ClusterView>>, path: &str| {
            let state = Arc::new(ApiState {
                board: Arc::new(Board::default()),
                clock: Arc::new(crate::clock::SystemClock),
                own_uid: 999,
                ticket_series: Arc::default(),
                cluster,
            });
            let mut router = router(state);
            let mut request = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
            request.extensions_mut().insert(Peer::without_groups(999, 999));
            let response = tower_service::Service::call(&mut router, request).await.unwrap();
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        };
        let (status, body) = answer(Some(view.clone()), "/v1/cluster").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            json!({
                "node": "web-1", "role": "leader", "leader": "web-1", "last_sync": "2023-11-14T22:13:20Z",
                "members": [
                    {"name": "web-1", "last_sync": "2023-11-14T22:13:20Z"},
                    {"name": "web-2", "last_sync": "2023-11-14T22:13:18Z"},
                ],
            })
        );
        let (status, body) = answer(None, "/v1/cluster").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, r#"{"error":"this ticketd runs alone: it runs no [cluster]"}"#);

        let (status, metrics) = answer(Some(view.clone()), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            metrics.contains("\n# TYPE ticketd_cluster_leader gauge\nticketd_cluster_leader{node=\"web-1\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("\nticketd_cluster_last_sync_timestamp_seconds{node=\"web-1\"} 1700000000.0\n"),
            "{metrics}"
        );
        view.set_role(Role::Follower);
        let (_, metrics) = answer(Some(view), "/metrics").await;
        assert!(metrics.contains("\nticketd_cluster_leader{node=\"web-1\"} 0\n"), "{metrics}");
        let (_, metrics) = answer(None, "/metrics").await;
        assert!(!metrics.contains("ticketd_cluster"), "{metrics}");
    }
}
