//! What every request leaves behind: an id, carried by a tracing span so that each log line of
//! the request names it and returned as `X-Request-Id`; one `request` log line; the request
//! metrics. Routes are logged and counted by pattern, never by path or query: a query holds
//! codes, states and login hints.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The reverse proxy's id when the node trusts it (`server.trust_request_id`, behind a proxy
/// that sets it) and it is a short token of safe characters, so one id can be grepped across
/// both logs; else a new one.
fn request_id(req: &ServiceRequest, trusted: bool) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .filter(|_| trusted)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (8..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let (trusted, draining) = req
        .app_data::<crate::provider::AppData>()
        .map_or((false, false), |app| {
            (app.config.server.trust_request_id, app.is_draining())
        });
    let id = request_id(&req, trusted);
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id);
    let outcome = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let (route, status) = match &outcome {
        Ok(res) => (res.request().match_pattern(), res.status().as_u16()),
        Err(e) => (None, e.as_response_error().status_code().as_u16()),
    };
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    // Any token is a valid method: only the ones served get their own series.
    let method = match method.as_str() {
        m @ ("GET" | "POST" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    };
    crate::metrics::request(&route, method, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            method,
            route,
            status,
            micros = elapsed.as_micros() as u64,
            "request"
        )
    });
    outcome.map(|mut res| {
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(REQUEST_ID, value);
        }
        if draining {
            // Keep-alive clients reconnect, through the balancer, to a node that stays.
            res.response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        res
    })
}
