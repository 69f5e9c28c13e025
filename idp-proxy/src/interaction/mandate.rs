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
use mandate_store::{Demarche, GiveMandate, Identity};
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use super::page::{html, ErrorPage};
use super::{born, french_date, login, see_other, session, store_failure};
use crate::ephemeral::EphemeralJson;
use crate::keys::hex;
use crate::provider::error::FrontError;
use crate::provider::records::AidantSession;
use crate::provider::{cookie_value, tokens, App, AppData, BROWSER_COOKIE};
use crate::upstream::{Callback, PendingLogin, UpstreamError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/mandats/nouveau", web::get().to(new_form))
        .route("/mandats/nouveau", web::post().to(new_submit))
        .route(
            "/franceconnect/callback",
            web::get().to(franceconnect_callback),
        )
        .route(
            "/franceconnect/logout-callback",
            web::get().to(franceconnect_logged_out),
        )
        .route("/mandats/recapitulatif/{id}", web::get().to(recap))
        .route("/mandats/recapitulatif/{id}", web::post().to(confirm))
        .route("/mandats/{id}/attestation", web::get().to(attestation));
}

/// Durations offered, in days (those of the field: one day, a month, six months, a year).
const DURATIONS: [i64; 4] = [1, 31, 182, 365];

/// A mandate being given. Key: `mc:{id}`; ids only until FranceConnect answers.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    aidant_id: String,
    organisation_id: String,
    browser: String,
    demarches: Vec<Demarche>,
    days: i64,
    usager: Option<FranceConnectUsager>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FranceConnectUsager {
    sub: String,
    identity: Identity,
    acr: Option<String>,
    auth_time: Option<i64>,
}

/// A FranceConnect login in progress. Key: `fc:{state}`.
#[derive(Debug, Serialize, Deserialize)]
struct FranceConnectLogin {
    pending_id: String,
    browser: String,
    pending: PendingLogin,
}

fn pending_key(id: &str) -> String {
    format!("mc:{id}")
}

fn ttl(app: &App) -> Duration {
    Duration::from_secs(app.config.session.interaction_ttl_secs)
}

/// The aidant's active session in this browser, or the response that sends them to log in
/// first and come back to `then`.
async fn aidant(
    req: &HttpRequest,
    app: &App,
    then: &str,
) -> Result<Result<(String, AidantSession), HttpResponse>, FrontError> {
    let existing = cookie_value(req, BROWSER_COOKIE);
    let browser = existing.clone().unwrap_or_else(tokens::random);
    let now = app.now();
    match session::current(req, app, &browser).await? {
        Some((cookie, mut s)) if session::active(app, &s, now) => {
            s.last_seen = now;
            session::save(app, &cookie, &s).await?;
            Ok(Ok((browser, s)))
        }
        stale => {
            let url = login::start(app, then, &browser, stale.is_some()).await?;
            let mut res = see_other(url);
            if existing.is_none() {
                let _ = res.add_cookie(&app.cookie(BROWSER_COOKIE, browser));
            }
            Ok(Err(res))
        }
    }
}

struct DemarcheView {
    key: &'static str,
    title: &'static str,
    examples: &'static str,
}

#[derive(Template)]
#[template(path = "mandate_new.html")]
struct NewPage {
    aidant_name: String,
    organisation_name: String,
    csrf: String,
    demarches: Vec<DemarcheView>,
    error: Option<String>,
}

