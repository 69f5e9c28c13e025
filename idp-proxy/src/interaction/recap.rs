//! The recap the usager reads before giving a mandate, written for them: each démarche with
//! what it covers, what the aidants will be able to do and see, why, who sees the trace and
//! for how long, their rights; a mandate already running at the structure, and what the new
//! one changes in it. Then they give the mandate (`confirm`) or do not (`refuse`, journaled,
//! nothing else stored).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use mandate_store::{Demarche, GiveMandate, JournalAction, NewJournalEntry};
use serde::Deserialize;

use super::french::{born, french_date};
use super::mandate::{pending_key, FranceConnectUsager, Pending};
use super::{DemarcheView, FieldError};
use crate::ephemeral::EphemeralJson;
use crate::provider::error::FrontError;
use crate::provider::page::{html, ErrorPage};
use crate::provider::records::AidantSession;
use crate::provider::respond::see_other;
use crate::provider::session::{self, Required};
use crate::provider::{tokens, App, AppData};

/// The mandate already running at the structure, and what the new one changes.
struct Running {
    expires: String,
    added: Vec<&'static str>,
    kept: Vec<&'static str>,
    dropped: Vec<&'static str>,
}

/// What the recap says besides the pending mandate, read from the store.
struct Context {
    /// Who receives the mandate: the structure, or its aidant when mandates are bound to
    /// their creator.
    mandataire: String,
    running: Option<Running>,
}

#[derive(Template)]
#[template(path = "mandate_recap.html")]
struct RecapPage {
    /// The aidant's session CSRF token, for « Se déconnecter ».
    logout_csrf: String,
    id: String,
    csrf: String,
    usager_name: String,
    born: String,
    mandataire: String,
    organisation_name: String,
    demarches: Vec<DemarcheView>,
    expires: String,
    retention: String,
    running: Option<Running>,
    /// FranceConnect gave no email: asked here (every mandate needs one).
    ask_email: bool,
    email: String,
    errors: Vec<FieldError>,
}

/// `retention.days` as a person says it.
fn retention_fr(days: u64) -> String {
    match days {
        d if d % 365 == 0 && d / 365 == 1 => "un an".into(),
        d if d % 365 == 0 => format!("{} ans", d / 365),
        d => format!("{d} jours"),
    }
}

/// The person behind a FranceConnect login, if they have a file, and their mandates running
/// at `org` now.
fn running_at(
    store: &mandate_store::Store,
    sub: &str,
    org: &str,
    now: i64,
) -> Result<(Option<String>, Vec<mandate_store::Mandate>), mandate_store::StoreError> {
    let Some(u) = store.usager_by_franceconnect_sub(sub)? else {
        return Ok((None, Vec::new()));
    };
    let running = store
        .mandates_of_usager(&u.id)?
        .into_iter()
        .filter(|m| m.organisation_id == org && m.is_active(now))
        .collect();
    Ok((Some(u.id), running))
}

async fn context(
    app: &App,
    s: &AidantSession,
    pending: &Pending,
    usager: &FranceConnectUsager,
) -> Result<Context, FrontError> {
    let (org, sub, now) = (s.organisation_id.clone(), usager.sub.clone(), app.now());
    let (bound, running) = app
        .read(move |store| {
            let bound = store
                .organisation(&org)?
                .is_some_and(|o| o.mandates_bound_to_creator);
            let (_, running) = running_at(store, &sub, &org, now)?;
            Ok::<_, mandate_store::StoreError>((bound, running))
        })
        .await?;
    let mandataire = if bound {
        format!("{}, aidant de {}", s.aidant_name, s.organisation_name)
    } else {
        s.organisation_name.clone()
    };
    let running = running
        .iter()
        .map(|m| m.expires_at)
        .max()
        .map(|expires_at| {
            let before: BTreeSet<Demarche> =
                running.iter().flat_map(|m| m.demarches.clone()).collect();
            let after: BTreeSet<Demarche> = pending.demarches.iter().copied().collect();
            let titles = |set: Vec<&Demarche>| set.into_iter().map(|d| d.title_fr()).collect();
            Running {
                expires: french_date(expires_at),
                added: titles(after.difference(&before).collect()),
                kept: titles(after.intersection(&before).collect()),
                dropped: titles(before.difference(&after).collect()),
            }
        });
    Ok(Context {
        mandataire,
        running,
    })
}

