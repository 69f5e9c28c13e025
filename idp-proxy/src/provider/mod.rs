//! The OpenID Provider: discovery, JWKS, authorize, token, userinfo, end_session. Handlers
//! are lists of checks (see `checks/`); errors are types mapped once (`error.rs`). The hot
//! path costs one ephemeral read, one indexed query, one signature and one atomic swap (code
//! spent, access token stored).

pub mod authorize;
pub mod backchannel;
pub mod checks;
pub mod claims;
pub mod client_auth;
pub mod client_keys;
pub mod discovery;
pub mod error;
pub mod health;
pub mod introspection;
pub mod keyspace;
pub mod limits;
pub mod logout;
pub mod page;
pub mod params;
pub mod records;
pub mod request;
pub mod respond;
pub mod session;
pub mod token;
pub mod tokens;
pub mod userinfo;

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest};
use mandate_store::{Store, StoreError};

use crate::clock::Clock;
use crate::config::Config;
use crate::ephemeral::EphemeralStore;
use crate::keys::KeyRing;
use crate::upstream::Upstream;

/// Everything a request needs, shared by all workers.
pub struct App {
    pub config: Config,
    /// Replaced whole when a node re-reads the ring (rotation); read with `keys()`.
    pub keys: arc_swap::ArcSwap<KeyRing>,
    pub store: Store,
    pub ephemeral: Arc<dyn EphemeralStore>,
    /// The aidants' identity provider.
    pub upstream: Arc<dyn Upstream>,
    /// FranceConnect, where usagers log in to give a mandate; absent if not configured.
    pub franceconnect: Option<Arc<dyn Upstream>>,
    pub clock: Arc<dyn Clock>,
    /// Clients' public keys (inline or fetched from their jwks_uri).
    pub client_keys: client_keys::ClientKeys,
    /// Calls to clients (back-channel logout): bounded, no redirects.
    pub http: reqwest::Client,
    /// Back-channel logout deliveries in flight, finished before a graceful exit.
    pub deliveries: backchannel::Deliveries,
    pub discovery_json: String,
    /// One permit per database connection: blocking calls queue here, on the async side,
    /// instead of each parking a thread of the blocking pool on the connection pool.
    pub db_slots: Arc<tokio::sync::Semaphore>,
    /// Set on SIGTERM: the node is leaving (`/readyz` 503, connections closed after each
    /// response) but still serves.
    pub draining: std::sync::atomic::AtomicBool,
}

pub type AppData = web::Data<App>;

/// Binds interactions to the browser that started them.
pub const BROWSER_COOKIE: &str = "__Host-idp-browser";
/// The aidant's session.
pub const SESSION_COOKIE: &str = "__Host-idp-session";
/// The usager's session in their own space.
pub const USAGER_COOKIE: &str = "__Host-idp-usager";

impl App {
    /// The key ring as loaded last.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.load_full()
    }

    /// A person's id (usager or aidant) as `client` sees it: the id itself, or pairwise.
    pub fn subject(&self, client: &crate::config::Client, local_id: &str) -> String {
        match &client.pairwise_sector {
            Some(sector) => self.keys().pairwise(sector, local_id),
            None => local_id.to_string(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.config.server.issuer
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `__Host-` cookies: Secure, Path=/, no Domain. Browsers accept Secure cookies from
    /// http://localhost and 127.0.0.1, so development on loopback works unchanged.
    pub fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(SameSite::Lax)
            .finish()
    }

    pub fn removal_cookie(&self, name: &'static str) -> Cookie<'static> {
        let mut c = self.cookie(name, String::new());
        c.make_removal();
        c
    }
}

impl App {
    /// Runs a read of the mandate store. On SQLite it runs inline: an in-process indexed read
    /// takes microseconds, less than handing it to the blocking pool and back. On PostgreSQL it
    /// waits on the network, so it goes to the blocking pool. A call that cannot run is the
    /// store unavailable, like one that failed: one error type, `E` (a `StoreError`, or an
    /// outcome that has one, like `UseError`).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if self.store.backend() == "sqlite" {
            f(&self.store)
        } else {
            self.write(f).await
        }
    }

    /// Runs a write (a transaction that may wait for the write lock and the disk) on the
    /// blocking pool, never on a worker thread. The wait for a slot is bounded like the wait
    /// for a pooled connection (`database.acquire_timeout_ms`): with the database down, each
    /// call holds its slot that long, and an unbounded queue behind them would turn every
    /// 503 into a client's time-out.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let blocked = |why: &str| E::from(StoreError::Unavailable(why.into()));
        let wait = self.config.database.acquire_timeout;
        let slot = tokio::time::timeout(wait, self.db_slots.clone().acquire_owned())
            .await
            .map_err(|_| blocked("no free store slot within database.acquire_timeout_ms"))?
            .map_err(|_| blocked("store slots closed"))?;
        let store = self.store.clone();
        // The slot goes with the call: a request dropped mid-call (client gone) frees it only
        // when the call, and its connection, are done.
        web::block(move || {
            let _slot = slot;
            f(&store)
        })
        .await
        .map_err(|_| blocked("the blocking pool is gone"))?
    }
}

/// This browser's id (the `__Host-idp-browser` cookie), or a new one, then `true`: the
/// response sets the cookie.
pub fn browser_id(req: &HttpRequest) -> (String, bool) {
    match cookie_value(req, BROWSER_COOKIE) {
        Some(id) => (id, false),
        None => (tokens::random(), true),
    }
}

pub fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::configuration),
    )
    .route("/jwks", web::get().to(discovery::jwks))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/authorize", web::get().to(authorize::get))
    .route("/authorize", web::post().to(authorize::post))
    .route("/token", web::post().to(token::token))
    .route("/par", web::post().to(request::push))
    .route("/revoke", web::post().to(introspection::revoke))
    .route("/introspect", web::post().to(introspection::introspect))
    .route("/userinfo", web::get().to(userinfo::userinfo))
    .route("/userinfo", web::post().to(userinfo::userinfo))
    .route("/end_session", web::get().to(logout::get))
    .route("/end_session", web::post().to(logout::post))
    .route("/logout/callback", web::get().to(logout::upstream_done));
}
