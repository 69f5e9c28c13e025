//! Typed configuration, read once at start-up from a TOML file and `IDP_PROXY_*` environment
//! variables (`__` separates levels: `IDP_PROXY_UPSTREAM__AIDANT__CLIENT_SECRET`).
//! Validation names the key and the fix; nothing reads the environment after this.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use mandate_store::Demarche;
use serde::Deserialize;
use url::Url;

mod franceconnect;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Parse {
        file: String,
        #[source]
        source: Box<figment::Error>,
    },
    #[error("{file}: `{key}`: {problem}. Fix: {fix}")]
    Invalid {
        file: String,
        key: String,
        problem: String,
        fix: String,
    },
    #[error("{file}: `{key}`: cannot read {path}")]
    SecretFile {
        file: String,
        key: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    #[serde(default)]
    pub ephemeral: Ephemeral,
    pub keys: Keys,
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub session: Session,
    #[serde(default)]
    pub mandates: Mandates,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Prometheus metrics on their own listener; absent: no metrics.
    #[serde(default)]
    pub metrics: Option<Metrics>,
    pub upstream: Upstreams,
    #[serde(default)]
    pub clients: Vec<Client>,
    /// The file this was read from (for messages and relative paths).
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: SocketAddr,
    /// Public URL of this provider, without trailing slash: the `iss` of every token.
    pub issuer: String,
    #[serde(default)]
    pub workers: Option<usize>,
    /// Take the `X-Request-Id` the reverse proxy sets (when short and safe) as the request's
    /// id in logs; only behind a proxy that sets or replaces it, or clients could choose ids.
    #[serde(default)]
    pub trust_request_id: bool,
    /// On SIGTERM the node first drains this long: `/readyz` answers 503 so balancers take it
    /// out, and requests are still served (with `Connection: close`). Then it stops accepting.
    #[serde(default)]
    pub drain_secs: u64,
    /// After the drain, in-flight requests get this long to finish.
    #[serde(default = "default_shutdown")]
    pub shutdown_timeout_secs: u64,
}

fn default_shutdown() -> u64 {
    30
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
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout_ms: u64,
    /// PostgreSQL: bound on opening a connection (libpq `connect_timeout`).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// PostgreSQL: `statement_timeout` of every connection; 0 leaves the server's setting.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_ms: u64,
    /// Apply pending migrations when `serve` starts. Off where a separate step
    /// (`idp-proxy migrate`, a Kubernetes Job) runs them before the nodes roll out.
    #[serde(default = "default_true")]
    pub migrate_at_start: bool,
}

