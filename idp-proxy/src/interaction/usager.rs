//! The usager's own space (DESIGN.md §3.3): they log in with FranceConnect, see the mandates
//! they gave (running and ended), everything done in their name, and end a mandate. The
//! session is short and never renewed; it holds the usager's id only.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use mandate_store::{Actor, JournalAction, JournalFilter, NewJournalEntry, StoreError};
use serde::Deserialize;

use super::franceconnect::{self, Purpose};
use super::french::french_date;
use super::history::{self, HistoryRow};
use super::{DemarcheView, EndForm, EndedQuery};
use crate::ephemeral::EphemeralJson;
use crate::journal;
use crate::provider::error::FrontError;
use crate::provider::keyspace::usager_session_key;
use crate::provider::page::{html, ErrorPage};
use crate::provider::records::UsagerSession;
use crate::provider::respond::see_other;
use crate::provider::{cookie_value, tokens, App, AppData, BROWSER_COOKIE, USAGER_COOKIE};
use crate::upstream::VerifiedIdentity;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/mon-espace", web::get().to(space))
        .route("/mon-espace/connexion", web::get().to(log_in))
        .route("/mon-espace/deconnexion", web::post().to(log_out))
        .route(
            "/mon-espace/mandats/{id}/fin",
            web::post().to(super::ending(false, end_with)),
        )
        .route(
            "/mon-espace/mandats/{id}/fin-demarche",
            web::post().to(super::ending(true, end_with)),
        );
}

/// Most entries shown in the usager's history (newest first).
const HISTORY_LIMIT: i64 = 200;

fn ttl(app: &App) -> Duration {
    app.config.session.interaction_ttl
}

/// The usager logged in at FranceConnect for their space: the session cookie to set. A
/// person who never gave a mandate here gets a session too, to be told so.
pub(super) async fn logged_in(
    app: &App,
    browser: &str,
    verified: &VerifiedIdentity,
) -> Result<actix_web::cookie::Cookie<'static>, FrontError> {
    let sub = verified.subject.clone();
    let now = app.now();
    let usager_id = app
        .write(move |store| {
            let Some(usager) = store.usager_by_franceconnect_sub(&sub)? else {
                return Ok::<_, StoreError>(None);
            };
            // Who looked at the journal is part of the journal.
            let entry = NewJournalEntry {
                action: JournalAction::UsagerLogin.into(),
                usager_id: Some(usager.id.clone()),
                ..Default::default()
            };
            store.journal_append(&entry, now)?;
            Ok(Some(usager.id))
        })
        .await?;
    let session = UsagerSession {
        usager_id,
        browser: browser.to_string(),
        csrf: tokens::random(),
    };
    let cookie = tokens::random();
    app.ephemeral
        .put_json(&usager_session_key(&cookie), &session, ttl(app))
        .await?;
    tracing::info!(known = session.usager_id.is_some(), "usager logged in");
    Ok(app.cookie(USAGER_COOKIE, cookie))
}

/// The usager session of this request, if it belongs to this browser.
async fn current(req: &HttpRequest, app: &App) -> Result<Option<UsagerSession>, FrontError> {
    let (Some(cookie), Some(browser)) = (
        cookie_value(req, USAGER_COOKIE),
        cookie_value(req, BROWSER_COOKIE),
    ) else {
        return Ok(None);
    };
    let session: Option<UsagerSession> =
        app.ephemeral.get_json(&usager_session_key(&cookie)).await?;
    Ok(session.filter(|s| tokens::same(&s.browser, &browser)))
}

#[derive(Template)]
#[template(path = "usager_login.html")]
struct LoginPage;

async fn log_in(req: HttpRequest, app: AppData) -> Result<HttpResponse, FrontError> {
    let (browser, new_browser) = crate::provider::browser_id(&req);
    let url = franceconnect::start(&app, &browser, Purpose::UsagerSpace).await?;
    let mut res = see_other(url);
    if new_browser {
        let _ = res.add_cookie(&app.cookie(BROWSER_COOKIE, browser));
    }
    Ok(res)
}

struct MandateView {
    id: String,
    organisation: String,
    demarches: Vec<DemarcheView>,
    created: String,
    expires: String,
    /// Why and when it ended; `None` while it runs.
    ended: Option<String>,
}

