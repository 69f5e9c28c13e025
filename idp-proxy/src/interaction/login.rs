//! The aidant's login at their own identity provider: `start` stores the pending login under
//! its `state` and returns the upstream URL; `callback` checks it, maps the identity to a
//! known, active aidant of an active organisation, opens the session and goes back to the
//! interaction. An unknown identity gets a clear page, never a token. During an
//! authorization, a refusal at the identity provider goes straight back to the client, and
//! every other failure page offers the way back (`abandon`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use mandate_store::{JournalAction, NewJournalEntry, StoreError};

use super::get_bound;
use crate::ephemeral::EphemeralJson;
use crate::provider::error::FrontError;
use crate::provider::keyspace::{interaction_key, Space};
use crate::provider::page::ErrorPage;
use crate::provider::records::{AidantSession, Interaction, UpstreamLogin};
use crate::provider::respond::{send_back, way_back, Abandon};
use crate::provider::session::{self, upstream_page};
use crate::provider::{cookie_value, tokens, App, AppData, BROWSER_COOKIE, SESSION_COOKIE};
use crate::upstream::{Callback, UpstreamError};

/// The authorization a login was started for (`then` is `/interaction/{id}`), if this browser
/// still holds it.
async fn interaction_of(app: &App, then: &str, browser: &str) -> Option<(String, Interaction)> {
    let id = then.strip_prefix("/interaction/")?;
    let ix = get_bound(app, &interaction_key(id), browser, |i: &Interaction| {
        &i.browser
    })
    .await
    .ok()?;
    Some((id.to_string(), ix))
}

/// A failed upstream login. During an authorization, a refusal (the aidant cancelled at their
/// identity provider) goes straight back to the client; any other failure is a page with the
/// way back to it.
async fn failed(
    app: &App,
    login: &UpstreamLogin,
    e: UpstreamError,
) -> Result<HttpResponse, FrontError> {
    let Some((id, ix)) = interaction_of(app, &login.then, &login.browser).await else {
        return Err(upstream_page(e).into());
    };
    let reason = match &e {
        UpstreamError::Denied(code)
            if code == "temporarily_unavailable" || code == "server_error" =>
        {
            Abandon::UpstreamUnavailable
        }
        UpstreamError::Denied(_) => Abandon::UpstreamDenied,
        UpstreamError::Unavailable(_) => Abandon::UpstreamUnavailable,
        UpstreamError::Rejected(_) => Abandon::UpstreamRejected,
    };
    if matches!(e, UpstreamError::Denied(_)) {
        if let Some(ix) = app
            .ephemeral
            .take_json::<Interaction>(&interaction_key(&id))
            .await?
        {
            return Ok(send_back(app, &ix, None, reason).await);
        }
    }
    Err(upstream_page(e)
        .with_way_back(way_back(app, &id, &ix, reason))
        .into())
}

/// Takes, once, the login record that a callback's `state` names (`{prefix}:{state}`), if it
/// was started in this browser: a replayed, foreign or expired state gets the "expired" page.
pub(crate) async fn take_login<T: serde::de::DeserializeOwned + Send>(
    req: &HttpRequest,
    app: &App,
    space: Space,
    callback: &Callback,
    browser_of: impl Fn(&T) -> &String + Send + Sync,
) -> Result<T, FrontError> {
    let state = callback
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or_else(ErrorPage::expired)?;
    // Only this browser's: a callback delivered in another one must not cancel the login
    // under way in the right one.
    let browser = cookie_value(req, BROWSER_COOKIE).unwrap_or_default();
    app.ephemeral
        .take_json_if(&space.key(state), |l: &T| {
            tokens::same(&browser, browser_of(l))
        })
        .await?
        .ok_or_else(|| ErrorPage::expired().into())
}

pub async fn callback(
    req: HttpRequest,
    app: AppData,
    query: web::Query<Callback>,
) -> Result<HttpResponse, FrontError> {
    let ip = crate::provider::limits::client_ip(&app, &req);
    if let Some(after) =
        crate::provider::limits::over(&app, crate::provider::limits::Limit::Ip, &ip).await?
    {
        return Err(ErrorPage::too_many(after).into());
    }
    let login: UpstreamLogin = take_login(
        &req,
        &app,
        Space::UpstreamLogin,
        &query,
        |l: &UpstreamLogin| &l.browser,
    )
    .await?;
    let identity = match app
        .upstream
        .finish(&query, &login.pending, &app.keys())
        .await
    {
        Ok(identity) => identity,
        Err(e) => return failed(&app, &login, e).await,
    };

    let (issuer, subject) = (identity.issuer.clone(), identity.subject.clone());
    let found = app
        .read(move |store| store.find_aidant_login(&issuer, &subject))
        .await?;
    // An aidant of several structures acts for the first one here; choosing is a later step.
    let Some((found, organisation)) = found.filter(|f| f.aidant.active).and_then(|f| {
        let first = f.organisations.first()?.clone();
        Some((f, first))
    }) else {
        let page = ErrorPage::forbidden(
            "Votre identité a bien été vérifiée, mais vous n'êtes pas enregistré comme aidant d'une structure habilitée.",
        );
        return Err(
            match interaction_of(&app, &login.then, &login.browser).await {
                Some((id, ix)) => {
                    page.with_way_back(way_back(&app, &id, &ix, Abandon::UnknownAidant))
                }
                None => page,
            }
            .into(),
        );
    };

    let now = app.now();
    let session = AidantSession {
        aidant_id: found.aidant.id.clone(),
        organisation_id: organisation.id.clone(),
        aidant_name: found.aidant.full_name(),
        organisation_name: organisation.name.clone(),
        auth_time: identity.auth_time.unwrap_or(now).min(now),
        created_at: now,
        last_seen: now,
        browser: login.browser,
        acr: identity
            .acr
            .as_deref()
            .and_then(|a| app.upstream.level_of(a)),
        upstream_id_token: identity.id_token,
        csrf: tokens::random(),
        sid: tokens::random(),
        choices: Vec::new(),
        served: Vec::new(),
        // The authorization this login was made for: its `prompt=login` is answered by this
        // session only (not by an older one of this browser, nor by it for another request).
        fresh_for: login.then.strip_prefix("/interaction/").map(str::to_string),
    };
    let cookie = tokens::random();
    session::save(&app, &cookie, &session).await?;

    let entry = NewJournalEntry {
        action: JournalAction::AidantLogin.into(),
        aidant_id: Some(session.aidant_id.clone()),
        organisation_id: Some(session.organisation_id.clone()),
        ..Default::default()
    };
    let journaled: Result<_, StoreError> = app
        .write(move |store| store.journal_append(&entry, now))
        .await;
    if journaled.is_err() {
        tracing::error!("could not journal an aidant login");
        return Err(ErrorPage::unavailable().into());
    }
    tracing::info!(aidant = %session.aidant_id, "aidant logged in");

    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, login.then))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(app.cookie(SESSION_COOKIE, cookie))
        .finish())
}
