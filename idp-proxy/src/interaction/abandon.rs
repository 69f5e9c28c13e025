//! The way back from every dead end of an authorization. FranceConnect's rules for its
//! identity providers (`Documentation-FranceConnect-Plus` `fi/doc-fi.md`) ask for a visible way
//! back on each page and errors sent back to its callback with `state`; FranceConnect's core
//! accepts an `error` at its callback only with the right `state`
//! (`back/apps/core-fcp/src/controllers/oidc-client.controller.ts`). So each page an aidant can
//! reach during an authorization offers « Annuler et revenir au service » (« … sur
//! FranceConnect » for FranceConnect), and an upstream refusal goes straight back: the client
//! receives `error=access_denied` (`temporarily_unavailable` for an outage),
//! `error_description`, `state` and `iss`. Each is journaled as an abandoned authorization.

use actix_web::{web, HttpRequest, HttpResponse};
use mandate_store::{JournalAction, NewJournalEntry};
use serde::Deserialize;

use super::page::{ErrorPage, WayBack};
use super::{get_bound, return_to, see_other, session};
use crate::ephemeral::EphemeralJson;
use crate::provider::records::{interaction_key, Interaction};
use crate::provider::{cookie_value, tokens, App, AppData, BROWSER_COOKIE};

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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/interaction/{id}/annuler", web::post().to(abandon));
}

/// The form that leads back to the client from a page of interaction `id`.
pub fn way_back(app: &App, id: &str, ix: &Interaction, reason: Abandon) -> WayBack {
    let franceconnect = app
        .config
        .client(&ix.client_id)
        .is_some_and(|c| c.franceconnect);
    WayBack {
        action: format!("/interaction/{id}/annuler"),
        csrf: ix.csrf.clone(),
        reason: reason.as_str(),
        label: if franceconnect {
            "Annuler et revenir sur FranceConnect"
        } else {
            "Annuler et revenir au service"
        },
    }
}

impl crate::provider::error::FrontError {
    /// A page error with the way back to the client added; other errors unchanged.
    pub fn with_way_back(self, way_back: WayBack) -> Self {
        match self {
            Self::Page(p) => Self::Page(p.with_way_back(way_back)),
            other => other,
        }
    }
}

#[derive(Deserialize)]
pub struct AbandonForm {
    csrf: String,
    reason: Abandon,
}

async fn abandon(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<AbandonForm>,
) -> Result<HttpResponse, crate::provider::error::FrontError> {
    let browser = cookie_value(&req, BROWSER_COOKIE).unwrap_or_default();
    let key = interaction_key(&id);
    let ix: Interaction = get_bound(&app, &key, &browser, |i: &Interaction| &i.browser).await?;
    if !tokens::same(&form.csrf, &ix.csrf) {
        return Err(ErrorPage::expired().into());
    }
    // Single use: the client hears of this request once.
    let Some(ix) = app.ephemeral.take_json::<Interaction>(&key).await? else {
        return Err(ErrorPage::expired().into());
    };
    let aidant = session::current(&req, &app, &browser)
        .await?
        .map(|(_, s)| (s.aidant_id, s.organisation_id));
    Ok(send_back(&app, &ix, aidant, form.reason).await)
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
    if !matches!(
        app.write(move |store| store.journal_append(&entry, now))
            .await,
        Ok(Ok(_))
    ) {
        tracing::error!(
            reason = reason.as_str(),
            "could not journal an abandoned authorization"
        );
    }
    tracing::info!(client = %ix.client_id, reason = reason.as_str(), "authorization abandoned");
    let (error, description) = reason.error();
    see_other(return_to(app, ix).url(&[("error", error), ("error_description", description)]))
}