fn new_page(s: &AidantSession, error: Option<&str>) -> HttpResponse {
    let page = NewPage {
        aidant_name: s.aidant_name.clone(),
        organisation_name: s.organisation_name.clone(),
        csrf: s.csrf.clone(),
        demarches: Demarche::ALL
            .iter()
            .map(|d| DemarcheView {
                key: d.as_str(),
                title: d.title_fr(),
                examples: d.examples_fr(),
            })
            .collect(),
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
    Ok(match aidant(&req, &app, "/mandats/nouveau").await? {
        Ok((_, s)) => new_page(&s, None),
        Err(login) => login,
    })
}

async fn new_submit(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, FrontError> {
    let (browser, s) = match aidant(&req, &app, "/mandats/nouveau").await? {
        Ok(found) => found,
        Err(login) => return Ok(login),
    };
    let mut csrf = String::new();
    let mut demarches = Vec::new();
    let mut days = None;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "demarches" => match v.parse::<Demarche>() {
                Ok(d) if !demarches.contains(&d) => demarches.push(d),
                Ok(_) => {}
                Err(_) => return Ok(new_page(&s, Some("Démarche inconnue."))),
            },
            "duree" => days = v.parse::<i64>().ok().filter(|d| DURATIONS.contains(d)),
            _ => {}
        }
    }
    if s.csrf.is_empty() || !tokens::same(&csrf, &s.csrf) {
        return Err(ErrorPage::expired().into());
    }
    if demarches.is_empty() {
        return Ok(new_page(&s, Some("Choisissez au moins une démarche.")));
    }
    let Some(days) = days else {
        return Ok(new_page(&s, Some("Choisissez une durée.")));
    };
    let Some(franceconnect) = app.franceconnect.as_ref() else {
        return Err(ErrorPage::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "FranceConnect n'est pas disponible",
            "Ce service n'est pas relié à FranceConnect : un mandat ne peut pas être créé ici.",
            "Contactez le responsable technique de votre structure.",
        )
        .into());
    };
    let pending_id = tokens::random();
    let pending = Pending {
        aidant_id: s.aidant_id.clone(),
        organisation_id: s.organisation_id.clone(),
        browser: browser.clone(),
        demarches,
        days,
        usager: None,
    };
    app.ephemeral
        .put_json(&pending_key(&pending_id), &pending, ttl(&app))
        .await?;
    let (url, state, login) = franceconnect
        .login_url(true)
        .await
        .map_err(|e| franceconnect_page(&e))?;
    let record = FranceConnectLogin {
        pending_id,
        browser,
        pending: login,
    };
    app.ephemeral
        .put_json(&format!("fc:{state}"), &record, ttl(&app))
        .await?;
    Ok(see_other(url))
}

fn franceconnect_page(e: &UpstreamError) -> ErrorPage {
    match e {
        UpstreamError::Unavailable(detail) => {
            tracing::warn!(%detail, "FranceConnect unavailable");
            ErrorPage::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "FranceConnect ne répond pas",
                "La connexion avec FranceConnect est impossible pour le moment. Aucun mandat n'a été créé.",
                "Réessayez dans quelques minutes.",
            )
        }
        UpstreamError::Denied(_) => ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Connexion FranceConnect annulée",
            "La personne n'a pas terminé sa connexion avec FranceConnect. Aucun mandat n'a été créé.",
            "Vous pouvez recommencer depuis « Nouveau mandat ».",
        ),
        UpstreamError::Rejected(detail) => {
            tracing::warn!(%detail, "FranceConnect answer rejected");
            ErrorPage::bad_request(
                "La réponse de FranceConnect n'a pas pu être vérifiée. Aucun mandat n'a été créé.",
            )
        }
    }
}

/// The identité pivot from verified userinfo claims (or the ID token's, if no userinfo).
fn identity_from(claims: &serde_json::Value) -> Option<Identity> {
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Some(Identity {
        given_name: text("given_name")?,
        family_name: text("family_name")?,
        birthdate: text("birthdate")?,
        gender: text("gender")?,
        birthplace: text("birthplace").filter(|b| !b.is_empty()),
        birthcountry: text("birthcountry")?,
        email: text("email"),
        preferred_username: text("preferred_username"),
    })
}

async fn franceconnect_callback(
    req: HttpRequest,
    app: AppData,
    query: web::Query<Callback>,
) -> Result<HttpResponse, FrontError> {
    let login: FranceConnectLogin =
        login::take_login(&req, &app, "fc", &query, |l: &FranceConnectLogin| {
            &l.browser
        })
        .await?;
    let key = pending_key(&login.pending_id);
    let mut pending: Pending = app
        .ephemeral
        .get_json(&key)
        .await?
        .ok_or_else(ErrorPage::expired)?;
    let franceconnect = app
        .franceconnect
        .as_ref()
        .ok_or_else(ErrorPage::unavailable)?;
    let verified = franceconnect
        .finish(&query, login.pending, &app.keys)
        .await
        .map_err(|e| franceconnect_page(&e))?;
    let identity = verified
        .userinfo
        .as_ref()
        .and_then(identity_from)
        .ok_or_else(|| {
            ErrorPage::bad_request(
                "FranceConnect n'a pas transmis l'identité complète de la personne. Aucun mandat n'a été créé.",
            )
        })?;
    pending.usager = Some(FranceConnectUsager {
        sub: verified.subject,
        identity,
        acr: verified.acr,
        auth_time: verified.auth_time,
    });
    app.ephemeral.put_json(&key, &pending, ttl(&app)).await?;
    // The usager's FranceConnect session ends at once: the device is the aidant's.
    let back = format!("{}/franceconnect/logout-callback", app.issuer());
    let recap = format!("/mandats/recapitulatif/{}", login.pending_id);
    Ok(see_other(
        franceconnect
            .logout_url(&verified.id_token, &back, &login.pending_id)
            .await
            .unwrap_or(recap),
    ))
}

