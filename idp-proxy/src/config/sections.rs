//! The file's shape: one struct per section, with the defaults a section left out takes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mandate_store::Level;
use serde::Deserialize;

use super::values::{millis, secs, Issuer};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: SocketAddr,
    /// Public URL of this provider, without trailing slash: the `iss` of every token.
    pub issuer: Issuer,
    #[serde(default)]
    pub workers: Option<usize>,
    /// Take the `X-Request-Id` the reverse proxy sets (when short and safe) as the request's
    /// id in logs; only behind a proxy that sets or replaces it, or clients could choose ids.
    #[serde(default)]
    pub trust_request_id: bool,
    /// On SIGTERM the node first drains this long: `/readyz` answers 503 so balancers take it
    /// out, and requests are still served (with `Connection: close`). Then it stops accepting.
    #[serde(default, rename = "drain_secs", with = "secs")]
    pub drain: Duration,
    /// After the drain, in-flight requests get this long to finish.
    #[serde(
        default = "default_shutdown",
        rename = "shutdown_timeout_secs",
        with = "secs"
    )]
    pub shutdown_timeout: Duration,
}

fn default_shutdown() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub url: String,
    #[serde(default = "default_pool")]
    pub max_connections: u32,
    /// Connections kept open while idle (default: `max_connections`).
    #[serde(default)]
    pub min_idle: Option<u32>,
    /// How long a request waits for a pooled connection before it gets a 503.
    #[serde(
        default = "default_acquire_timeout",
        rename = "acquire_timeout_ms",
        with = "millis"
    )]
    pub acquire_timeout: Duration,
    /// PostgreSQL: bound on opening a connection (libpq `connect_timeout`).
    #[serde(
        default = "default_connect_timeout",
        rename = "connect_timeout_secs",
        with = "secs"
    )]
    pub connect_timeout: Duration,
    /// PostgreSQL: `statement_timeout` of every connection; 0 leaves the server's setting.
    #[serde(
        default = "default_statement_timeout",
        rename = "statement_timeout_ms",
        with = "millis"
    )]
    pub statement_timeout: Duration,
    /// Apply pending migrations when `serve` starts. Off where a separate step
    /// (`idp-proxy migrate`, a Kubernetes Job) runs them before the nodes roll out.
    #[serde(default = "default_true")]
    pub migrate_at_start: bool,
}

