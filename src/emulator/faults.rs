//! Fault injection: make the emulator fail like a real cloud does, per service, on a schedule.
//!
//! A [`FaultPlan`] says which calls fail ([`Trigger`]: the first N, every Kth, or a seeded random
//! fraction) and how ([`Fault`]): a vendor-shaped 5xx or throttling answer (with retry-after), a
//! connection reset, a hang, a slow body, malformed JSON, a wrong content type, an oversized body,
//! or a clock-skew rejection. It is applied by a middleware in front of every route, before any
//! signature check, so the call never reaches the real handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Shared;

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Sls,
    Dsw,
    /// TCR CreateInstanceToken.
    Tcr,
    /// TCR DeleteInstanceToken (faults in the TCR error shape, like [`Service::Tcr`]).
    TcrDelete,
}

/// How a call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The vendor's server-error answer (SLS 500 InternalServerError, POP 503 ServiceUnavailable,
    /// TCR 200 InternalError).
    ServerError,
    /// The vendor's throttling answer, with a retry-after where the vendor has one.
    Throttle { retry_after_secs: u64 },
    /// The connection drops before an answer is complete.
    Reset,
    /// No answer for this long.
    Hang(Duration),
    /// A correct-looking answer, one byte every this often.
    SlowBody(Duration),
    /// HTTP 200 with JSON cut short.
    MalformedJson,
    /// HTTP 200 with an HTML page.
    WrongContentType,
    /// HTTP 200 with a body larger than any client should read (1 MiB).
    Oversized,
    /// The vendor's "request time too far from server time" rejection.
    ClockSkew,
    /// A success answer whose secret holds multi-byte characters (`é`, U+200B): an SLS ticket or
    /// access token, a DSW token, a TCR token. The next call with such a ticket gets an error.
    NonAsciiSecret,
    /// A success answer a consumer could not use as is: an SLS ticket or token and a DSW token
    /// with a newline and a NUL in them, a TCR `Username` with a `:`.
    BadCharacters,
}

/// Which calls fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    FirstN(u64),
    EveryKth(u64),
    /// Each call fails with this probability, from a seeded generator (reproducible).
    Fraction {
        p: f64,
        seed: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    pub fault: Fault,
    pub trigger: Trigger,
}

/// One service's live plan: how many calls it has seen, and its random source.
type LivePlan = (Service, FaultPlan, u64, Option<StdRng>);

/// The live plans and their counters.
#[derive(Default)]
pub(crate) struct Faults {
    plans: std::sync::Mutex<Vec<LivePlan>>,
}

impl Faults {
    pub(crate) fn set(&self, service: Service, plan: Option<FaultPlan>) {
        let mut plans = self.plans.lock().expect("fault plans");
        plans.retain(|(s, ..)| *s != service);
        if let Some(plan) = plan {
            let rng = match plan.trigger {
                Trigger::Fraction { seed, .. } => Some(StdRng::seed_from_u64(seed)),
                _ => None,
            };
            plans.push((service, plan, 0, rng));
        }
    }

    /// Count a call for `service`; the fault to inject, if this call is one to fail.
    fn next(&self, service: Service) -> Option<Fault> {
        let mut plans = self.plans.lock().expect("fault plans");
        let (_, plan, count, rng) = plans.iter_mut().find(|(s, ..)| *s == service)?;
        *count += 1;
        let fire = match plan.trigger {
            Trigger::FirstN(n) => *count <= n,
            Trigger::EveryKth(k) => k > 0 && *count % k == 0,
            Trigger::Fraction { p, .. } => rng.as_mut().is_some_and(|r| r.random::<f64>() < p),
        };
        fire.then_some(plan.fault)
    }
}

fn service_of(request: &Request) -> Option<Service> {
    match request.uri().path() {
        "/tickets" | "/token/refresh" => Some(Service::Sls),
        super::dsw::PATH => Some(Service::Dsw),
        "/" if request.headers().get("x-tc-action").is_some_and(|a| a == "CreateInstanceToken") => Some(Service::Tcr),
        "/" if request.headers().get("x-tc-action").is_some_and(|a| a == "DeleteInstanceToken") => {
            Some(Service::TcrDelete)
        }
        _ => None,
    }
}

pub(crate) async fn inject(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(service) = service_of(&request) else { return next.run(request).await };
    let Some(fault) = shared.faults.next(service) else { return next.run(request).await };
    shared.stats.faults_injected.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(?service, ?fault, "emulator injects a fault");
    answer(&shared, request.uri().path(), service, fault).await
}