#[derive(Template)]
#[template(path = "usager_space.html")]
struct SpacePage {
    name: String,
    csrf: String,
    running: Vec<MandateView>,
    ended: Vec<MandateView>,
    history: Vec<HistoryRow>,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "usager_unknown.html")]
struct UnknownPage {
    csrf: String,
}

async fn space(
    req: HttpRequest,
    app: AppData,
    q: web::Query<EndedQuery>,
) -> Result<HttpResponse, FrontError> {
    let Some(session) = current(&req, &app).await? else {
        return Ok(html(StatusCode::OK, LoginPage.render()));
    };
    let Some(usager_id) = session.usager_id.clone() else {
        let page = UnknownPage { csrf: session.csrf };
        return Ok(html(StatusCode::OK, page.render()));
    };
    let now = app.now();
    let found = app
        .read(move |store| {
            let Some(usager) = store.usager(&usager_id)? else {
                return Ok(None);
            };
            let mut mandates = Vec::new();
            for m in store.mandates_of_usager(&usager_id)? {
                let organisation = store
                    .organisation(&m.organisation_id)?
                    .map(|o| o.name)
                    .unwrap_or_default();
                mandates.push((m, organisation));
            }
            let filter = JournalFilter {
                usager_id: Some(usager_id),
                limit: Some(HISTORY_LIMIT),
                ..Default::default()
            };
            let lines = journal::lines(store, &filter, None)?;
            Ok::<_, StoreError>(Some((usager, mandates, lines)))
        })
        .await?;
    let Some((usager, mandates, lines)) = found else {
        // Purged since the login: nothing to show any more.
        let page = UnknownPage { csrf: session.csrf };
        return Ok(html(StatusCode::OK, page.render()));
    };
    let (mut running, mut ended) = (Vec::new(), Vec::new());
    for (m, organisation) in mandates {
        let view = MandateView {
            ended: match m.revoked_at {
                Some(at) => Some(format!("Terminé le {}", french_date(at))),
                None if m.expires_at <= now => {
                    Some(format!("Expiré le {}", french_date(m.expires_at)))
                }
                None => None,
            },
            id: m.id,
            organisation,
            demarches: m.demarches.iter().map(DemarcheView::from).collect(),
            created: french_date(m.created_at),
            expires: french_date(m.expires_at),
        };
        if view.ended.is_some() {
            ended.push(view);
        } else {
            running.push(view);
        }
    }
    let page = SpacePage {
        name: usager.identity.full_name(),
        csrf: session.csrf,
        running,
        ended,
        history: history::rows(&app, &lines),
        notice: q.notice(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// Ends the mandate, or (`one`) the démarche the form names.
async fn end_with(
    one: bool,
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<EndForm>,
) -> Result<HttpResponse, FrontError> {
    let session = current(&req, &app).await?.ok_or_else(ErrorPage::expired)?;
    if !tokens::same(&form.csrf, &session.csrf) {
        return Err(ErrorPage::expired().into());
    }
    let usager_id = session.usager_id.ok_or_else(ErrorPage::expired)?;
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other("/mon-espace".to_string()));
    }
    let (id, now) = (id.into_inner(), app.now());
    let result = app
        .write(move |store| {
            form.apply(
                one,
                store,
                &id,
                "ended by the usager",
                Actor::Usager(usager_id),
                now,
            )
        })
        .await;
    let back = super::ended(result, "Ce mandat n'est pas l'un des vôtres.")?;
    tracing::info!("mandate ended, or one of its démarches, by its usager");
    Ok(see_other(format!("/mon-espace?{back}")))
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

#[derive(Template)]
#[template(path = "usager_logged_out.html")]
struct LoggedOutPage;

async fn log_out(
    req: HttpRequest,
    app: AppData,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, FrontError> {
    if let (Some(cookie), Some(session)) = (
        cookie_value(&req, USAGER_COOKIE),
        current(&req, &app).await?,
    ) {
        if !tokens::same(&form.csrf, &session.csrf) {
            return Err(ErrorPage::expired().into());
        }
        app.ephemeral.delete(&usager_session_key(&cookie)).await?;
    }
    let mut res = html(StatusCode::OK, LoggedOutPage.render());
    let _ = res.add_cookie(&app.removal_cookie(USAGER_COOKIE));
    Ok(res)
}