fn default_pool() -> u32 {
    8
}
fn default_acquire_timeout() -> Duration {
    Duration::from_millis(5000)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_statement_timeout() -> Duration {
    Duration::from_millis(5000)
}

impl Database {
    pub fn pool_options(&self) -> mandate_store::PoolOptions {
        mandate_store::PoolOptions {
            max_connections: self.max_connections,
            min_idle: self.min_idle,
            acquire_timeout: self.acquire_timeout,
            connect_timeout: self.connect_timeout,
            statement_timeout: (!self.statement_timeout.is_zero())
                .then_some(self.statement_timeout),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Where `GET /metrics` answers, apart from the public listener (keep it off the internet).
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ephemeral {
    #[serde(default)]
    pub backend: EphemeralBackend,
    /// Redis: `redis://` or `rediss://` (TLS), password in the URL — from the environment
    /// (`IDP_PROXY_EPHEMERAL__URL`), never from a file in the repository.
    #[serde(default)]
    pub url: Option<String>,
    /// Put before every key, so deployments can share a Redis.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Bound on each Redis command and (re)connection: past it, the request fails closed.
    #[serde(
        default = "default_ephemeral_timeout",
        rename = "timeout_ms",
        with = "millis"
    )]
    pub timeout: Duration,
}

fn default_prefix() -> String {
    "idp-proxy:".into()
}
fn default_ephemeral_timeout() -> Duration {
    Duration::from_millis(500)
}

impl Default for Ephemeral {
    fn default() -> Self {
        Ephemeral {
            backend: EphemeralBackend::default(),
            url: None,
            prefix: default_prefix(),
            timeout: default_ephemeral_timeout(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EphemeralBackend {
    /// In this process: one node only.
    #[default]
    Memory,
    /// Shared by every node.
    Redis,
    /// A Redis Cluster: `url` lists some of its nodes, comma-separated.
    #[serde(rename = "redis-cluster")]
    RedisCluster,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    pub dir: PathBuf,
    /// How often a running node re-reads the ring (new data keys, signing key rotation).
    #[serde(default = "default_reload", rename = "reload_secs", with = "secs")]
    pub reload: Duration,
    /// How long clients may cache the JWKS (its `Cache-Control: max-age`). A next key signs
    /// only once it has been published longer than this plus two reloads.
    #[serde(
        default = "default_jwks_max_age",
        rename = "jwks_max_age_secs",
        with = "secs"
    )]
    pub jwks_max_age: Duration,
}

fn default_reload() -> Duration {
    Duration::from_secs(10)
}
fn default_jwks_max_age() -> Duration {
    Duration::from_secs(300)
}

impl Keys {
    /// How long a next key must have been published before `keys rotate` makes it sign.
    pub fn min_next_age(&self) -> Duration {
        self.jwks_max_age + 2 * self.reload
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    #[serde(default = "default_code_ttl", rename = "code_ttl_secs", with = "secs")]
    pub code_ttl: Duration,
    /// Service providers call userinfo right after the token: a minute is enough, and keeps
    /// the ephemeral store small (FranceConnect's access tokens also live 60 s).
    #[serde(
        default = "default_access_token_ttl",
        rename = "access_token_ttl_secs",
        with = "secs"
    )]
    pub access_token_ttl: Duration,
    #[serde(
        default = "default_token_ttl",
        rename = "id_token_ttl_secs",
        with = "secs"
    )]
    pub id_token_ttl: Duration,
}

fn default_code_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_token_ttl() -> Duration {
    Duration::from_secs(300)
}
fn default_access_token_ttl() -> Duration {
    Duration::from_secs(60)
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            code_ttl: default_code_ttl(),
            access_token_ttl: default_access_token_ttl(),
            id_token_ttl: default_token_ttl(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// An aidant idle longer than this logs in again at the upstream IdP.
    #[serde(default = "default_idle", rename = "idle_timeout_secs", with = "secs")]
    pub idle_timeout: Duration,
    /// How long an interaction (authorize → choice) may take.
    #[serde(
        default = "default_interaction",
        rename = "interaction_ttl_secs",
        with = "secs"
    )]
    pub interaction_ttl: Duration,
    /// Absolute lifetime of an aidant session.
    #[serde(
        default = "default_session_max",
        rename = "max_lifetime_secs",
        with = "secs"
    )]
    pub max_lifetime: Duration,
}

fn default_idle() -> Duration {
    Duration::from_secs(900)
}
fn default_interaction() -> Duration {
    Duration::from_secs(600)
}
fn default_session_max() -> Duration {
    Duration::from_secs(12 * 3600)
}

impl Default for Session {
    fn default() -> Self {
        Session {
            idle_timeout: default_idle(),
            interaction_ttl: default_interaction(),
            max_lifetime: default_session_max(),
        }
    }
}

/// Requests allowed per window, counted in the ephemeral store (so across nodes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    #[serde(default = "default_window", rename = "window_secs", with = "secs")]
    pub window: Duration,
    /// Token, revocation, introspection and PAR requests per client.
    #[serde(default = "default_per_client")]
    pub per_client: u64,
    /// Authorization requests and login callbacks per IP address.
    #[serde(default = "default_per_ip")]
    pub per_ip: u64,
    /// Choice pages and choices per aidant.
    #[serde(default = "default_per_aidant")]
    pub per_aidant: u64,
    /// The header that carries the client's address behind a reverse proxy you run (e.g.
    /// "X-Forwarded-For", its first address); without it, the peer address counts.
    #[serde(default)]
    pub client_ip_header: Option<String>,
}

fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_per_client() -> u64 {
    6000
}
fn default_per_ip() -> u64 {
    120
}
fn default_per_aidant() -> u64 {
    240
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            window: default_window(),
            per_client: default_per_client(),
            per_ip: default_per_ip(),
            per_aidant: default_per_aidant(),
            client_ip_header: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mandates {
    /// The longest a new mandate may last, in days (the field's rule: twelve months).
    #[serde(default = "default_mandate_days")]
    pub max_days: u64,
    /// The eIDAS level the aidant's own login must reach to create a mandate (e.g. `eidas2`:
    /// a personal code card, as the field asks); unset: any login.
    #[serde(default)]
    pub min_aidant_acr: Option<Level>,
}

fn default_mandate_days() -> u64 {
    365
}

impl Default for Mandates {
    fn default() -> Self {
        Mandates {
            max_days: default_mandate_days(),
            min_aidant_acr: None,
        }
    }
}

/// How long the journal, ended mandates and the identities of usagers without mandates are
/// kept. Purged by `idp-proxy retention purge`, and by each node when `automatic`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default = "default_retention_days")]
    pub days: u64,
    #[serde(default = "default_true")]
    pub automatic: bool,
    /// How often a node purges (nodes take turns through the store's write lock).
    #[serde(
        default = "default_purge_every",
        rename = "purge_every_secs",
        with = "secs"
    )]
    pub purge_every: Duration,
}

