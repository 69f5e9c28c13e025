//! What the provider keeps in the ephemeral store between two requests (their keys: see
//! `keyspace`). Records hold ids, never identity claims: those are read from the mandate store when
//! a token is minted, so the ephemeral store holds no personal data.

use mandate_store::{Demarche, Level, Vocabulary};
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
    /// The vocabulary `rep_scope` answers in (the request's, or FranceConnect's).
    #[serde(default)]
    pub vocabulary: Vocabulary,
    /// The lowest eIDAS level the answer may state (`None` in records written before every
    /// answer stated one: eidas1).
    #[serde(with = "mandate_store::level::as_number")]
    pub acr_min: Option<Level>,
    /// Identity claims the `claims` parameter asked for, in the ID token and at userinfo.
    #[serde(default)]
    pub claims: RequestedClaims,
    pub max_age: Option<i64>,
    pub force_login: bool,
    /// Passed to the aidant's identity provider with the login request.
    #[serde(default)]
    pub login_hint: Option<String>,
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
    /// When the upstream authenticated the aidant (its clock): the ID token's `auth_time`.
    pub auth_time: i64,
    /// When this session was opened (our clock): its lifetime and `prompt=login` count here.
    #[serde(default)]
    pub created_at: i64,
    pub last_seen: i64,
    pub browser: String,
    /// For RP-initiated logout at the upstream IdP.
    pub upstream_id_token: String,
    /// The eIDAS level the upstream login reached, if any.
    #[serde(default)]
    pub acr: Option<Level>,
    /// CSRF token of the aidant's own forms (mandate creation).
    #[serde(default)]
    pub csrf: String,
    /// This session's id in ID tokens (`sid`) and back-channel logout tokens.
    #[serde(default)]
    pub sid: String,
    /// The last choice per client in this session (ids only), for `prompt=none`.
    #[serde(default)]
    pub choices: Vec<LastChoice>,
    /// Every client served in this session (back-channel logout reaches them all); bounded by
    /// the clients configured.
    #[serde(default)]
    pub served: Vec<String>,
    /// The interaction whose login opened this session: the only one whose `prompt=login`
    /// it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_for: Option<String>,
}

/// A choice the aidant made for a client in this session. Ids only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastChoice {
    pub client_id: String,
    pub mandate_id: String,
    pub demarche: Demarche,
    pub usager_id: String,
}

impl AidantSession {
    /// Keeps the newest choice per client, for a few clients at most, and the client as served.
    pub fn remember(&mut self, choice: LastChoice) {
        if !self.served.contains(&choice.client_id) {
            self.served.push(choice.client_id.clone());
        }
        self.choices.retain(|c| c.client_id != choice.client_id);
        self.choices.push(choice);
        if self.choices.len() > 8 {
            self.choices.remove(0);
        }
    }

    pub fn last_choice(&self, client_id: &str) -> Option<&LastChoice> {
        self.choices.iter().find(|c| c.client_id == client_id)
    }
}

/// A usager in their own space, after a FranceConnect login. Key: `usp:{sha256(cookie)}`.
/// Short-lived and not renewed: the device may be a shared one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsagerSession {
    /// `None`: FranceConnect knows the person, but they never gave a mandate here.
    pub usager_id: Option<String>,
    pub browser: String,
    pub csrf: String,
}

/// Claims asked for by name with the `claims` request parameter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestedClaims {
    #[serde(rename = "i", default, skip_serializing_if = "Vec::is_empty")]
    pub id_token: Vec<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo: Vec<String>,
}

/// An upstream login in progress. Key: `up:{state}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UpstreamLogin {
    /// The local path to go back to once logged in.
    pub then: String,
    pub browser: String,
    pub pending: crate::upstream::PendingLogin,
}

/// What an access token stands for: who acts for whom, on which démarche, for which client.
/// Key: `at:{sha256}`. Kept small: a node holds one per live access token.
/// Short field names: one of these is held per live access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delegation {
    #[serde(rename = "c")]
    pub client_id: String,
    #[serde(rename = "s")]
    pub scopes: Vec<String>,
    #[serde(rename = "m")]
    pub mandate_id: String,
    #[serde(rename = "a")]
    pub aidant_id: String,
    #[serde(rename = "o")]
    pub organisation_id: String,
    #[serde(rename = "d")]
    pub demarche: Demarche,
    /// The vocabulary `rep_scope` names the démarche in.
    #[serde(rename = "v", default, skip_serializing_if = "is_keys")]
    pub vocabulary: Vocabulary,
    /// The eIDAS level stated: the lower of the aidant's login and the mandate's consent.
    #[serde(rename = "r")]
    pub acr: Level,
    #[serde(rename = "t")]
    pub auth_time: i64,
    /// The aidant session's `sid` (back-channel logout names it).
    #[serde(rename = "x", default)]
    pub sid: String,
    /// Identity claims asked by name (`claims` parameter), beyond the scopes.
    #[serde(rename = "q", default)]
    pub claims: RequestedClaims,
    /// When the access token was issued (0 in a code, not issued yet).
    #[serde(rename = "i", default)]
    pub issued_at: i64,
}

fn is_keys(v: &Vocabulary) -> bool {
    *v == Vocabulary::Keys
}

impl Delegation {
    /// The use of the mandate this delegation stands for, as the store checks and journals it.
    pub fn as_use(&self, consent_at_least: Option<Level>) -> mandate_store::Use {
        mandate_store::Use {
            mandate_id: self.mandate_id.clone(),
            aidant_id: self.aidant_id.clone(),
            organisation_id: self.organisation_id.clone(),
            demarche: self.demarche,
            client_id: self.client_id.clone(),
            consent_at_least,
        }
    }
}

/// An authorization code: the delegation, plus what the token request must match.
/// Key: `code:{sha256}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub delegation: Delegation,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// The use is journaled when the client redeems the code (silent `prompt=none` answers:
    /// a request any site can trigger in the aidant's browser journals nothing by itself).
    #[serde(default)]
    pub journal_at_token: bool,
}

/// A logout waiting for the upstream IdP to come back. Key: `lo:{state}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogout {
    pub redirect: Option<String>,
}

impl Interaction {
    /// The lowest eIDAS level the answer may state.
    pub fn min_level(&self) -> Level {
        self.acr_min.unwrap_or(Level::Eidas1)
    }

    /// Past `session.interaction_ttl_secs` a request no longer serves; it is kept as long
    /// again (`interaction_storage_ttl`) so that the aidant can still be sent back to it.
    pub fn expired(&self, session: &crate::config::Session, now: i64) -> bool {
        now - self.created_at > session.interaction_ttl.as_secs() as i64
    }
}

/// How long an interaction, and the upstream login started for it, are stored.
pub fn interaction_storage_ttl(session: &crate::config::Session) -> std::time::Duration {
    2 * session.interaction_ttl
}
