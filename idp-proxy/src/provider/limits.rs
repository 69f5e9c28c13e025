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
    let window = cfg.window.as_secs().max(1);
    let now = app.now().max(0) as u64;
    let start = now - now % window;
    // Hashed: the key names no client, address or person.
    let key = super::keyspace::Space::RateLimit
        .key(&format!("{name}:{}:{start}", tokens::sha256_b64(who)));
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

/// Who an address-based limit counts: the client's address (from the configured proxy
/// header, else the peer), IPv6 by its /64, since one subscriber holds a whole /64 and could
/// otherwise take a fresh address for every request.
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
        .map(|ip| counted_as(&ip))
        .unwrap_or_default()
}

/// An IPv6 address as its /64 network; IPv4 (mapped or not) and anything else as given.
fn counted_as(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{network}/64")
        }
        Ok(v4) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::counted_as;

    #[test]
    fn ipv6_addresses_of_one_subscriber_count_as_one() {
        assert_eq!(counted_as("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(counted_as("2001:db8:1:2:bbbb:cc::9"), "2001:db8:1:2::/64");
        assert_ne!(counted_as("2001:db8:1:3::1"), counted_as("2001:db8:1:2::1"));
        assert_eq!(counted_as("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(counted_as("192.0.2.7"), "192.0.2.7");
        assert_eq!(counted_as("not-an-address"), "not-an-address");
    }
}
