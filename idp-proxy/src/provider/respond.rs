//! The provider answers the client, and only here: a code once the mandate is checked and its
//! use journaled (`issue_code`), or an abandoned authorization sent back with `access_denied`
//! or `temporarily_unavailable` (`send_back`), always with `state` and `iss` (RFC 9207). The
//! pages ask for these answers; they never build a redirect to a client themselves.
//!
//! The way back from every dead end: FranceConnect's rules for its identity providers
//! (`Documentation-FranceConnect-Plus` `fi/doc-fi.md`) ask for a visible way back on each page
//! and errors sent back to its callback with `state`; FranceConnect's core accepts an `error` at
//! its callback only with the right `state` (`back/apps/core-fcp/src/controllers/
//! oidc-client.controller.ts`). So each page an aidant can reach during an authorization offers
//! « Annuler et revenir au service » (« … sur FranceConnect » for FranceConnect), and an
//! upstream refusal goes straight back. Each is journaled as an abandoned authorization.

use actix_web::http::header;
use actix_web::HttpResponse;
use mandate_store::{Demarche, JournalAction, Level, NewJournalEntry, Refusal, UseError};
use serde::Deserialize;

use super::checks::acr;
use super::error::FrontError;
use super::keyspace::code_key;
use super::page::WayBack;
use super::records::{AidantSession, CodeGrant, Delegation, Interaction};
use super::{tokens, App};
use crate::ephemeral::EphemeralJson;
use url::Url;

/// A redirect the browser follows with a GET (303), never cached.
pub fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Where an authorization error may be sent once client and redirect URI are known-good.
#[derive(Debug, Clone)]
pub struct ReturnTo {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub issuer: String,
}

impl ReturnTo {
    /// The redirect URI with `params` added to its query (RFC 6749 §4.1.2 keeps its own query).
    pub fn url(&self, params: &[(&str, &str)]) -> String {
        match Url::parse(&self.redirect_uri) {
            Ok(mut url) => {
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in params {
                        q.append_pair(k, v);
                    }
                    if let Some(state) = &self.state {
                        q.append_pair("state", state);
                    }
                    q.append_pair("iss", &self.issuer);
                }
                url.into()
            }
            // Registered URIs are validated at start-up; this branch is unreachable in practice.
            Err(_) => self.redirect_uri.clone(),
        }
    }
}

/// Why an authorization ends without a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Abandon {
    /// The aidant chose to go back.
    Cancelled,
    /// No usager of the structure has a mandate for what the service asks.
    Nobody,
    /// The identity was verified but is no active aidant of an active structure.
    UnknownAidant,
    /// The aidant's identity provider refused the login (the aidant cancelled there).
    UpstreamDenied,
    /// The aidant's identity provider's answer could not be verified.
    UpstreamRejected,
    /// The aidant's identity provider is unreachable or failing.
    UpstreamUnavailable,
    /// The request outlived `session.interaction_ttl_secs`.
    Expired,
}

impl Abandon {
    /// As journaled and sent in forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Abandon::Cancelled => "cancelled",
            Abandon::Nobody => "nobody",
            Abandon::UnknownAidant => "unknown_aidant",
            Abandon::UpstreamDenied => "upstream_denied",
            Abandon::UpstreamRejected => "upstream_rejected",
            Abandon::UpstreamUnavailable => "upstream_unavailable",
            Abandon::Expired => "expired",
        }
    }

    fn error(self) -> (&'static str, &'static str) {
        match self {
            Abandon::Cancelled => ("access_denied", "the aidant cancelled"),
            Abandon::Nobody => (
                "access_denied",
                "no usager has a mandate for what this service asks",
            ),
            Abandon::UnknownAidant => (
                "access_denied",
                "the aidant is not an active aidant of an authorised structure",
            ),
            Abandon::UpstreamDenied => (
                "access_denied",
                "the aidant's identity provider refused the login",
            ),
            Abandon::UpstreamRejected => (
                "access_denied",
                "the aidant's identity provider answer could not be verified",
            ),
            Abandon::UpstreamUnavailable => (
                "temporarily_unavailable",
                "the aidant's identity provider is unavailable",
            ),
            Abandon::Expired => ("access_denied", "the authorization request expired"),
        }
    }
}

/// The form that leads back to the client from a page of interaction `id`.
pub fn way_back(app: &App, id: &str, ix: &Interaction, reason: Abandon) -> WayBack {
    let franceconnect = app
        .config
        .client(&ix.client_id)
        .is_some_and(|c| c.franceconnect);
    WayBack {
        action: format!("/interaction/{id}/annuler"),
        csrf: way_back_token(ix, reason),
        reason: reason.as_str(),
        label: if franceconnect {
            "Annuler et revenir sur FranceConnect"
        } else {
            "Annuler et revenir au service"
        },
    }
}

/// The way back's CSRF token, bound to its reason: a form can only send back the reason of a
/// page this browser was shown (the interaction's CSRF token is never shown bare there).
pub fn way_back_token(ix: &Interaction, reason: Abandon) -> String {
    tokens::sha256_b64(&format!("{}:{}", ix.csrf, reason.as_str()))
}

