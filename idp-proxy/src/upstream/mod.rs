//! The relying-party side: one `Upstream` per configured identity provider (the aidants' IdP,
//! FranceConnect), built from its discovery document. `login_url` sends the browser there
//! (state, nonce, PKCE S256, `acr_values`, `prompt=login` when asked); `finish` checks the
//! callback (RFC 9207 `iss`), exchanges the code, opens a JWE ID token (FranceConnect v2) with
//! our key, verifies the inner JWS (signature, `iss`, `aud`, `nonce`, `exp`), checks `acr`, and,
//! when configured, reads userinfo (JSON, or a signed and possibly encrypted JWT). It never keeps
//! an upstream credential beyond the ID token needed to propagate logout.
//!
//! `Upstream` is what the provider asks of an identity provider; `OidcUpstream` (oidc.rs)
//! is the real one, `FakeUpstream` (fake.rs, tests only) answers in process without network.

use mandate_store::Level;
use serde::{Deserialize, Serialize};

use crate::keys::KeyRing;

#[cfg(test)]
pub mod fake;
mod oidc;

pub use oidc::OidcUpstream;

/// An identity provider the browser is sent to, and back from.
#[async_trait::async_trait]
pub trait Upstream: Send + Sync + 'static {
    /// The URL to send the browser to, its `state`, and what `finish` will need.
    /// `force_login` asks the upstream to authenticate again (idle aidant, `prompt=login`,
    /// `max_age`).
    async fn login_url(
        &self,
        force_login: bool,
        login_hint: Option<&str>,
    ) -> Result<(String, String, PendingLogin), UpstreamError>;

    /// Checks the callback and returns who logged in.
    async fn finish(
        &self,
        callback: &Callback,
        pending: &PendingLogin,
        keys: &KeyRing,
    ) -> Result<VerifiedIdentity, UpstreamError>;

    /// The upstream's RP-initiated logout URL, when it has one.
    async fn logout_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: &str,
        state: &str,
    ) -> Option<String>;

    /// The eIDAS level an `acr` of this provider stands for (`acr_levels`, or itself).
    fn level_of(&self, acr: &str) -> Option<Level>;
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream identity provider unreachable or invalid: {0}")]
    Unavailable(String),
    #[error("upstream returned an error: {0}")]
    Denied(String),
    #[error("upstream callback rejected: {0}")]
    Rejected(String),
}

/// What must survive between `login_url` and `finish`: kept in the ephemeral store under the
/// `state` value, taken once.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub nonce: String,
    pub pkce_verifier: String,
}

#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
    /// Kept only to name the session when logging out upstream (the inner JWS when the
    /// provider encrypted it).
    pub id_token: String,
    /// The verified userinfo claims, when the provider is configured to be asked.
    pub userinfo: Option<serde_json::Value>,
}

/// The callback's query string.
#[derive(Debug, Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}