fn default_pool() -> u32 {
    8
}
fn default_acquire_timeout() -> u64 {
    5000
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_statement_timeout() -> u64 {
    5000
}

impl Database {
    pub fn pool_options(&self) -> mandate_store::PoolOptions {
        use std::time::Duration;
        mandate_store::PoolOptions {
            max_connections: self.max_connections,
            min_idle: self.min_idle,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            statement_timeout: (self.statement_timeout_ms > 0)
                .then(|| Duration::from_millis(self.statement_timeout_ms)),
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
    #[serde(default = "default_ephemeral_timeout")]
    pub timeout_ms: u64,
}

fn default_prefix() -> String {
    "idp-proxy:".into()
}
fn default_ephemeral_timeout() -> u64 {
    500
}

impl Default for Ephemeral {
    fn default() -> Self {
        Ephemeral {
            backend: EphemeralBackend::default(),
            url: None,
            prefix: default_prefix(),
            timeout_ms: default_ephemeral_timeout(),
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
    #[serde(default = "default_reload")]
    pub reload_secs: u64,
    /// How long clients may cache the JWKS (its `Cache-Control: max-age`). A next key signs
    /// only once it has been published longer than this plus two reloads.
    #[serde(default = "default_jwks_max_age")]
    pub jwks_max_age_secs: u64,
}

fn default_reload() -> u64 {
    10
}
fn default_jwks_max_age() -> u64 {
    300
}

impl Keys {
    /// How long a next key must have been published before `keys rotate` makes it sign.
    pub fn min_next_age(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.jwks_max_age_secs + 2 * self.reload_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    #[serde(default = "default_code_ttl")]
    pub code_ttl_secs: u64,
    /// Service providers call userinfo right after the token: a minute is enough, and keeps
    /// the ephemeral store small (FranceConnect's access tokens also live 60 s).
    #[serde(default = "default_access_token_ttl")]
    pub access_token_ttl_secs: u64,
    #[serde(default = "default_token_ttl")]
    pub id_token_ttl_secs: u64,
}

fn default_code_ttl() -> u64 {
    60
}
fn default_token_ttl() -> u64 {
    300
}
fn default_access_token_ttl() -> u64 {
    60
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            code_ttl_secs: default_code_ttl(),
            access_token_ttl_secs: default_access_token_ttl(),
            id_token_ttl_secs: default_token_ttl(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// An aidant idle longer than this logs in again at the upstream IdP.
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// How long an interaction (authorize → choice) may take.
    #[serde(default = "default_interaction")]
    pub interaction_ttl_secs: u64,
    /// Absolute lifetime of an aidant session.
    #[serde(default = "default_session_max")]
    pub max_lifetime_secs: u64,
}

fn default_idle() -> u64 {
    900
}
fn default_interaction() -> u64 {
    600
}
fn default_session_max() -> u64 {
    12 * 3600
}

impl Default for Session {
    fn default() -> Self {
        Session {
            idle_timeout_secs: default_idle(),
            interaction_ttl_secs: default_interaction(),
            max_lifetime_secs: default_session_max(),
        }
    }
}

/// Requests allowed per window, counted in the ephemeral store (so across nodes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    #[serde(default = "default_window")]
    pub window_secs: u64,
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

fn default_window() -> u64 {
    60
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
            window_secs: default_window(),
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
}

fn default_mandate_days() -> u64 {
    365
}

impl Default for Mandates {
    fn default() -> Self {
        Mandates {
            max_days: default_mandate_days(),
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
    #[serde(default = "default_purge_every")]
    pub purge_every_secs: u64,
}

fn default_retention_days() -> u64 {
    730
}
fn default_true() -> bool {
    true
}
fn default_purge_every() -> u64 {
    86_400
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: default_retention_days(),
            automatic: true,
            purge_every_secs: default_purge_every(),
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamIdp {
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Read the secret from this file instead (Kubernetes/systemd credentials).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
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
    pub acr_levels: std::collections::BTreeMap<String, String>,
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
fn default_timeout() -> u64 {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Hex SHA-256 of the client secret (`client_secret_basic`, `client_secret_post`): the
    /// secret itself is never in config. Client secrets are random and long, so a fast hash
    /// is enough and keeps the token endpoint cheap.
    #[serde(default)]
    pub client_secret_sha256: String,
    /// `client_secret_jwt` only: the shared secret itself (an HMAC key), read from this file.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(skip)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: ClientAuth,
    /// The one algorithm the client signs its assertions with (`private_key_jwt`: ES256,
    /// RS256 or PS256, any of them if unset; `client_secret_jwt`: HS256).
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The client's public keys (assertion signatures, encryption), inline…
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// …or fetched (cached, refreshed on an unknown `kid`).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub demarches: Vec<Demarche>,
    /// This client is FranceConnect's core (idp-proxy registered as one of its identity
    /// providers): `rep_scope` always answers in FranceConnect's `DelegationScope` strings, and
    /// the way back from every page names FranceConnect.
    #[serde(default)]
    pub franceconnect: bool,
    /// The eIDAS levels this client accepts in `acr` (consecutive, e.g. `["eidas1"]`: what
    /// FranceConnect registered as the identity provider's `allowedAcr`); unset: all three.
    /// Every answer carries an `acr` within them, else `unmet_authentication_requirements`.
    #[serde(default)]
    pub allowed_acr: Option<Vec<String>>,
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// ID tokens encrypted to the client's key (A256GCM), signed inside.
    #[serde(default)]
    pub id_token_encrypted_response_alg: Option<EncryptionAlg>,
    #[serde(default)]
    pub id_token_encrypted_response_enc: Option<String>,
    /// Userinfo as a signed JWT (`application/jwt`) rather than JSON.
    #[serde(default)]
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    #[serde(default)]
    pub userinfo_encrypted_response_alg: Option<EncryptionAlg>,
    #[serde(default)]
    pub userinfo_encrypted_response_enc: Option<String>,
    #[serde(default = "yes")]
    pub pkce_required: bool,
    /// This client's access-token lifetime, if shorter than `tokens.access_token_ttl_secs`.
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
    /// eIDAS levels asked when a request names none (`eidas1`…`eidas3`).
    #[serde(default)]
    pub default_acr_values: Option<Vec<String>>,
    /// `public` (the usager's and aidant's ids) or `pairwise` (per sector, OIDC Core §8).
    #[serde(default)]
    pub subject_type: SubjectType,
    /// Pairwise sector: this URI's host (not fetched: clients are registered statically)…
    #[serde(default)]
    pub sector_identifier_uri: Option<String>,
    /// …or a sector named in config (clients of one administration share it).
    #[serde(default)]
    pub sector: Option<String>,
    /// The sector of a pairwise client, resolved once at load (`None`: public subjects).
    #[serde(skip)]
    pub pairwise_sector: Option<String>,
    /// Where logout tokens go when the aidant's session ends (OIDC Back-Channel Logout).
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Logout tokens always carry `sid`; accepted for registration parity.
    #[serde(default)]
    pub backchannel_logout_session_required: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    #[default]
    Public,
    Pairwise,
}

/// How a client authenticates at the token, revocation and introspection endpoints.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    ClientSecretJwt,
    PrivateKeyJwt,
}

impl ClientAuth {
    pub const ALL: [ClientAuth; 4] = [
        ClientAuth::ClientSecretBasic,
        ClientAuth::ClientSecretPost,
        ClientAuth::ClientSecretJwt,
        ClientAuth::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::ClientSecretJwt => "client_secret_jwt",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl Client {
    /// The pairwise sector: `sector`, else the host of `sector_identifier_uri`, else the one
    /// host of the redirect URIs (`validate` refuses several hosts without a sector).
    pub fn sector(&self) -> Option<String> {
        let host = |u: &str| Url::parse(u).ok()?.host_str().map(str::to_string);
        if let Some(s) = &self.sector {
            return Some(s.clone());
        }
        if let Some(u) = &self.sector_identifier_uri {
            return host(u);
        }
        let mut hosts: Vec<String> = self.redirect_uris.iter().filter_map(|u| host(u)).collect();
        hosts.sort();
        hosts.dedup();
        match hosts.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    /// The lowest and highest eIDAS level (1 to 3) this client accepts (`allowed_acr`).
    pub fn acr_range(&self) -> (u8, u8) {
        let levels = self
            .allowed_acr
            .iter()
            .flatten()
            .filter_map(|a| crate::provider::checks::acr::level(a));
        let (lo, hi) = levels.fold((3, 1), |(lo, hi), l| (lo.min(l), hi.max(l)));
        if lo > hi {
            (1, 3)
        } else {
            (lo, hi)
        }
    }

    /// The lifetime of the access tokens this client receives.
    pub fn access_token_ttl(&self, tokens: &Tokens) -> u64 {
        // `validate` keeps it between 1 and the default.
        self.access_token_ttl_secs
            .unwrap_or(tokens.access_token_ttl_secs)
    }
}

fn yes() -> bool {
    true
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

impl Config {
    /// Reads `file`, applies `IDP_PROXY_*` overrides, resolves relative paths against the
    /// file's directory and validates everything.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let name = file.display().to_string();
        let mut config: Config = Figment::new()
            .merge(Toml::file_exact(file))
            // Only nested keys (`SECTION__KEY`): other IDP_PROXY_* variables (IDP_PROXY_CONFIG,
            // IDP_PROXY_LOG) belong to the CLI, not to this file.
            .merge(
                Env::prefixed("IDP_PROXY_")
                    .filter(|k| k.as_str().contains("__"))
                    .split("__"),
            )
            .extract()
            .map_err(|e| ConfigError::Parse {
                file: name.clone(),
                source: Box::new(e),
            })?;
        config.source = file.to_path_buf();
        if let Some(fc) = config.upstream.franceconnect.as_mut() {
            fc.apply_franceconnect_profile();
        }
        let base = file.parent().unwrap_or(Path::new("."));
        if config.keys.dir.is_relative() {
            config.keys.dir = base.join(&config.keys.dir);
        }
        if let Some(rest) = config.database.url.strip_prefix("sqlite://") {
            if !rest.starts_with('/') && !rest.starts_with(":memory:") {
                config.database.url = format!("sqlite://{}", base.join(rest).display());
            }
        }
        let mut upstreams = vec![&mut config.upstream.aidant];
        if let Some(fc) = config.upstream.franceconnect.as_mut() {
            upstreams.push(fc);
        }
        for upstream in upstreams {
            resolve_secret_file(
                &mut upstream.client_secret_file,
                &mut upstream.client_secret,
                "upstream.*.client_secret_file",
                base,
                &name,
            )?;
        }
        for client in &mut config.clients {
            resolve_secret_file(
                &mut client.client_secret_file,
                &mut client.client_secret,
                "clients[].client_secret_file",
                base,
                &name,
            )?;
        }
        config.validate()?;
        for c in &mut config.clients {
            c.pairwise_sector = (c.subject_type == SubjectType::Pairwise)
                .then(|| c.sector())
                .flatten();
        }
        Ok(config)
    }
}

/// Reads `client_secret_file` (relative to the config file) into `client_secret`, unless a
/// non-empty secret was given directly (an empty variable, as compose makes of an unset one,
/// counts as none): `IDP_PROXY_…__CLIENT_SECRET` overrides the file as the
/// environment overrides every other key, so one config serves hosts with either.
fn resolve_secret_file(
    file: &mut Option<PathBuf>,
    secret: &mut Option<String>,
    key: &str,
    base: &Path,
    name: &str,
) -> Result<(), ConfigError> {
    {
        if let Some(path) = file
            .take()
            .filter(|_| secret.as_deref().is_none_or(str::is_empty))
        {
            let path = if path.is_relative() {
                base.join(path)
            } else {
                path
            };
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                    file: name.to_string(),
                    key: key.into(),
                    path: path.display().to_string(),
                    source,
                })?;
            *secret = Some(text.trim().to_string());
        }
    }
    Ok(())
}

impl Config {
    fn invalid(
        &self,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.source.display().to_string(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_public_url(&self.server.issuer).map_err(|p| {
            self.invalid(
                "server.issuer",
                p,
                "use the public https URL of this service, without trailing slash or query",
            )
        })?;
        let mut upstreams = vec![("upstream.aidant", &self.upstream.aidant)];
        if let Some(fc) = &self.upstream.franceconnect {
            upstreams.push(("upstream.franceconnect", fc));
        }
        for (section, u) in upstreams {
            let key = |k: &str| format!("{section}.{k}");
            check_public_url(&u.issuer).map_err(|p| {
                self.invalid(
                    &key("issuer"),
                    p,
                    "use the provider's issuer URL, as its discovery document says",
                )
            })?;
            if u.client_secret.as_deref().unwrap_or("").is_empty() {
                let env = format!("IDP_PROXY_{}__CLIENT_SECRET", section.replace('.', "__"))
                    .to_uppercase();
                return Err(self.invalid(
                    &key("client_secret"),
                    "missing",
                    format!("set {env} or {section}.client_secret_file"),
                ));
            }
            if !u.scopes.iter().any(|s| s == "openid") {
                return Err(self.invalid(
                    &key("scopes"),
                    "`openid` is missing",
                    "add \"openid\" to the list",
                ));
            }
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite://")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(self.invalid(
                "database.url",
                "unsupported scheme",
                "use sqlite://PATH (embedded) or postgres://USER@HOST/DB",
            ));
        }
        let day = 86_400;
        for (key, value, max, fix) in [
            (
                "tokens.code_ttl_secs",
                self.tokens.code_ttl_secs,
                600,
                "keep codes short-lived, 60 is the usual value",
            ),
            (
                "tokens.access_token_ttl_secs",
                self.tokens.access_token_ttl_secs,
                day,
                "60 is the usual value",
            ),
            (
                "tokens.id_token_ttl_secs",
                self.tokens.id_token_ttl_secs,
                day,
                "300 is the usual value",
            ),
            (
                "session.idle_timeout_secs",
                self.session.idle_timeout_secs,
                day,
                "900 (15 minutes) is the usual value",
            ),
            (
                "session.interaction_ttl_secs",
                self.session.interaction_ttl_secs,
                day,
                "600 is the usual value",
            ),
            (
                "session.max_lifetime_secs",
                self.session.max_lifetime_secs,
                7 * day,
                "43200 (12 hours) is the usual value",
            ),
            (
                "keys.reload_secs",
                self.keys.reload_secs,
                day,
                "10 is the usual value",
            ),
            (
                "rate_limits.window_secs",
                self.rate_limits.window_secs,
                3600,
                "60 is the usual value",
            ),
            (
                "rate_limits.per_client",
                self.rate_limits.per_client,
                100_000_000,
                "6000 a minute is the usual value",
            ),
            (
                "rate_limits.per_ip",
                self.rate_limits.per_ip,
                100_000_000,
                "120 a minute is the usual value",
            ),
            (
                "rate_limits.per_aidant",
                self.rate_limits.per_aidant,
                100_000_000,
                "240 a minute is the usual value",
            ),
            (
                "ephemeral.timeout_ms",
                self.ephemeral.timeout_ms,
                60_000,
                "500 is the usual value",
            ),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
                60_000,
                "5000 is the usual value: past it the request gets a 503",
            ),
            (
                "database.connect_timeout_secs",
                self.database.connect_timeout_secs,
                60,
                "5 is the usual value",
            ),
            (
                "server.shutdown_timeout_secs",
                self.server.shutdown_timeout_secs,
                600,
                "30 is the usual value; keep it below the orchestrator's grace period",
            ),
            (
                "keys.jwks_max_age_secs",
                self.keys.jwks_max_age_secs,
                day,
                "300 is the usual value",
            ),
            (
                "mandates.max_days",
                self.mandates.max_days,
                3 * 365,
                "365 (twelve months) is the usual value",
            ),
            (
                "retention.days",
                self.retention.days,
                100 * 365,
                "730 (two years) is the usual value",
            ),
            (
                "retention.purge_every_secs",
                self.retention.purge_every_secs,
                7 * day,
                "86400 (daily) is the usual value",
            ),
        ] {
            if value == 0 || value > max {
                return Err(self.invalid(key, format!("must be between 1 and {max}"), fix));
            }
        }
        if self.ephemeral.prefix.contains(['{', '}']) {
            return Err(self.invalid(
                "ephemeral.prefix",
                "contains a brace",
                "keys carry their own {hash tag} for Redis Cluster: use letters, digits, `-`, `_` and `:`",
            ));
        }
        let redis_url = |u: &str| u.starts_with("redis://") || u.starts_with("rediss://");
        let url = self.ephemeral.url.as_deref().unwrap_or_default();
        match self.ephemeral.backend {
            EphemeralBackend::Memory => {}
            EphemeralBackend::Redis if !redis_url(url) || url.contains(',') => {
                return Err(self.invalid(
                    "ephemeral.url",
                    "the redis backend needs one redis:// or rediss:// URL (several nodes: backend = \"redis-cluster\")",
                    "set IDP_PROXY_EPHEMERAL__URL=redis://:PASSWORD@HOST:6379",
                ));
            }
            EphemeralBackend::Redis => {}
            EphemeralBackend::RedisCluster => {
                if !url.split(',').all(|u| redis_url(u.trim())) {
                    return Err(self.invalid(
                        "ephemeral.url",
                        "the redis-cluster backend needs redis:// or rediss:// URLs of some of the cluster's nodes, comma-separated",
                        "set IDP_PROXY_EPHEMERAL__URL=redis://:PASSWORD@HOST1:6379,redis://:PASSWORD@HOST2:6379",
                    ));
                }
            }
        }
        if self.server.drain_secs > 300 {
            return Err(self.invalid(
                "server.drain_secs",
                "must be at most 300",
                "0 behind an orchestrator that stops routing first (Kubernetes preStop), else a little more than the balancer's health-check interval",
            ));
        }
        let st = self.database.statement_timeout_ms;
        if st != 0 && !(100..=600_000).contains(&st) {
            return Err(self.invalid(
                "database.statement_timeout_ms",
                "must be 0 or between 100 and 600000",
                "5000 is the usual value; 0 keeps the server's setting",
            ));
        }
        if let Some(m) = &self.metrics {
            if m.listen.port() == self.server.listen.port() {
                return Err(self.invalid(
                    "metrics.listen",
                    "same port as server.listen",
                    "give metrics their own port (9464 is usual) and keep it private",
                ));
            }
        }
        if self.retention.days < self.mandates.max_days {
            return Err(self.invalid(
                "retention.days",
                format!(
                    "shorter than mandates.max_days ({}): a running mandate's journal would be purged",
                    self.mandates.max_days
                ),
                "keep the journal at least as long as the longest mandate",
            ));
        }
        let levels = crate::provider::checks::acr::LEVELS;
        let upstreams = std::iter::once(("upstream.aidant", &self.upstream.aidant)).chain(
            self.upstream
                .franceconnect
                .as_ref()
                .map(|f| ("upstream.franceconnect", f)),
        );
        for (section, up) in upstreams {
            if let Some((_, v)) = up
                .acr_levels
                .iter()
                .find(|(_, v)| !levels.contains(&v.as_str()))
            {
                return Err(self.invalid(
                    &format!("{section}.acr_levels"),
                    format!("{v} is not an eIDAS level"),
                    "map each acr to eidas1, eidas2 or eidas3",
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = |k: &str| format!("clients[{i}].{k}");
            if c.client_id.is_empty() || !seen.insert(c.client_id.as_str()) {
                return Err(self.invalid(
                    &key("client_id"),
                    "empty or declared twice",
                    "give each client a unique client_id",
                ));
            }
            self.validate_client_keys(c, &key)?;
            if let Some(v) = c
                .default_acr_values
                .iter()
                .flatten()
                .find(|v| !levels.contains(&v.as_str()))
            {
                return Err(self.invalid(
                    &key("default_acr_values"),
                    format!("{v} is not an eIDAS level"),
                    "use eidas1, eidas2 or eidas3",
                ));
            }
            if c.redirect_uris.is_empty() {
                return Err(self.invalid(
                    &key("redirect_uris"),
                    "empty",
                    "list the exact callback URLs of this client",
                ));
            }
            for uri in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
                check_redirect_uri(uri).map_err(|p| {
                    self.invalid(
                        &key("redirect_uris"),
                        format!("{uri}: {p}"),
                        "use an absolute https URL without fragment (http only on loopback)",
                    )
                })?;
            }
            let max_ttl = self.tokens.access_token_ttl_secs;
            if c.access_token_ttl_secs
                .is_some_and(|t| t == 0 || t > max_ttl)
            {
                return Err(self.invalid(
                    &key("access_token_ttl_secs"),
                    format!("must be between 1 and tokens.access_token_ttl_secs ({max_ttl})"),
                    "shorten it, or omit it to use the default",
                ));
            }
            if let Some(uri) = &c.backchannel_logout_uri {
                check_redirect_uri(uri).map_err(|p| {
                    self.invalid(
                        &key("backchannel_logout_uri"),
                        format!("{uri}: {p}"),
                        "use an absolute https URL (http only on loopback)",
                    )
                })?;
            }
            if c.subject_type == SubjectType::Pairwise && c.sector().is_none() {
                return Err(self.invalid(
                    &key("sector"),
                    "pairwise subjects need one sector, and the redirect URIs have several hosts",
                    "set sector (or sector_identifier_uri)",
                ));
            }
            if c.demarches.is_empty() {
                return Err(self.invalid(
                    &key("demarches"),
                    "empty",
                    "list the démarches this service provider serves, e.g. [\"argent\"]",
                ));
            }
            self.validate_allowed_acr(c, &key)?;
            self.validate_franceconnect_client(c, &key)?;
        }
        self.validate_franceconnect_upstream()
    }

    /// A client's authentication and keys: what its method needs, and coherent encryption.
    fn validate_client_keys(
        &self,
        c: &Client,
        key: &dyn Fn(&str) -> String,
    ) -> Result<(), ConfigError> {
        let has_keys = c.jwks.is_some() || c.jwks_uri.is_some();
        let signing = c.token_endpoint_auth_signing_alg.as_deref();
        match c.token_endpoint_auth_method {
            ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost => {
                let hex_ok = c.client_secret_sha256.len() == 64
                    && c.client_secret_sha256
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit());
                if !hex_ok {
                    return Err(self.invalid(
                        &key("client_secret_sha256"),
                        "not a hex SHA-256",
                        "run `idp-proxy clients hash-secret` and paste its output",
                    ));
                }
            }
            ClientAuth::ClientSecretJwt => {
                if c.client_secret.as_ref().is_none_or(|s| s.len() < 32) {
                    return Err(self.invalid(
                        &key("client_secret_file"),
                        "client_secret_jwt needs the shared secret (32 characters or more)",
                        "point client_secret_file at a file holding the secret",
                    ));
                }
                if signing.is_some_and(|a| a != "HS256") {
                    return Err(self.invalid(
                        &key("token_endpoint_auth_signing_alg"),
                        "client_secret_jwt assertions are HS256",
                        "set it to \"HS256\" or omit it",
                    ));
                }
            }
            ClientAuth::PrivateKeyJwt => {
                if !has_keys {
                    return Err(self.invalid(
                        &key("jwks_uri"),
                        "private_key_jwt needs the client's public keys",
                        "set jwks_uri (or jwks)",
                    ));
                }
                if signing.is_some_and(|a| !SigningAlg::ALL.iter().any(|s| s.as_str() == a)) {
                    return Err(self.invalid(
                        &key("token_endpoint_auth_signing_alg"),
                        "not an asymmetric algorithm we verify",
                        "use ES256, RS256 or PS256",
                    ));
                }
            }
        }
        if c.jwks.is_some() && c.jwks_uri.is_some() {
            return Err(self.invalid(&key("jwks"), "both jwks and jwks_uri", "keep one of them"));
        }
        if let Some(jwks) = &c.jwks {
            if !jwks.get("keys").is_some_and(|k| k.is_array()) {
                return Err(self.invalid(
                    &key("jwks"),
                    "not a JWK Set",
                    "write it as { keys = [ { kty = …, kid = …, … } ] }",
                ));
            }
        }
        if let Some(uri) = &c.jwks_uri {
            check_redirect_uri(uri).map_err(|p| {
                self.invalid(
                    &key("jwks_uri"),
                    format!("{uri}: {p}"),
                    "use an absolute https URL (http only on loopback)",
                )
            })?;
        }
        for (alg, enc, what) in [
            (
                c.id_token_encrypted_response_alg,
                &c.id_token_encrypted_response_enc,
                "id_token_encrypted_response",
            ),
            (
                c.userinfo_encrypted_response_alg,
                &c.userinfo_encrypted_response_enc,
                "userinfo_encrypted_response",
            ),
        ] {
            if enc.as_deref().is_some_and(|e| e != CONTENT_ENCRYPTION) {
                return Err(self.invalid(
                    &key(&format!("{what}_enc")),
                    "only A256GCM is offered",
                    "set it to \"A256GCM\" or omit it",
                ));
            }
            if enc.is_some() && alg.is_none() {
                return Err(self.invalid(
                    &key(&format!("{what}_alg")),
                    "an enc without an alg",
                    "set the alg (RSA-OAEP-256 or ECDH-ES)",
                ));
            }
            if alg.is_some() && !has_keys {
                return Err(self.invalid(
                    &key("jwks_uri"),
                    "encryption needs the client's public keys",
                    "set jwks_uri (or jwks)",
                ));
            }
        }
        Ok(())
    }

    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// Loopback hosts may use plain http: that is how a developer machine and the tests run.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn check_public_url(s: &str) -> Result<(), String> {
    let url = Url::parse(s).map_err(|e| e.to_string())?;
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
        return Err("must be https (http is allowed on loopback only)".into());
    }
    if s.ends_with('/') || url.query().is_some() || url.fragment().is_some() {
        return Err("must not end with '/' nor carry a query or fragment".into());
    }
    Ok(())
}

fn check_redirect_uri(s: &str) -> Result<(), String> {
    let url = Url::parse(s).map_err(|e| e.to_string())?;
    if url.fragment().is_some() {
        return Err("has a fragment".into());
    }
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
        return Err("must be https".into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn write(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("c.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"
issuer = "http://127.0.0.1:8080"
[database]
url = "sqlite://db.sqlite"
[keys]
dir = "keys"
[upstream.aidant]
issuer = "http://127.0.0.1:9100"
client_id = "idp-proxy"
client_secret = "s"
[[clients]]
client_id = "sp"
client_secret_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
redirect_uris = ["http://127.0.0.1:9200/callback"]
demarches = ["argent"]
"#;

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(&write(dir.path(), BASE)).unwrap();
        assert_eq!(c.keys.dir, dir.path().join("keys"));
        assert_eq!(
            c.database.url,
            format!("sqlite://{}", dir.path().join("db.sqlite").display())
        );
        assert_eq!(c.clients[0].id_token_signed_response_alg, SigningAlg::ES256);
        assert!(c.clients[0].pkce_required);
    }

    #[test]
    fn a_secret_given_directly_wins_over_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "from-file\n").unwrap();
        // The aidant IdP's secret, its `client_secret = "s"` line replaced by `lines`.
        let secret = |lines: &str| {
            let body = BASE.replace("client_secret = \"s\"", lines);
            Config::load(&write(dir.path(), &body))
                .unwrap()
                .upstream
                .aidant
                .client_secret
        };
        let given = "client_secret = \"s\"\nclient_secret_file = \"/nonexistent/secret\"";
        assert_eq!(secret(given).as_deref(), Some("s"));
        let file = "client_secret_file = \"secret\"";
        assert_eq!(secret(file).as_deref(), Some("from-file"));
        let empty = "client_secret = \"\"\nclient_secret_file = \"secret\"";
        assert_eq!(secret(empty).as_deref(), Some("from-file"));
    }

    #[test]
    fn http_issuer_outside_loopback_is_refused_with_key_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE.replace(
            "issuer = \"http://127.0.0.1:8080\"",
            "issuer = \"http://idp.example\"",
        );
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.issuer"), "{err}");
        assert!(err.contains("Fix:"), "{err}");
    }

    #[test]
    fn production_sections_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &str| {
            let body = BASE.replace("[keys]", &format!("{extra}\n[keys]"));
            Config::load(&write(dir.path(), &body))
        };
        let c = with(
            "[ephemeral]\nbackend = \"redis-cluster\"\nurl = \"redis://a:6379, rediss://b:6380\"\n\
             [metrics]\nlisten = \"127.0.0.1:9464\"",
        )
        .unwrap();
        assert_eq!(c.ephemeral.backend, EphemeralBackend::RedisCluster);
        assert_eq!(c.metrics.map(|m| m.listen.port()), Some(9464));
        let pool = c.database.pool_options();
        assert_eq!(pool.acquire_timeout, std::time::Duration::from_secs(5));
        assert_eq!(
            pool.statement_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert!(c.database.migrate_at_start);

        let err = with("[ephemeral]\nbackend = \"redis-cluster\"\nurl = \"redis://a:6379,b:6379\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ephemeral.url"), "{err}");
        let err = with("[metrics]\nlisten = \"0.0.0.0:8080\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics.listen"), "{err}");
    }

    #[test]
    fn unknown_demarche_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE.replace("demarches = [\"argent\"]", "demarches = [\"casino\"]");
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("casino"), "{err}");
    }

    #[test]
    fn bad_secret_hash_names_the_client_key() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE.replace(
            "0000000000000000000000000000000000000000000000000000000000000000",
            "nothex",
        );
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].client_secret_sha256"), "{err}");
    }

    #[test]
    fn a_client_access_token_lifetime_stays_within_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let with = |ttl: &str| {
            BASE.replace(
                "demarches = [\"argent\"]",
                &format!("demarches = [\"argent\"]\naccess_token_ttl_secs = {ttl}"),
            )
        };
        let c = Config::load(&write(dir.path(), &with("30"))).unwrap();
        assert_eq!(c.clients[0].access_token_ttl(&c.tokens), 30);
        let err = Config::load(&write(dir.path(), &with("100000")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].access_token_ttl_secs"), "{err}");
    }

    #[test]
    fn pairwise_subjects_need_one_sector() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &str| {
            BASE.replace(
                "demarches = [\"argent\"]",
                &format!("demarches = [\"argent\"]\nsubject_type = \"pairwise\"\n{extra}"),
            )
        };
        // One redirect host: that host is the sector.
        let c = Config::load(&write(dir.path(), &with(""))).unwrap();
        assert!(c.clients[0].sector().is_some());
        let c = Config::load(&write(dir.path(), &with("sector = \"impots\""))).unwrap();
        assert_eq!(c.clients[0].sector().as_deref(), Some("impots"));
        let two_hosts = with("").replace(
            "redirect_uris = [",
            "redirect_uris = [\"https://other.example/cb\", ",
        );
        let err = Config::load(&write(dir.path(), &two_hosts))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].sector"), "{err}");
    }

    #[test]
    fn retention_keeps_a_running_mandate_s_journal() {
        let dir = tempfile::tempdir().unwrap();
        let body = format!("{BASE}\n[retention]\ndays = 100\n");
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention.days"), "{err}");
    }

    #[test]
    fn the_franceconnect_client_example_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let example = include_str!("../../../config/franceconnect.example.toml");
        let c = Config::load(&write(dir.path(), &format!("{BASE}\n{example}"))).unwrap();
        let fc = c.client("franceconnect").unwrap();
        assert_eq!(fc.token_endpoint_auth_method, ClientAuth::ClientSecretPost);
        assert_eq!(fc.userinfo_signed_response_alg, Some(SigningAlg::ES256));
        assert_eq!(fc.demarches.len(), Demarche::ALL.len());
        assert!(fc.franceconnect);
        assert_eq!(fc.acr_range(), (1, 1));
        assert!(!fc.pkce_required);
    }
}
