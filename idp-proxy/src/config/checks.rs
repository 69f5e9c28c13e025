//! What the types cannot say: ranges, coherence between keys, what each client's method needs.
//! Every check runs, and every problem is reported at once, each with its key and its fix.

use std::collections::HashSet;
use std::time::Duration;

use super::sections::{EphemeralBackend, SigningAlg, CONTENT_ENCRYPTION};
use super::{Client, ClientAuth, Config, SubjectType};

/// One thing wrong in the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

/// The problems found so far.
#[derive(Default)]
pub(super) struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem at `key` when `bad`.
    pub fn check(
        &mut self,
        bad: bool,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        if bad {
            self.0.push(Problem {
                key: key.into(),
                problem: problem.into(),
                fix: fix.into(),
            });
        }
    }
}

const DAY: u64 = 86_400;

impl Config {
    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut p = Problems::default();
        self.check_upstreams(&mut p);
        self.check_ranges(&mut p);
        self.check_coherence(&mut p);
        let mut seen = HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = |k: &str| format!("clients[{i}].{k}");
            p.check(
                c.client_id.is_empty() || !seen.insert(c.client_id.as_str()),
                key("client_id"),
                "empty or declared twice",
                "give each client a unique client_id",
            );
            self.check_client(c, &key, &mut p);
            check_client_keys(c, &key, &mut p);
            check_allowed_acr(c, &key, &mut p);
            super::franceconnect::check_franceconnect_client(c, &key, &mut p);
        }
        self.check_franceconnect_upstream(&mut p);
        p.0
    }

    fn check_upstreams(&self, p: &mut Problems) {
        for (section, u) in self.upstream.all() {
            let env =
                format!("IDP_PROXY_{}__CLIENT_SECRET", section.replace('.', "__")).to_uppercase();
            p.check(
                u.client_secret.as_deref().unwrap_or("").is_empty(),
                format!("{section}.client_secret"),
                "missing",
                format!("set {env} or {section}.client_secret_file"),
            );
            p.check(
                !u.scopes.iter().any(|s| s == "openid"),
                format!("{section}.scopes"),
                "`openid` is missing",
                "add \"openid\" to the list",
            );
        }
    }

    /// Each number between 1 and its bound, in the key's unit.
    fn check_ranges(&self, p: &mut Problems) {
        let s = |d: Duration| d.as_secs();
        let ms = |d: Duration| d.as_millis() as u64;
        let t = &self.tokens;
        let session = &self.session;
        let limits = &self.rate_limits;
        #[rustfmt::skip]
        let table = [
            ("tokens.code_ttl_secs", s(t.code_ttl), 600, "keep codes short-lived, 60 is the usual value"),
            ("tokens.access_token_ttl_secs", s(t.access_token_ttl), DAY, "60 is the usual value"),
            ("tokens.id_token_ttl_secs", s(t.id_token_ttl), DAY, "300 is the usual value"),
            ("session.idle_timeout_secs", s(session.idle_timeout), DAY, "900 (15 minutes) is the usual value"),
            ("session.interaction_ttl_secs", s(session.interaction_ttl), DAY, "600 is the usual value"),
            ("session.max_lifetime_secs", s(session.max_lifetime), 7 * DAY, "43200 (12 hours) is the usual value"),
            ("keys.reload_secs", s(self.keys.reload), DAY, "10 is the usual value"),
            ("keys.jwks_max_age_secs", s(self.keys.jwks_max_age), DAY, "300 is the usual value"),
            ("rate_limits.window_secs", s(limits.window), 3600, "60 is the usual value"),
            ("rate_limits.per_client", limits.per_client, 100_000_000, "6000 a minute is the usual value"),
            ("rate_limits.per_ip", limits.per_ip, 100_000_000, "120 a minute is the usual value"),
            ("rate_limits.per_aidant", limits.per_aidant, 100_000_000, "240 a minute is the usual value"),
            ("ephemeral.timeout_ms", ms(self.ephemeral.timeout), 60_000, "500 is the usual value"),
            ("database.acquire_timeout_ms", ms(self.database.acquire_timeout), 60_000, "5000 is the usual value: past it the request gets a 503"),
            ("database.connect_timeout_secs", s(self.database.connect_timeout), 60, "5 is the usual value"),
            ("server.shutdown_timeout_secs", s(self.server.shutdown_timeout), 600, "30 is the usual value; keep it below the orchestrator's grace period"),
            ("mandates.max_days", self.mandates.max_days, 3 * 365, "365 (twelve months) is the usual value"),
            ("retention.days", self.retention.days, 100 * 365, "730 (two years) is the usual value"),
            ("retention.purge_every_secs", s(self.retention.purge_every), 7 * DAY, "86400 (daily) is the usual value"),
        ];
        for (key, value, max, fix) in table {
            p.check(
                value == 0 || value > max,
                key,
                format!("must be between 1 and {max}"),
                fix,
            );
        }
        p.check(
            s(self.server.drain) > 300,
            "server.drain_secs",
            "must be at most 300",
            "0 behind an orchestrator that stops routing first (Kubernetes preStop), else a little more than the balancer's health-check interval",
        );
        let st = ms(self.database.statement_timeout);
        p.check(
            st != 0 && !(100..=600_000).contains(&st),
            "database.statement_timeout_ms",
            "must be 0 or between 100 and 600000",
            "5000 is the usual value; 0 keeps the server's setting",
        );
    }

    /// Keys that must agree with each other.
    fn check_coherence(&self, p: &mut Problems) {
        let db = &self.database.url;
        p.check(
            !["sqlite://", "postgres://", "postgresql://"]
                .iter()
                .any(|scheme| db.starts_with(scheme)),
            "database.url",
            "unsupported scheme",
            "use sqlite://PATH (embedded) or postgres://USER@HOST/DB",
        );
        p.check(
            self.ephemeral.prefix.contains(['{', '}']),
            "ephemeral.prefix",
            "contains a brace",
            "keys carry their own {hash tag} for Redis Cluster: use letters, digits, `-`, `_` and `:`",
        );
        let redis_url = |u: &str| u.starts_with("redis://") || u.starts_with("rediss://");
        let url = self.ephemeral.url.as_deref().unwrap_or_default();
        match self.ephemeral.backend {
            EphemeralBackend::Memory => {}
            EphemeralBackend::Redis => p.check(
                !redis_url(url) || url.contains(','),
                "ephemeral.url",
                "the redis backend needs one redis:// or rediss:// URL (several nodes: backend = \"redis-cluster\")",
                "set IDP_PROXY_EPHEMERAL__URL=redis://:PASSWORD@HOST:6379",
            ),
            EphemeralBackend::RedisCluster => p.check(
                !url.split(',').all(|u| redis_url(u.trim())),
                "ephemeral.url",
                "the redis-cluster backend needs redis:// or rediss:// URLs of some of the cluster's nodes, comma-separated",
                "set IDP_PROXY_EPHEMERAL__URL=redis://:PASSWORD@HOST1:6379,redis://:PASSWORD@HOST2:6379",
            ),
        }
        p.check(
            self.metrics
                .as_ref()
                .is_some_and(|m| m.listen.port() == self.server.listen.port()),
            "metrics.listen",
            "same port as server.listen",
            "give metrics their own port (9464 is usual) and keep it private",
        );
        p.check(
            self.retention.days < self.mandates.max_days,
            "retention.days",
            format!(
                "shorter than mandates.max_days ({}): a running mandate's journal would be purged",
                self.mandates.max_days
            ),
            "keep the journal at least as long as the longest mandate",
        );
    }

    /// A client's redirects, lifetimes, subjects and démarches.
    fn check_client(&self, c: &Client, key: &dyn Fn(&str) -> String, p: &mut Problems) {
        p.check(
            c.redirect_uris.is_empty(),
            key("redirect_uris"),
            "empty",
            "list the exact callback URLs of this client",
        );
        let max_ttl = self.tokens.access_token_ttl;
        p.check(
            c.access_token_ttl
                .is_some_and(|t| t.is_zero() || t > max_ttl),
            key("access_token_ttl_secs"),
            format!(
                "must be between 1 and tokens.access_token_ttl_secs ({})",
                max_ttl.as_secs()
            ),
            "shorten it, or omit it to use the default",
        );
        p.check(
            c.subject_type == SubjectType::Pairwise && c.sector().is_none(),
            key("sector"),
            "pairwise subjects need one sector, and the redirect URIs have several hosts",
            "set sector (or sector_identifier_uri)",
        );
        p.check(
            c.demarches.is_empty(),
            key("demarches"),
            "empty",
            "list the démarches this service provider serves, e.g. [\"argent\"]",
        );
    }
}

