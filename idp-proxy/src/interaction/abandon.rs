//! The way back from every dead end of an authorization, as a form: `POST
//! /interaction/{id}/annuler` (CSRF of the interaction, this browser's only) takes the
//! interaction and asks the provider to send the aidant back to the client
//! (`provider::respond::send_back`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::get_bound;
use crate::ephemeral::EphemeralJson;
use crate::provider::page::ErrorPage;
use crate::provider::records::{interaction_key, Interaction};
use crate::provider::respond::{send_back, Abandon};
use crate::provider::session;
use crate::provider::{cookie_value, tokens, AppData, BROWSER_COOKIE};

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
