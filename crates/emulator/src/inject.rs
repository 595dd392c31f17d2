//! The fault-injecting middleware in front of every route: a call a [`crate::faults::FaultPlan`]
//! picks is answered with its fault and never reaches the real handler (but for a
//! [`Fault::Delay`], which reaches it late).

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

use crate::faults::{Fault, Service};
use crate::shared::Shared;

/// The service a request calls, for the services faults can be planned for.
fn service_of(request: &Request) -> Option<Service> {
    match request.uri().path() {
        "/tickets" | "/token/refresh" => Some(Service::Sls),
        crate::dsw::PATH => Some(Service::Dsw),
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
    if let Fault::Delay(delay) = fault {
        tokio::time::sleep(delay).await;
        return next.run(request).await;
    }
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
    let exp_millis = crate::shared::unix_seconds((shared.clock)() + Duration::from_secs(3_600)) * 1000;
    match path {
        "/tickets" => json(StatusCode::OK, serde_json::json!({ "ticket": secret })),
        "/token/refresh" => json(StatusCode::OK, serde_json::json!({ "accessToken": secret })),
        crate::dsw::PATH => json(
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
        // A delayed call is answered by its handler (see `inject`); here it is the hang it would
        // be if it never got there.
        Fault::Hang(d) | Fault::Delay(d) => {
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