/// A client's authentication and keys: what its method needs, and coherent encryption.
fn check_client_keys(c: &Client, key: &dyn Fn(&str) -> String, p: &mut Problems) {
    let has_keys = c.jwks.is_some() || c.jwks_uri.is_some();
    let signing = c.token_endpoint_auth_signing_alg.as_deref();
    match c.token_endpoint_auth_method {
        ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost => {
            let hex = &c.client_secret_sha256;
            p.check(
                hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()),
                key("client_secret_sha256"),
                "not a hex SHA-256",
                "run `idp-proxy clients hash-secret` and paste its output",
            );
        }
        ClientAuth::ClientSecretJwt => {
            p.check(
                c.client_secret.as_ref().is_none_or(|s| s.len() < 32),
                key("client_secret_file"),
                "client_secret_jwt needs the shared secret (32 characters or more)",
                "point client_secret_file at a file holding the secret",
            );
            p.check(
                signing.is_some_and(|a| a != "HS256"),
                key("token_endpoint_auth_signing_alg"),
                "client_secret_jwt assertions are HS256",
                "set it to \"HS256\" or omit it",
            );
        }
        ClientAuth::PrivateKeyJwt => {
            p.check(
                !has_keys,
                key("jwks_uri"),
                "private_key_jwt needs the client's public keys",
                "set jwks_uri (or jwks)",
            );
            p.check(
                signing.is_some_and(|a| !SigningAlg::ALL.iter().any(|s| s.as_str() == a)),
                key("token_endpoint_auth_signing_alg"),
                "not an asymmetric algorithm we verify",
                "use ES256, RS256 or PS256",
            );
        }
    }
    p.check(
        c.jwks.is_some() && c.jwks_uri.is_some(),
        key("jwks"),
        "both jwks and jwks_uri",
        "keep one of them",
    );
    p.check(
        c.jwks
            .as_ref()
            .is_some_and(|jwks| !jwks.get("keys").is_some_and(|k| k.is_array())),
        key("jwks"),
        "not a JWK Set",
        "write it as { keys = [ { kty = …, kid = …, … } ] }",
    );
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
        p.check(
            enc.as_deref().is_some_and(|e| e != CONTENT_ENCRYPTION),
            key(&format!("{what}_enc")),
            "only A256GCM is offered",
            "set it to \"A256GCM\" or omit it",
        );
        p.check(
            enc.is_some() && alg.is_none(),
            key(&format!("{what}_alg")),
            "an enc without an alg",
            "set the alg (RSA-OAEP-256 or ECDH-ES)",
        );
        p.check(
            alg.is_some() && !has_keys,
            key("jwks_uri"),
            "encryption needs the client's public keys",
            "set jwks_uri (or jwks)",
        );
    }
}

/// `allowed_acr`: eIDAS levels, consecutive (FranceConnect's `allowedAcr` are).
fn check_allowed_acr(c: &Client, key: &dyn Fn(&str) -> String, p: &mut Problems) {
    let Some(allowed) = &c.allowed_acr else {
        return;
    };
    let (lo, hi) = c.acr_range();
    let holes = mandate_store::Level::ALL
        .into_iter()
        .any(|l| (lo..=hi).contains(&l) && !allowed.contains(&l));
    p.check(
        allowed.is_empty() || holes,
        key("allowed_acr"),
        "empty or not consecutive",
        "list consecutive eIDAS levels, e.g. [\"eidas1\"] or [\"eidas2\", \"eidas3\"]",
    );
}
