//! Giving a mandate (DESIGN.md §3.2), in the aidant's browser with the usager beside them:
//! the aidant chooses démarches and a duration, the usager logs in at FranceConnect (we are
//! its relying party; v2's encrypted tokens are opened in `upstream`), reads a recap written
//! for them and confirms; then, in one transaction, the usager is found or created, earlier
//! mandates to the organisation end, the new one is stored with its consent evidence and
//! journaled; a printable attestation follows. No FranceConnect token or session is kept.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use mandate_store::{Demarche, GiveMandate, Identity, IdentityProblem, Level};
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use super::franceconnect::{self, Purpose};
use super::french::{born, french_date, paris_day};
use super::DemarcheView;
use crate::ephemeral::EphemeralJson;
use crate::keys::hex;
use crate::provider::error::FrontError;
use crate::provider::keyspace::Space;
use crate::provider::page::{html, ErrorPage};
use crate::provider::records::AidantSession;
use crate::provider::respond::see_other;
use crate::provider::session::{self, Required};
use crate::provider::{tokens, App, AppData};
use crate::upstream::VerifiedIdentity;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/mandats/nouveau", web::get().to(new_form))
        .route("/mandats/nouveau", web::post().to(new_submit))
        .route("/mandats/recapitulatif/{id}", web::get().to(recap))
        .route("/mandats/recapitulatif/{id}", web::post().to(confirm))
        .route("/mandats/{id}/attestation", web::get().to(attestation));
}

/// Durations offered beside a chosen date, in days (the field's: a day, a month, six months,
/// a year), as far as `mandates.max_days` allows.
const DURATIONS: [(i64, &str); 4] = [
    (1, "Un jour (pour cette démarche seulement)"),
    (31, "Un mois"),
    (182, "Six mois"),
    (365, "Un an"),
];

/// A mandate being given. Key: `mc:{id}`; ids only until FranceConnect answers.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    aidant_id: String,
    organisation_id: String,
    browser: String,
    demarches: Vec<Demarche>,
    expires_at: i64,
    usager: Option<FranceConnectUsager>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FranceConnectUsager {
    sub: String,
    identity: Identity,
    acr: Option<Level>,
    auth_time: Option<i64>,
}

fn pending_key(id: &str) -> String {
    Space::MandateCreation.key(id)
}

fn ttl(app: &App) -> Duration {
    app.config.session.interaction_ttl
}

#[derive(Template)]
#[template(path = "mandate_new.html")]
struct NewPage {
    aidant_name: String,
    organisation_name: String,
    csrf: String,
    demarches: Vec<DemarcheView>,
    durations: Vec<(i64, &'static str)>,
    /// Bounds of the date field (YYYY-MM-DD).
    tomorrow: String,
    last_day: String,
    last_day_fr: String,
    error: Option<String>,
}

fn durations(app: &App) -> impl Iterator<Item = (i64, &'static str)> {
    let max = app.config.mandates.max_days as i64;
    DURATIONS.into_iter().filter(move |(d, _)| *d <= max)
}

/// The end of a mandate chosen "until" a day: the last second of that day, Paris time; `None`
/// if the day is not between tomorrow and `mandates.max_days` from now.
fn until_day(app: &App, day: &str, now: i64) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let max = app.config.mandates.max_days as i64;
    let today = paris_day(now);
    if day <= today || day > paris_day(now + max * 86_400) {
        return None;
    }
    let end = day.and_hms_opt(23, 59, 59)?;
    end.and_local_timezone(chrono_tz::Europe::Paris)
        .latest()
        .map(|t| t.timestamp())
}