/// Journals the abandoned authorization and sends the browser back to the client. The
/// interaction must already be taken. A journal failure does not keep the aidant here: no
/// code was issued, and the client must still hear that none will be.
pub async fn send_back(
    app: &App,
    ix: &Interaction,
    aidant: Option<(String, String)>,
    reason: Abandon,
) -> HttpResponse {
    let (aidant_id, organisation_id) = aidant.unzip();
    let entry = NewJournalEntry {
        action: JournalAction::AuthorizationAbandoned.into(),
        aidant_id,
        organisation_id,
        client_id: Some(ix.client_id.clone()),
        detail: Some(reason.as_str().to_string()),
        ..Default::default()
    };
    let now = app.now();
    let journaled: Result<_, mandate_store::StoreError> = app
        .write(move |store| store.journal_append(&entry, now))
        .await;
    if journaled.is_err() {
        tracing::error!(
            reason = reason.as_str(),
            "could not journal an abandoned authorization"
        );
    }
    tracing::info!(client = %ix.client_id, reason = reason.as_str(), "authorization abandoned");
    let (error, description) = reason.error();
    see_other(return_to(app, ix).url(&[("error", error), ("error_description", description)]))
}

/// The eIDAS level of the aidant's login, if it reaches what the request needs; else the
/// answer to the client (`unmet_authentication_requirements`), before the aidant is asked
/// anything on the choice page.
pub fn aidant_level(app: &App, ix: &Interaction, s: &AidantSession) -> Result<Level, FrontError> {
    let min = ix.min_level();
    match s.acr {
        Some(level) if level >= min => Ok(level),
        _ => Err(FrontError::Redirect {
            to: return_to(app, ix),
            error: acr::unmet(&format!("the aidant's login reached no {min} or higher")),
        }),
    }
}

/// What became of a choice: a code sent back to the client, or the mandate's refusal.
pub enum Issued {
    /// The response that sends the browser back with the code, and the usager acted for.
    Code {
        response: HttpResponse,
        usager_id: String,
    },
    Refused(Refusal),
}

/// The mandate checked, a code stored, then the use journaled (re-checked in the same
/// transaction); or, `journal_now` false, only checked: the token endpoint journals it when
/// the client redeems the code. Then the browser is sent back to the client with the code.
/// A refusal or a failure leaves nothing journaled and no code anyone knows.
pub async fn issue_code(
    app: &App,
    ix: &Interaction,
    s: &AidantSession,
    mandate_id: &str,
    demarche: Demarche,
    journal_now: bool,
) -> Result<Issued, FrontError> {
    let session_level = aidant_level(app, ix, s)?;
    let min = ix.min_level();
    let client = app
        .config
        .client(&ix.client_id)
        .ok_or_else(|| FrontError::Redirect {
            to: return_to(app, ix),
            error: super::error::OAuthError::invalid_request("the client is no longer registered"),
        })?;
    let mut delegation = Delegation {
        client_id: ix.client_id.clone(),
        scopes: ix.scopes.clone(),
        mandate_id: mandate_id.to_string(),
        aidant_id: s.aidant_id.clone(),
        organisation_id: s.organisation_id.clone(),
        demarche,
        vocabulary: ix.vocabulary,
        acr: min,
        auth_time: s.auth_time,
        sid: s.sid.clone(),
        claims: ix.claims.clone(),
        issued_at: 0,
    };
    // A mandate is always given after the usager's FranceConnect login: one without a recorded
    // level (imported from an older system) counts as eidas1, and is checked only above it.
    let use_ = delegation.as_use((min > Level::Eidas1).then_some(min));
    let now = app.now();
    let checked = {
        let use_ = use_.clone();
        app.read(move |store| store.check_use(&use_, now)).await
    };
    let grant = match checked {
        Ok(g) => g,
        Err(UseError::Refused(r)) => return Ok(Issued::Refused(r)),
        Err(UseError::Store(e)) => return Err(e.into()),
    };
    // What was really reached: the lower of the aidant's login and the usager's consent.
    let consent_level = grant.consent_acr.unwrap_or(Level::Eidas1);
    // `acr()` kept the minimum within the client's levels, and the consent was checked above it.
    delegation.acr =
        acr::stated(client, Some(session_level.min(consent_level)), min).unwrap_or(min);
    let code = tokens::random();
    let code_grant = CodeGrant {
        delegation,
        redirect_uri: ix.redirect_uri.clone(),
        code_challenge: ix.code_challenge.clone(),
        nonce: ix.nonce.clone(),
        journal_at_token: !journal_now,
    };
    let ttl = app.config.tokens.code_ttl;
    let key = code_key(&app.keys().access_token_for(&code));
    // The code is stored before the use is journaled, and shown to nobody until the journal
    // entry is committed: a store failure on either side leaves no journal entry without its
    // code, and no code that could be redeemed without its entry.
    app.ephemeral.put_json(&key, &code_grant, ttl).await?;
    if journal_now {
        let recorded = app.write(move |store| store.record_use(&use_, now)).await;
        let refused = match recorded {
            Ok(_) => None,
            Err(UseError::Refused(r)) => Some(Ok(Issued::Refused(r))),
            Err(UseError::Store(e)) => Some(Err(e.into())),
        };
        if let Some(outcome) = refused {
            // Never shown, so never redeemable; deleted so it does not linger either.
            if let Err(e) = app.ephemeral.delete(&key).await {
                tracing::warn!(error = %e, "unjournaled code left to expire");
            }
            return outcome;
        }
    }
    tracing::info!(client = %ix.client_id, demarche = demarche.as_str(), "code issued");
    let to = return_to(app, ix);
    Ok(Issued::Code {
        response: see_other(to.url(&[("code", &code)])),
        usager_id: grant.usager_id,
    })
}

/// Where answers to this interaction's client go.
pub fn return_to(app: &App, ix: &Interaction) -> ReturnTo {
    ReturnTo {
        redirect_uri: ix.redirect_uri.clone(),
        state: ix.state.clone(),
        issuer: app.issuer().to_string(),
    }
}