async fn page(
    app: &App,
    id: String,
    s: &AidantSession,
    pending: &Pending,
    email: &str,
    errors: Vec<FieldError>,
) -> Result<HttpResponse, FrontError> {
    let Some(usager) = &pending.usager else {
        return Err(ErrorPage::expired().into());
    };
    let cx = context(app, s, pending, usager).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let page = RecapPage {
        logout_csrf: s.csrf.clone(),
        id,
        csrf: s.csrf.clone(),
        usager_name: usager.identity.full_name(),
        born: born(&usager.identity),
        mandataire: cx.mandataire,
        organisation_name: s.organisation_name.clone(),
        demarches: pending.demarches.iter().map(DemarcheView::from).collect(),
        expires: french_date(pending.expires_at),
        retention: retention_fr(app.config.retention.days),
        running: cx.running,
        ask_email: usager.identity.email.is_none(),
        email: email.to_string(),
        errors,
    };
    Ok(html(status, page.render()))
}

/// The pending mandate of this URL, for this browser and this aidant, with its usager known.
async fn pending_of(
    app: &App,
    id: &str,
    browser: &str,
    s: &AidantSession,
) -> Result<Pending, FrontError> {
    let pending: Pending =
        super::get_bound(app, &pending_key(id), browser, |p: &Pending| &p.browser).await?;
    if pending.aidant_id != s.aidant_id || pending.usager.is_none() {
        return Err(ErrorPage::expired().into());
    }
    Ok(pending)
}

/// Takes the pending mandate (single use), only this browser's and this aidant's, with its
/// usager known: one mandate or one refusal per recap.
async fn take_pending(
    app: &App,
    id: &str,
    browser: &str,
    s: &AidantSession,
) -> Result<(Pending, FranceConnectUsager), FrontError> {
    let key = pending_key(id);
    if key.len() > 80 {
        return Err(ErrorPage::expired().into());
    }
    let taken: Option<Pending> = app
        .ephemeral
        .take_json_if(&key, |p: &Pending| {
            tokens::same(&p.browser, browser) && p.aidant_id == s.aidant_id && p.usager.is_some()
        })
        .await?;
    let mut pending = taken.ok_or_else(ErrorPage::expired)?;
    let usager = pending.usager.take().ok_or_else(ErrorPage::expired)?;
    Ok((pending, usager))
}

/// The aidant's session for a recap form, its CSRF token checked; or the login first.
async fn session_for(
    req: &HttpRequest,
    app: &App,
    id: &str,
    csrf: Option<&str>,
) -> Result<Required, FrontError> {
    let then = format!("/mandats/recapitulatif/{id}");
    let required = session::require(req, app, &then).await?;
    if let (Required::Active { session, .. }, Some(csrf)) = (&required, csrf) {
        if session.csrf.is_empty() || !tokens::same(csrf, &session.csrf) {
            return Err(ErrorPage::expired().into());
        }
    }
    Ok(required)
}

pub async fn show(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
) -> Result<HttpResponse, FrontError> {
    let (browser, s) = match session_for(&req, &app, &id, None).await? {
        Required::Active { browser, session } => (browser, session),
        Required::LoginFirst(login) => return Ok(login),
    };
    let pending = pending_of(&app, &id, &browser, &s).await?;
    page(&app, id.into_inner(), &s, &pending, "", Vec::new()).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    consent: Option<String>,
    /// Asked when FranceConnect gave none.
    email: Option<String>,
}