fn new_page(app: &App, s: &AidantSession, error: Option<&str>) -> HttpResponse {
    let now = app.now();
    let page = NewPage {
        aidant_name: s.aidant_name.clone(),
        organisation_name: s.organisation_name.clone(),
        csrf: s.csrf.clone(),
        demarches: Demarche::ALL.iter().map(DemarcheView::from).collect(),
        durations: durations(app).collect(),
        tomorrow: paris_day(now + 86_400).format("%Y-%m-%d").to_string(),
        last_day: paris_day(now + app.config.mandates.max_days as i64 * 86_400)
            .format("%Y-%m-%d")
            .to_string(),
        last_day_fr: paris_day(now + app.config.mandates.max_days as i64 * 86_400)
            .format("%d/%m/%Y")
            .to_string(),
        error: error.map(str::to_string),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(status, page.render())
}

async fn new_form(req: HttpRequest, app: AppData) -> Result<HttpResponse, FrontError> {
    Ok(
        match session::require(&req, &app, "/mandats/nouveau").await? {
            Required::Active { session, .. } => new_page(&app, &session, None),
            Required::LoginFirst(login) => login,
        },
    )
}

async fn new_submit(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, FrontError> {
    let (browser, s) = match session::require(&req, &app, "/mandats/nouveau").await? {
        Required::Active { browser, session } => (browser, session),
        Required::LoginFirst(login) => return Ok(login),
    };
    let mut csrf = String::new();
    let mut demarches = Vec::new();
    let mut duree = String::new();
    let mut day = String::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "demarches" => match v.parse::<Demarche>() {
                Ok(d) if !demarches.contains(&d) => demarches.push(d),
                Ok(_) => {}
                Err(_) => return Ok(new_page(&app, &s, Some("Démarche inconnue."))),
            },
            "duree" => duree = v.into_owned(),
            "jusquau" => day = v.into_owned(),
            _ => {}
        }
    }
    if s.csrf.is_empty() || !tokens::same(&csrf, &s.csrf) {
        return Err(ErrorPage::expired().into());
    }
    if demarches.is_empty() {
        return Ok(new_page(
            &app,
            &s,
            Some("Choisissez au moins une démarche."),
        ));
    }
    let now = app.now();
    let expires_at = if duree == "date" {
        match until_day(&app, &day, now) {
            Some(t) => t,
            None => {
                let msg = format!(
                    "Choisissez une date de fin entre demain et dans {} jours au plus.",
                    app.config.mandates.max_days
                );
                return Ok(new_page(&app, &s, Some(&msg)));
            }
        }
    } else {
        match durations(&app).find(|(d, _)| d.to_string() == duree) {
            Some((days, _)) => now + days * 86_400,
            None => return Ok(new_page(&app, &s, Some("Choisissez une durée."))),
        }
    };
    let pending_id = tokens::random();
    let pending = Pending {
        aidant_id: s.aidant_id.clone(),
        organisation_id: s.organisation_id.clone(),
        browser: browser.clone(),
        demarches,
        expires_at,
        usager: None,
    };
    app.ephemeral
        .put_json(&pending_key(&pending_id), &pending, ttl(&app))
        .await?;
    let url = franceconnect::start(&app, &browser, Purpose::GiveMandate(pending_id)).await?;
    Ok(see_other(url))
}

fn incomplete() -> ErrorPage {
    ErrorPage::bad_request(
        "FranceConnect n'a pas transmis l'identité complète de la personne. Aucun mandat n'a été créé.",
    )
}

/// The usager of a pending mandate logged in at FranceConnect: their verified identity joins
/// the pending mandate, for the recap.
pub(super) async fn usager_verified(
    app: &App,
    pending_id: &str,
    verified: &VerifiedIdentity,
) -> Result<(), FrontError> {
    let key = pending_key(pending_id);
    let mut pending: Pending = app
        .ephemeral
        .get_json(&key)
        .await?
        .ok_or_else(ErrorPage::expired)?;
    let identity = verified
        .userinfo
        .as_ref()
        .and_then(franceconnect::identity_from)
        .ok_or_else(incomplete)?;
    // FranceConnect's identity DTO, which every answer built from it must pass; a missing
    // email is asked on the recap page.
    match identity.check() {
        Ok(()) | Err(IdentityProblem::Email) => {}
        Err(problem) => {
            tracing::warn!(%problem, "FranceConnect identity refused");
            return Err(incomplete().into());
        }
    }
    pending.usager = Some(FranceConnectUsager {
        sub: verified.subject.clone(),
        identity,
        // Kept as the eIDAS level it stands for (`acr_levels`), as requests compare it.
        acr: verified
            .acr
            .as_deref()
            .and_then(|a| app.franceconnect.as_ref()?.level_of(a)),
        auth_time: verified.auth_time,
    });
    app.ephemeral.put_json(&key, &pending, ttl(app)).await?;
    Ok(())
}

#[derive(Template)]
#[template(path = "mandate_recap.html")]
struct RecapPage {
    id: String,
    csrf: String,
    usager_name: String,
    born: String,
    organisation_name: String,
    demarches: Vec<&'static str>,
    expires: String,
    /// FranceConnect gave no email: asked here (every mandate needs one).
    ask_email: bool,
    email: String,
    error: Option<&'static str>,
}

