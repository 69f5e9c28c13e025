//! Prometheus metrics, in the text format on their own listener (`[metrics] listen`), apart
//! from the public one. Every label has a bounded set of values: route patterns (never raw
//! paths), configured client ids, démarches, refusal codes, store and limit names.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The process's metrics: counted wherever the event happens, rendered on scrape.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    tokens: IntCounterVec,
    refusals: IntCounterVec,
    store_errors: IntCounterVec,
    rate_limited: IntCounterVec,
}

/// One set per process, so that code far from the app (error conversions) can count. Built by
/// [`init`] at start; before that (unit tests, CLI commands) recording does nothing.
static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Builds and registers the metrics; `serve` calls it before listening, so a definition error
/// stops the start instead of surfacing in a request.
pub fn init() -> Result<&'static Metrics, prometheus::Error> {
    if let Some(m) = METRICS.get() {
        return Ok(m);
    }
    let built = Metrics::new()?;
    Ok(METRICS.get_or_init(|| built))
}

fn with(f: impl FnOnce(&Metrics)) {
    if let Some(m) = METRICS.get() {
        f(m);
    }
}

pub fn request(route: &str, method: &str, status: u16, elapsed: Duration) {
    with(|m| {
        m.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        m.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    });
}

pub fn token_issued(client: &str, demarche: &str) {
    with(|m| m.tokens.with_label_values(&[client, demarche]).inc());
}

pub fn refused(reason: &str) {
    with(|m| m.refusals.with_label_values(&[reason]).inc());
}

/// A failed call to the ephemeral store (database failures are counted by the store).
pub fn ephemeral_error() {
    with(|m| m.store_errors.with_label_values(&["ephemeral"]).inc());
}

pub fn rate_limited(scope: &str) {
    with(|m| m.rate_limited.with_label_values(&[scope]).inc());
}

impl Metrics {
    fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let requests = counter(
            "idp_proxy_http_requests_total",
            "HTTP requests answered, by route pattern, method and status",
            &["route", "method", "status"],
        )?;
        let tokens = counter(
            "idp_proxy_tokens_issued_total",
            "Token responses issued, by client and démarche",
            &["client", "demarche"],
        )?;
        let refusals = counter(
            "idp_proxy_mandate_refusals_total",
            "Mandate uses refused, by reason",
            &["reason"],
        )?;
        let store_errors = counter(
            "idp_proxy_store_errors_total",
            "Failed calls to a backing store (database: connection, pool or timeout; ephemeral: Redis)",
            &["store"],
        )?;
        let rate_limited = counter(
            "idp_proxy_rate_limited_total",
            "Requests refused by a rate limit, by scope",
            &["scope"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "idp_proxy_http_request_duration_seconds",
                "Time from request to response head, by route pattern",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        // Series that alerts watch exist from the start, at zero.
        for store in ["database", "ephemeral"] {
            store_errors.with_label_values(&[store]);
        }
        for scope in ["client", "ip", "aidant"] {
            rate_limited.with_label_values(&[scope]);
        }
        Ok(Metrics {
            registry,
            requests,
            latency,
            tokens,
            refusals,
            store_errors,
            rate_limited,
        })
    }

    /// The text exposition. `database_failures` is the store's own count since it opened: the
    /// database counter is brought up to it here, so it counts every failed call, even those
    /// no request saw (pool refills, background jobs).
    pub fn render(&self, database_failures: u64) -> String {
        let counter = self.store_errors.with_label_values(&["database"]);
        let seen = counter.get();
        if database_failures > seen {
            counter.inc_by(database_failures - seen);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
