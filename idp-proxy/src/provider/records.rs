//! What the provider keeps in the ephemeral store between two requests, and under which
//! keys. Records hold ids, never identity claims: those are read from the mandate store when
//! a token is minted, so the ephemeral store holds no personal data.

use mandate_store::Demarche;
use serde::{Deserialize, Serialize};

/// An authorization request waiting for the aidant's choice. Key: `ix:{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub scopes: Vec<String>,
    /// The démarches this request allows: the client's, narrowed by `rep_scope`.
    pub allowed: Vec<Demarche>,
    pub acr: String,
    pub max_age: Option<i64>,
    pub force_login: bool,
    /// Must equal the browser cookie: an interaction cannot move to another browser.
    pub browser: String,
    pub csrf: String,
    pub created_at: i64,
}

/// A logged-in aidant. Key: `sess:{sha256(cookie)}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AidantSession {
    pub aidant_id: String,
    pub organisation_id: String,
    /// Shown on the choice page; an aidant's own name, never a usager's.
    pub aidant_name: String,
    pub organisation_name: String,
    pub auth_time: i64,
    pub last_seen: i64,
    pub browser: String,
    /// For RP-initiated logout at the upstream IdP.
    pub upstream_id_token: String,
}

/// An upstream login in progress. Key: `up:{state}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UpstreamLogin {
    pub interaction_id: String,
    pub browser: String,
    pub pending: crate::upstream::PendingLogin,
}

/// What a code or an access token stands for. Codes: `code:{sha256}`; access tokens:
/// `at:{sha256}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub mandate_id: String,
    pub aidant_id: String,
    pub organisation_id: String,
    pub demarche: Demarche,
    pub acr: String,
    pub auth_time: i64,
}

/// After a code is redeemed: `used:{sha256(code)}` → the access-token key it produced, so a
/// replay can revoke it (RFC 6749 §4.1.2, RFC 9700 §4.5).
#[derive(Debug, Serialize, Deserialize)]
pub struct Redeemed {
    pub access_token_key: String,
}

/// A logout waiting for the upstream IdP to come back. Key: `lo:{state}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogout {
    pub redirect: Option<String>,
}

pub fn interaction_key(id: &str) -> String {
    format!("ix:{id}")
}
pub fn session_key(cookie: &str) -> String {
    format!("sess:{}", super::tokens::sha256_b64(cookie))
}
pub fn code_key(code: &str) -> String {
    format!("code:{}", super::tokens::sha256_b64(code))
}
pub fn used_key(code: &str) -> String {
    format!("used:{}", super::tokens::sha256_b64(code))
}
pub fn access_token_key(token: &str) -> String {
    format!("at:{}", super::tokens::sha256_b64(token))
}