#[derive(Deserialize)]
struct LoggedOut {
    state: Option<String>,
}

async fn franceconnect_logged_out(q: web::Query<LoggedOut>) -> Result<HttpResponse, FrontError> {
    let id = q
        .state
        .as_deref()
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(ErrorPage::expired)?;
    Ok(see_other(format!("/mandats/recapitulatif/{id}")))
}

fn expires_at(now: i64, days: i64) -> i64 {
    now + days * 86_400
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
    let (browser, s) = match aidant(&req, &app, &then).await? {
        Ok(found) => found,
        Err(login) => return Ok(login),
    };
    let pending = pending_of(&app, &id, &browser, &s).await?;
    let Some(usager) = &pending.usager else {
        return Err(ErrorPage::expired().into());
    };
    let page = RecapPage {
        id: id.into_inner(),
        csrf: s.csrf.clone(),
        usager_name: format!(
            "{} {}",
            usager.identity.given_name, usager.identity.family_name
        ),
        born: born(&usager.identity),
        organisation_name: s.organisation_name.clone(),
        demarches: pending.demarches.iter().map(|d| d.title_fr()).collect(),
        expires: french_date(expires_at(app.now(), pending.days)),
    };
    Ok(html(StatusCode::OK, page.render()))
}

#[derive(Deserialize)]
struct ConfirmForm {
    csrf: String,
    consent: Option<String>,
}

async fn confirm(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, FrontError> {
    let then = format!("/mandats/recapitulatif/{id}");
    let (browser, s) = match aidant(&req, &app, &then).await? {
        Ok(found) => found,
        Err(login) => return Ok(login),
    };
    if s.csrf.is_empty() || !tokens::same(&form.csrf, &s.csrf) {
        return Err(ErrorPage::expired().into());
    }
    pending_of(&app, &id, &browser, &s).await?;
    if form.consent.as_deref() != Some("yes") {
        return Ok(see_other(then));
    }
    // Single use: one confirmation, one mandate.
    let pending: Pending = app
        .ephemeral
        .take_json(&pending_key(&id))
        .await?
        .ok_or_else(ErrorPage::expired)?;
    let Some(usager) = pending.usager else {
        return Err(ErrorPage::expired().into());
    };
    let now = app.now();
    let give = GiveMandate {
        franceconnect_sub: usager.sub,
        identity: usager.identity,
        organisation_id: pending.organisation_id,
        aidant_id: pending.aidant_id,
        demarches: pending.demarches,
        expires_at: expires_at(now, pending.days),
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
        .await
        .map_err(store_failure)?
        .map_err(store_failure)?;
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
}

async fn attestation(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
) -> Result<HttpResponse, FrontError> {
    let then = format!("/mandats/{id}/attestation");
    let (_, s) = match aidant(&req, &app, &then).await? {
        Ok(found) => found,
        Err(login) => return Ok(login),
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
        .await
        .map_err(store_failure)?
        .map_err(store_failure)?;
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
        usager_name: format!(
            "{} {}",
            usager.identity.given_name, usager.identity.family_name
        ),
        born: born(&usager.identity),
        organisation_name: organisation.name,
        siret: organisation.siret,
        aidant_name: format!("{} {}", aidant.given_name, aidant.family_name),
        demarches: demarches.join(", "),
        created: french_date(m.created_at),
        expires: french_date(m.expires_at),
        reference: m.id,
        check_code,
    };
    Ok(html(StatusCode::OK, page.render()))
}
