//! Rate limits, counted in the ephemeral store so every node shares them: fixed windows of
//! `rate_limits.window_secs` per client (token, revocation, introspection, PAR), per IP
//! address (authorization requests, login callbacks) and per aidant (choice page, choice).
//! Over a limit: 429 with `Retry-After`; the window's end lets the next request through.

use std::time::Duration;

use actix_web::HttpRequest;

use super::tokens;
use super::App;
use crate::ephemeral::EphemeralError;

#[derive(Clone, Copy)]
pub enum Limit {
    Client,
    Ip,
    Aidant,
}

/// `Some(seconds to wait)` when `who` is over the limit in the current window.
pub async fn over(app: &App, limit: Limit, who: &str) -> Result<Option<u64>, EphemeralError> {
    let cfg = &app.config.rate_limits;
    let (name, max) = match limit {
        Limit::Client => ("c", cfg.per_client),
        Limit::Ip => ("i", cfg.per_ip),
        Limit::Aidant => ("a", cfg.per_aidant),
    };
    let window = cfg.window_secs.max(1);
    let now = app.now().max(0) as u64;
    let start = now - now % window;
    // Hashed: the key names no client, address or person.
    let key = format!("rl:{name}:{}:{start}", tokens::sha256_b64(who));
    let count = app
        .ephemeral
        .incr(&key, Duration::from_secs(window))
        .await?;
    if count <= max {
        return Ok(None);
    }
    crate::metrics::rate_limited(match limit {
        Limit::Client => "client",
        Limit::Ip => "ip",
        Limit::Aidant => "aidant",
    });
    Ok(Some((start + window).saturating_sub(now).max(1)))
}

/// The client's address: from the configured proxy header, else the peer.
pub fn client_ip(app: &App, req: &HttpRequest) -> String {
    let from_header = app
        .config
        .rate_limits
        .client_ip_header
        .as_deref()
        .and_then(|h| req.headers().get(h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    from_header
        .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
        .unwrap_or_default()
}