fn recap_page(
    id: String,
    s: &AidantSession,
    pending: &Pending,
    usager: &FranceConnectUsager,
    typed: Option<(&str, &'static str)>,
) -> HttpResponse {
    let page = RecapPage {
        id,
        csrf: s.csrf.clone(),
        usager_name: usager.identity.full_name(),
        born: born(&usager.identity),
        organisation_name: s.organisation_name.clone(),
        demarches: pending.demarches.iter().map(|d| d.title_fr()).collect(),
        expires: french_date(pending.expires_at),
        ask_email: usager.identity.email.is_none(),
        email: typed.map(|(e, _)| e.to_string()).unwrap_or_default(),
        error: typed.map(|(_, problem)| problem),
    };
    let status = if typed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(status, page.render())
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

async fn recap(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
) -> Result<HttpResponse, FrontError> {
    let then = format!("/mandats/recapitulatif/{id}");
    let (browser, s) = match session::require(&req, &app, &then).await? {
        Required::Active { browser, session } => (browser, session),
        Required::LoginFirst(login) => return Ok(login),
    };
    let pending = pending_of(&app, &id, &browser, &s).await?;
    let Some(usager) = &pending.usager else {
        return Err(ErrorPage::expired().into());
    };
    Ok(recap_page(id.into_inner(), &s, &pending, usager, None))
}

#[derive(Deserialize)]
struct ConfirmForm {
    csrf: String,
    consent: Option<String>,
    /// Asked when FranceConnect gave none.
    email: Option<String>,
}

async fn confirm(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, FrontError> {
    let then = format!("/mandats/recapitulatif/{id}");
    let (browser, s) = match session::require(&req, &app, &then).await? {
        Required::Active { browser, session } => (browser, session),
        Required::LoginFirst(login) => return Ok(login),
    };
    if s.csrf.is_empty() || !tokens::same(&form.csrf, &s.csrf) {
        return Err(ErrorPage::expired().into());
    }
    let checked = pending_of(&app, &id, &browser, &s).await?;
    // FranceConnect gave no email: the one typed here, checked as FranceConnect checks it.
    let typed = form.email.as_deref().map(str::trim).unwrap_or_default();
    let email = match checked.usager.as_ref().map(|u| u.identity.email.is_none()) {
        Some(true) if !mandate_store::is_email(typed) => {
            let Some(usager) = &checked.usager else {
                return Err(ErrorPage::expired().into());
            };
            let problem = "Indiquez une adresse électronique valide, par exemple nom@exemple.fr.";
            return Ok(recap_page(
                id.into_inner(),
                &s,
                &checked,
                usager,
                Some((typed, problem)),
            ));
        }
        Some(true) => Some(typed.to_string()),
        _ => None,
    };
    if form.consent.as_deref() != Some("yes") {
        return Ok(see_other(then));
    }
    // Single use: one confirmation, one mandate.
    let pending: Pending = app
        .ephemeral
        .take_json(&pending_key(&id))
        .await?
        .ok_or_else(ErrorPage::expired)?;
    let Some(mut usager) = pending.usager else {
        return Err(ErrorPage::expired().into());
    };
    if email.is_some() {
        usager.identity.email = email;
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

#[derive(Template)]
#[template(path = "attestation.html")]
struct AttestationPage {
    usager_name: String,
    born: String,
    organisation_name: String,
    siret: String,
    aidant_name: String,
    demarches: String,
    created: String,
    expires: String,
    reference: String,
    check_code: String,
    space_url: String,
}

async fn attestation(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
) -> Result<HttpResponse, FrontError> {
    let then = format!("/mandats/{id}/attestation");
    let s = match session::require(&req, &app, &then).await? {
        Required::Active { session, .. } => session,
        Required::LoginFirst(login) => return Ok(login),
    };
    let id = id.into_inner();
    let org = s.organisation_id.clone();
    let found = app
        .read(move |store| {
            let Some(m) = store.mandate(&id)?.filter(|m| m.organisation_id == org) else {
                return Ok(None);
            };
            let usager = store.usager(&m.usager_id)?;
            let aidant = store.aidant(&m.created_by)?;
            let organisation = store.organisation(&m.organisation_id)?;
            Ok::<_, mandate_store::StoreError>(Some((m, usager, aidant, organisation)))
        })
        .await?;
    let Some((m, Some(usager), Some(aidant), Some(organisation))) = found else {
        return Err(ErrorPage::forbidden("Ce mandat n'a pas été donné à votre structure.").into());
    };
    let demarches: Vec<&str> = m.demarches.iter().map(|d| d.title_fr()).collect();
    // A short code over what the attestation states: a reader compares it with the one the
    // service shows for this reference.
    let stated = format!(
        "{}|{}|{}|{}|{}|{}",
        m.id,
        usager.id,
        organisation.siret,
        demarches.join(","),
        m.created_at,
        m.expires_at
    );
    let check_code = hex(&digest(&SHA256, stated.as_bytes()).as_ref()[..8]);
    let page = AttestationPage {
        usager_name: usager.identity.full_name(),
        born: born(&usager.identity),
        organisation_name: organisation.name,
        siret: organisation.siret,
        aidant_name: aidant.full_name(),
        demarches: demarches.join(", "),
        created: french_date(m.created_at),
        expires: french_date(m.expires_at),
        reference: m.id,
        check_code,
        space_url: format!("{}/mon-espace", app.issuer()),
    };
    Ok(html(StatusCode::OK, page.render()))
}
