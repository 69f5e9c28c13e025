//! Probes for orchestrators: `/healthz` says the process answers; `/readyz` says this node can
//! serve a flow now — the database answers, the ephemeral store takes a write, gives it
//! back and counts, the key ring is loaded — and names what fails, without details an
//! attacker could use.

use std::time::Duration;

use actix_web::http::header;
use actix_web::HttpResponse;
use serde_json::json;

use super::{tokens, AppData};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "status": "ok" }))
}

pub async fn readyz(app: AppData) -> HttpResponse {
    let database = app.read(|store| store.ping()).await.is_ok();
    // Each kind of command the flows send: a write, a take, a counter.
    let key = super::keyspace::Space::Ready.key(&tokens::random());
    let ttl = Duration::from_secs(5);
    let ephemeral = app.ephemeral.put(&key, b"1".to_vec(), ttl).await.is_ok()
        && matches!(app.ephemeral.take(&key).await, Ok(Some(_)))
        && matches!(app.ephemeral.incr(&key, ttl).await, Ok(1));
    // A loaded ring always has a signing key per algorithm (KeyRing::load refuses otherwise).
    let keys = !app.keys().signing_keys().is_empty();
    let draining = app.is_draining();
    let ready = database && ephemeral && keys && !draining;
    let status = match (ready, draining) {
        (true, _) => "ready",
        (false, true) => "draining",
        (false, false) => "unavailable",
    };
    let body = json!({
        "status": status,
        "database": database,
        "ephemeral": ephemeral,
        "keys": keys,
    });
    let mut res = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}