pub async fn confirm(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, FrontError> {
    let (browser, s) = match session_for(&req, &app, &id, Some(&form.csrf)).await? {
        Required::Active { browser, session } => (browser, session),
        Required::LoginFirst(login) => return Ok(login),
    };
    // The aidant's session may have been renewed at a lower level since the form.
    super::mandate::strong_enough(&app, &s)?;
    let checked = pending_of(&app, &id, &browser, &s).await?;
    // FranceConnect gave no email: the one typed here, checked as FranceConnect checks it.
    let typed = form.email.as_deref().map(str::trim).unwrap_or_default();
    let ask_email = checked
        .usager
        .as_ref()
        .is_some_and(|u| u.identity.email.is_none());
    let mut errors = Vec::new();
    if ask_email && !mandate_store::is_email(typed) {
        errors.push(FieldError::new(
            "email",
            "Indiquez une adresse électronique valide, par exemple nom@exemple.fr.",
        ));
    }
    if form.consent.as_deref() != Some("yes") {
        errors.push(FieldError::new(
            "consent",
            "Cochez la case pour donner mandat, ou choisissez « Je ne donne pas mandat ».",
        ));
    }
    if !errors.is_empty() {
        return page(&app, id.into_inner(), &s, &checked, typed, errors).await;
    }
    let (pending, mut usager) = take_pending(&app, &id, &browser, &s).await?;
    if ask_email {
        usager.identity.email = Some(typed.to_string());
    }
    let now = app.now();
    let give = GiveMandate {
        franceconnect_sub: usager.sub,
        identity: usager.identity,
        organisation_id: pending.organisation_id,
        aidant_id: pending.aidant_id,
        demarches: pending.demarches,
        expires_at: pending.expires_at,
        // Evidence of consent; the FranceConnect subject itself is kept only hashed.
        consent: serde_json::json!({
            "method": "franceconnect",
            "confirmed_at": now,
            "acr": usager.acr,
            "auth_time": usager.auth_time,
        }),
    };
    let given = app
        .write(move |store| store.give_mandate(&give, now))
        .await?;
    tracing::info!(mandate = %given.mandate.id, replaced = given.replaced.len(), "mandate given");
    Ok(see_other(format!(
        "/mandats/{}/attestation",
        given.mandate.id
    )))
}

#[derive(Deserialize)]
pub struct RefuseForm {
    csrf: String,
}

#[derive(Template)]
#[template(path = "mandate_refused.html")]
struct RefusedPage {
    /// The aidant's session CSRF token, for « Se déconnecter ».
    logout_csrf: String,
    usager_name: String,
    /// The mandate already running there, which stays as it was.
    running_kept: bool,
}

/// « Je ne donne pas mandat »: the pending mandate is dropped, nothing is stored but the
/// refusal in the journal (the aidant, the structure, the démarches asked; the usager only if
/// they already had a file there), and the aidant is told.
pub async fn refuse(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<RefuseForm>,
) -> Result<HttpResponse, FrontError> {
    let (browser, s) = match session_for(&req, &app, &id, Some(&form.csrf)).await? {
        Required::Active { browser, session } => (browser, session),
        Required::LoginFirst(login) => return Ok(login),
    };
    let (pending, usager) = take_pending(&app, &id, &browser, &s).await?;
    let asked: Vec<&str> = pending.demarches.iter().map(|d| d.as_str()).collect();
    let (org, sub, now) = (s.organisation_id.clone(), usager.sub.clone(), app.now());
    let entry = NewJournalEntry {
        action: JournalAction::MandateRefused.into(),
        aidant_id: Some(s.aidant_id.clone()),
        organisation_id: Some(org.clone()),
        detail: Some(asked.join(",")),
        ..Default::default()
    };
    let running_kept = app
        .write(move |store| {
            let (usager_id, running) = running_at(store, &sub, &org, now)?;
            let entry = NewJournalEntry { usager_id, ..entry };
            store.journal_append(&entry, now)?;
            Ok::<_, mandate_store::StoreError>(!running.is_empty())
        })
        .await?;
    tracing::info!(aidant = %s.aidant_id, "mandate refused by the usager");
    let page = RefusedPage {
        logout_csrf: s.csrf.clone(),
        usager_name: usager.identity.full_name(),
        running_kept,
    };
    Ok(html(StatusCode::OK, page.render()))
}