/// A success answer in the vendor's shape carrying a hostile secret (recorded like any issued
/// secret, so the log checks look for it).
fn hostile_success(shared: &Shared, path: &str, fault: Fault) -> Response {
    let serial = shared.next_serial();
    let secret = match fault {
        Fault::NonAsciiSecret => format!("eyJh\u{e9}bc.\u{200b}{serial:06}.s\u{e9}cret"),
        _ => format!("eyJhbc.{serial:06}\nX-Injected: 1\0.secret"),
    };
    shared.record(&secret);
    let exp_millis = crate::clock::unix_seconds(shared.clock.now() + Duration::from_secs(3_600)) * 1000;
    match path {
        "/tickets" => json(StatusCode::OK, serde_json::json!({ "ticket": secret })),
        "/token/refresh" => json(StatusCode::OK, serde_json::json!({ "accessToken": secret })),
        super::dsw::PATH => json(
            StatusCode::OK,
            serde_json::json!({"RequestId": "fault", "Success": true, "Code": "200", "Message": "", "Token": secret}),
        ),
        _ => {
            let (username, token) = match fault {
                Fault::NonAsciiSecret => ("100012345678".to_string(), secret),
                _ => ("100012345678:evil".to_string(), format!("eyJhbc.{serial:06}.secret")),
            };
            shared.record(&token);
            json(
                StatusCode::OK,
                serde_json::json!({"Response": {"Username": username, "Token": token, "ExpTime": exp_millis, "RequestId": "fault"}}),
            )
        }
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn tcr_error(code: &str) -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({"Response": {"Error": {"Code": code, "Message": "injected"}, "RequestId": "fault"}}),
    )
}

fn pop_error(status: StatusCode, code: &str) -> Response {
    json(
        status,
        serde_json::json!({"RequestId": "fault", "HostId": "emulator", "Code": code, "Message": "injected", "Recommend": ""}),
    )
}

async fn answer(shared: &Shared, path: &str, service: Service, fault: Fault) -> Response {
    match fault {
        Fault::ServerError => match service {
            Service::Sls => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"errorCode": "InternalServerError", "errorMessage": "injected"}),
            ),
            Service::Dsw => pop_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            Service::Tcr | Service::TcrDelete => tcr_error("InternalError"),
        },
        Fault::Throttle { retry_after_secs } => match service {
            Service::Sls => json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"errorCode": "ServerBusy", "errorMessage": "injected"}),
            ),
            Service::Dsw => {
                let mut r = pop_error(StatusCode::BAD_REQUEST, "Throttling.User");
                r.headers_mut().insert("x-acs-retry-after", HeaderValue::from(retry_after_secs));
                r
            }
            Service::Tcr | Service::TcrDelete => tcr_error("RequestLimitExceeded"),
        },
        Fault::Reset => {
            // A body that fails at once: hyper aborts the connection mid-answer.
            Response::builder().status(StatusCode::OK).body(Body::from_stream(ResetBody)).expect("valid response")
        }
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"errorCode": "ServerBusy", "errorMessage": "slept"}),
            )
        }
        Fault::SlowBody(every) => {
            let body = br#"{"errorCode":"ServerBusy","errorMessage":"slow"}"#.to_vec();
            let stream = SlowBody { body, at: 0, every, sleep: Box::pin(tokio::time::sleep(every)) };
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .expect("valid response")
        }
        Fault::MalformedJson => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"ticket": "eyJ"#))
            .expect("valid response"),
        Fault::WrongContentType => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/html")
            .body(Body::from("<html><body>502 Bad Gateway</body></html>"))
            .expect("valid response"),
        Fault::Oversized => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(vec![b' '; 1024 * 1024]))
            .expect("valid response"),
        Fault::NonAsciiSecret | Fault::BadCharacters => hostile_success(shared, path, fault),
        Fault::ClockSkew => match service {
            Service::Sls => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"errorCode": "RequestTimeExpired", "errorMessage": "injected: request time is expired"}),
            ),
            Service::Dsw => pop_error(StatusCode::BAD_REQUEST, "InvalidTimeStamp.Expired"),
            Service::Tcr | Service::TcrDelete => tcr_error("AuthFailure.SignatureExpire"),
        },
    }
}

type Chunk = Result<axum::body::Bytes, std::io::Error>;

/// A body whose first chunk is an error: hyper aborts the connection mid-answer.
struct ResetBody;

impl futures_core::Stream for ResetBody {
    type Item = Chunk;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Chunk>> {
        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset"))))
    }
}

/// A body sent one byte every `every`.
struct SlowBody {
    body: Vec<u8>,
    at: usize,
    every: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl futures_core::Stream for SlowBody {
    type Item = Chunk;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        if self.at >= self.body.len() {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let next = tokio::time::Instant::now() + self.every;
        self.sleep.as_mut().reset(next);
        let at = self.at;
        self.at += 1;
        Poll::Ready(Some(Ok(axum::body::Bytes::copy_from_slice(&self.body[at..=at]))))
    }
}
