//! The way back from every dead end of an authorization, as a form: `POST
//! /interaction/{id}/annuler` (this browser's interaction, a CSRF token bound to the reason of
//! the page that showed it, the address rate-limited) takes the
//! interaction and asks the provider to send the aidant back to the client
//! (`provider::respond::send_back`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::get_bound;
use crate::ephemeral::EphemeralJson;
use crate::provider::keyspace::interaction_key;
use crate::provider::page::ErrorPage;
use crate::provider::records::Interaction;
use crate::provider::respond::{send_back, way_back_token, Abandon};
use crate::provider::session;
use crate::provider::{cookie_value, limits, tokens, AppData, BROWSER_COOKIE};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/interaction/{id}/annuler", web::post().to(abandon));
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
    // Anyone may start an authorization and abandon it: each is a journal entry, so the
    // address is counted as at /authorize.
    let ip = limits::client_ip(&app, &req);
    if let Some(after) = limits::over(&app, limits::Limit::Ip, &ip).await? {
        return Err(ErrorPage::too_many(after).into());
    }
    let browser = cookie_value(&req, BROWSER_COOKIE).unwrap_or_default();
    let key = interaction_key(&id);
    let ix: Interaction = get_bound(&app, &key, &browser, |i: &Interaction| &i.browser).await?;
    if !tokens::same(&form.csrf, &way_back_token(&ix, form.reason)) {
        return Err(ErrorPage::expired().into());
    }
    // Read before the interaction is taken, so that a store failure leaves it in place; the
    // aidant is named only if their session serves this interaction (not an older one left
    // open on a shared computer).
    let now = app.now();
    let aidant = session::current(&req, &app, &browser)
        .await?
        .filter(|(_, s)| session::satisfies(&app, s, &ix, &id, now))
        .map(|(_, s)| (s.aidant_id, s.organisation_id));
    // Single use: the client hears of this request once.
    let Some(ix) = app.ephemeral.take_json::<Interaction>(&key).await? else {
        return Err(ErrorPage::expired().into());
    };
    Ok(send_back(&app, &ix, aidant, form.reason).await)
}
