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
use mandate_store::{Demarche, Identity, IdentityProblem, Level};
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use super::franceconnect::{self, Purpose};
use super::french::{born, french_date, paris_day};
use super::{DemarcheView, FieldError};
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
        .route(
            "/mandats/recapitulatif/{id}",
            web::get().to(super::recap::show),
        )
        .route(
            "/mandats/recapitulatif/{id}",
            web::post().to(super::recap::confirm),
        )
        .route(
            "/mandats/recapitulatif/{id}/refus",
            web::post().to(super::recap::refuse),
        )
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
pub(super) struct Pending {
    pub aidant_id: String,
    pub organisation_id: String,
    pub browser: String,
    pub demarches: Vec<Demarche>,
    pub expires_at: i64,
    pub usager: Option<FranceConnectUsager>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FranceConnectUsager {
    pub sub: String,
    pub identity: Identity,
    pub acr: Option<Level>,
    pub auth_time: Option<i64>,
}

pub(super) fn pending_key(id: &str) -> String {
    Space::MandateCreation.key(id)
}

fn ttl(app: &App) -> Duration {
    app.config.session.interaction_ttl
}

#[derive(Template)]
#[template(path = "mandate_new.html")]
struct NewPage {
    /// The aidant's session CSRF token, for « Se déconnecter ».
    logout_csrf: String,
    aidant_name: String,
    organisation_name: String,
    csrf: String,
    /// Each démarche, and whether it is ticked (what was typed is kept after an error).
    demarches: Vec<(DemarcheView, bool)>,
    durations: Vec<(i64, &'static str)>,
    duree: String,
    jusquau: String,
    /// Bounds of the date field (YYYY-MM-DD).
    tomorrow: String,
    last_day: String,
    last_day_fr: String,
    errors: Vec<FieldError>,
}

/// What the aidant chose on the new-mandate form.
#[derive(Default)]
struct Chosen {
    demarches: Vec<Demarche>,
    duree: String,
    jusquau: String,
}

/// An aidant whose login is below `mandates.min_aidant_acr` creates no mandate: said on a
/// page, before anything is asked of the person.
pub(super) fn strong_enough(app: &App, s: &AidantSession) -> Result<(), ErrorPage> {
    match app.config.mandates.min_aidant_acr {
        Some(min) if s.acr.is_none_or(|reached| reached < min) => Err(ErrorPage::forbidden(
            "Pour créer un mandat, votre structure demande une identification plus forte que celle utilisée pour vous connecter. Déconnectez-vous, puis reconnectez-vous avec votre moyen d'identification renforcé (par exemple votre carte à code personnel).",
        )),
        _ => Ok(()),
    }
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

fn new_page(
    app: &App,
    s: &AidantSession,
    chosen: &Chosen,
    errors: Vec<FieldError>,
) -> HttpResponse {
    let now = app.now();
    let last = paris_day(now + app.config.mandates.max_days as i64 * 86_400);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let page = NewPage {
        logout_csrf: s.csrf.clone(),
        aidant_name: s.aidant_name.clone(),
        organisation_name: s.organisation_name.clone(),
        csrf: s.csrf.clone(),
        demarches: Demarche::ALL
            .iter()
            .map(|d| (DemarcheView::from(d), chosen.demarches.contains(d)))
            .collect(),
        durations: durations(app).collect(),
        duree: chosen.duree.clone(),
        jusquau: chosen.jusquau.clone(),
        tomorrow: paris_day(now + 86_400).format("%Y-%m-%d").to_string(),
        last_day: last.format("%Y-%m-%d").to_string(),
        last_day_fr: last.format("%d/%m/%Y").to_string(),
        errors,
    };
    html(status, page.render())
}

#[derive(Deserialize)]
struct NewQuery {
    /// A running mandate of the structure to change (« Ajouter une démarche »): the form
    /// starts from its démarches and its end day; the person consents again to the new one.
    depuis: Option<String>,
}

async fn new_form(
    req: HttpRequest,
    app: AppData,
    q: web::Query<NewQuery>,
) -> Result<HttpResponse, FrontError> {
    let then = match &q.depuis {
        Some(id) => format!(
            "/mandats/nouveau?depuis={}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        ),
        None => "/mandats/nouveau".to_string(),
    };
    let s = match session::require(&req, &app, &then).await? {
        Required::Active { session, .. } => session,
        Required::LoginFirst(login) => return Ok(login),
    };
    strong_enough(&app, &s)?;
    let chosen = match q.into_inner().depuis {
        Some(id) => from_running(&app, &s, id).await?,
        None => Chosen::default(),
    };
    Ok(new_page(&app, &s, &chosen, Vec::new()))
}

/// The choices of a running mandate of the aidant's structure (one they may use), if it is
/// one; else nothing chosen.
async fn from_running(app: &App, s: &AidantSession, id: String) -> Result<Chosen, FrontError> {
    let (org, aidant, now) = (s.organisation_id.clone(), s.aidant_id.clone(), app.now());
    let found = app
        .read(move |store| {
            let bound = store
                .organisation(&org)?
                .is_some_and(|o| o.mandates_bound_to_creator);
            Ok::<_, mandate_store::StoreError>(store.mandate(&id)?.filter(|m| {
                m.organisation_id == org && m.is_active(now) && (!bound || m.created_by == aidant)
            }))
        })
        .await?;
    let Some(m) = found else {
        return Ok(Chosen::default());
    };
    let day = paris_day(m.expires_at).format("%Y-%m-%d").to_string();
    let keeps_day = until_day(app, &day, app.now()).is_some();
    Ok(Chosen {
        demarches: m.demarches,
        duree: if keeps_day {
            "date".into()
        } else {
            String::new()
        },
        jusquau: if keeps_day { day } else { String::new() },
    })
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
    let mut chosen = Chosen::default();
    let mut unknown = false;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "demarches" => match v.parse::<Demarche>() {
                Ok(d) if !chosen.demarches.contains(&d) => chosen.demarches.push(d),
                Ok(_) => {}
                Err(_) => unknown = true,
            },
            "duree" => chosen.duree = v.into_owned(),
            "jusquau" => chosen.jusquau = v.into_owned(),
            _ => {}
        }
    }
    if s.csrf.is_empty() || !tokens::same(&csrf, &s.csrf) {
        return Err(ErrorPage::expired().into());
    }
    strong_enough(&app, &s)?;
    let now = app.now();
    let mut errors = Vec::new();
    if unknown {
        errors.push(FieldError::new("demarche-papiers", "Démarche inconnue."));
    } else if chosen.demarches.is_empty() {
        errors.push(FieldError::new(
            "demarche-papiers",
            "Choisissez au moins une démarche.",
        ));
    }
    let expires_at = if chosen.duree == "date" {
        until_day(&app, &chosen.jusquau, now)
    } else {
        durations(&app)
            .find(|(d, _)| d.to_string() == chosen.duree)
            .map(|(days, _)| now + days * 86_400)
    };
    match (&expires_at, chosen.duree.as_str()) {
        (Some(_), _) => {}
        (None, "date") => errors.push(FieldError::new(
            "jusquau",
            format!(
                "Choisissez une date de fin entre demain et dans {} jours au plus.",
                app.config.mandates.max_days
            ),
        )),
        _ => errors.push(FieldError::new("duree-1", "Choisissez une durée.")),
    }
    let (Some(expires_at), true) = (expires_at, errors.is_empty()) else {
        return Ok(new_page(&app, &s, &chosen, errors));
    };
    let demarches = chosen.demarches;
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
#[template(path = "attestation.html")]
struct AttestationPage {
    /// The aidant's session CSRF token, for « Se déconnecter ».
    logout_csrf: String,
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
        logout_csrf: s.csrf.clone(),
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