fn default_retention_days() -> u64 {
    730
}
fn default_true() -> bool {
    true
}
fn default_purge_every() -> Duration {
    Duration::from_secs(86_400)
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: default_retention_days(),
            automatic: true,
            purge_every: default_purge_every(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstreams {
    pub aidant: UpstreamIdp,
    /// Where usagers log in to give or end a mandate (FranceConnect); optional.
    #[serde(default)]
    pub franceconnect: Option<UpstreamIdp>,
}

impl Upstreams {
    /// Each upstream with its section's name.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &UpstreamIdp)> {
        let fc = self.franceconnect.as_ref();
        std::iter::once(("upstream.aidant", &self.aidant))
            .chain(fc.map(|f| ("upstream.franceconnect", f)))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamIdp {
    pub issuer: Issuer,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Read the secret from this file instead (Kubernetes/systemd credentials).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    #[serde(default = "default_timeout", rename = "timeout_secs", with = "secs")]
    pub timeout: Duration,
    /// The ID-token claim that names the aidant in the import and provisioning files.
    #[serde(default)]
    pub subject_claim: SubjectClaim,
    /// How we authenticate at its token endpoint; unset: client_secret_basic
    /// (`[upstream.franceconnect]`: client_secret_post, the one FranceConnect v2 takes).
    #[serde(default)]
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// The one algorithm its ID tokens may be signed with (ES256, RS256 or PS256); unset: any
    /// of them, never HS256 or `none` (`[upstream.franceconnect]`: ES256 unless set).
    #[serde(default)]
    pub id_token_signed_response_alg: Option<SigningAlg>,
    /// Userinfo must be a JWT signed with this algorithm (`[upstream.franceconnect]`: ES256
    /// unless set); unset: JSON, or a JWT signed with any asymmetric algorithm.
    #[serde(default)]
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    /// `acr_values` to ask for; the ID token's `acr` must be one of them.
    #[serde(default)]
    pub acr_values: Option<String>,
    /// The eIDAS level (`eidas1`…`eidas3`) each `acr` this provider returns stands for;
    /// `eidas1`…`eidas3` stand for themselves. Any other `acr`, or none, reaches no level.
    #[serde(default)]
    pub acr_levels: BTreeMap<String, Level>,
    /// Ask for a fresh authentication every time (FranceConnect for a mandate).
    #[serde(default)]
    pub always_prompt_login: bool,
    /// Read the identity from userinfo (signed, possibly encrypted JWT or JSON).
    #[serde(default)]
    pub userinfo: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubjectClaim {
    /// `sub`: stable at the upstream IdP, the default.
    #[default]
    Sub,
    /// `email`, lower-cased; accepted only with `email_verified: true`.
    Email,
}

fn default_upstream_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    #[default]
    ES256,
    RS256,
    PS256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::PS256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::PS256 => "PS256",
        }
    }

    /// Key-file prefix in the key ring (`es256-…`).
    pub fn prefix(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "es256-",
            SigningAlg::RS256 => "rs256-",
            SigningAlg::PS256 => "ps256-",
        }
    }
}

/// Key management for encrypting ID tokens and userinfo to a client (content: A256GCM).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum EncryptionAlg {
    #[serde(rename = "RSA-OAEP-256")]
    RsaOaep256,
    #[serde(rename = "ECDH-ES")]
    EcdhEs,
}

impl EncryptionAlg {
    pub const ALL: [EncryptionAlg; 2] = [EncryptionAlg::RsaOaep256, EncryptionAlg::EcdhEs];

    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionAlg::RsaOaep256 => "RSA-OAEP-256",
            EncryptionAlg::EcdhEs => "ECDH-ES",
        }
    }
}

/// The only content encryption offered.
pub const CONTENT_ENCRYPTION: &str = "A256GCM";
