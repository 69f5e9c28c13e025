//! The few pages the protocol needs: the aidant's choice of usager and démarche (a
//! CSRF-protected form that works without JavaScript), the upstream login callback, and
//! error pages. Then the mandate is re-checked and the use journaled in one transaction, and
//! only then is a code minted.

pub mod abandon;
pub mod aidant;
pub mod franceconnect;
pub mod history;
pub mod login;
pub mod mandate;
pub mod page;
pub mod session;
pub mod usager;

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use mandate_store::{Demarche, Refusal, UsableMandate, UseError};
use serde::Deserialize;

use crate::ephemeral::EphemeralJson;
use crate::provider::checks::acr;
use crate::provider::error::{FrontError, ReturnTo};
use crate::provider::records::{
    code_key, interaction_key, interaction_storage_ttl, AidantSession, CodeGrant, Delegation,
    Interaction, LastChoice,
};
use crate::provider::{cookie_value, tokens, App, AppData, BROWSER_COOKIE};
use abandon::Abandon;
use page::{html, ErrorPage, WayBack};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/interaction/{id}", web::get().to(show))
        .route("/interaction/{id}", web::post().to(choose))
        .route("/login/callback", web::get().to(login::callback))
        .configure(abandon::routes)
        .configure(mandate::routes)
        .configure(franceconnect::routes)
        .configure(usager::routes)
        .configure(aidant::routes);
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage;

async fn home() -> HttpResponse {
    html(StatusCode::OK, HomePage.render())
}

/// A démarche as the pages show it: its key, French title and examples.
pub(crate) struct DemarcheView {
    key: &'static str,
    title: &'static str,
    examples: &'static str,
}

impl From<&Demarche> for DemarcheView {
    fn from(d: &Demarche) -> Self {
        DemarcheView {
            key: d.as_str(),
            title: d.title_fr(),
            examples: d.examples_fr(),
        }
    }
}

struct UsagerView {
    mandate_id: String,
    name: String,
    born: String,
    expires: String,
    demarches: Vec<DemarcheView>,
}

#[derive(Template)]
#[template(path = "choose.html")]
struct ChoosePage {
    id: String,
    csrf: String,
    aidant_name: String,
    organisation_name: String,
    client_name: String,
    usagers: Vec<UsagerView>,
    error: Option<String>,
    way_back: WayBack,
}

/// A date as people in France read it (Paris time): "24/08/2026".
pub(crate) fn french_date(ts: i64) -> String {
    paris(ts, "%d/%m/%Y")
}

/// A date and time, Paris time: "24/08/2026 à 14:05".
pub(crate) fn french_datetime(ts: i64) -> String {
    paris(ts, "%d/%m/%Y à %H:%M")
}

/// The day it is in Paris at `ts`.
pub(crate) fn paris_day(ts: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

fn paris(ts: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| {
            d.with_timezone(&chrono_tz::Europe::Paris)
                .format(format)
                .to_string()
        })
        .unwrap_or_default()
}

/// "né le 24/08/1962" / "née le …", from the identité pivot; a presumed date as it is
/// known: "né en août 1962" (`1962-08-00`), "né en 1962" (`1962-00-00`).
pub(crate) fn born(identity: &mandate_store::Identity) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let d = &identity.birthdate;
    let (year, month, day) = (d.get(0..4), d.get(5..7), d.get(8..10));
    let month_name = month
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.checked_sub(1)?));
    let date = match (year, month_name, day) {
        (Some(y), None, Some("00")) => format!("en {y}"),
        (Some(y), Some(m), Some("00")) => format!("en {m} {y}"),
        (Some(y), Some(_), Some(day)) => format!("le {day}/{}/{y}", month.unwrap_or_default()),
        _ => format!("le {d}"),
    };
    let born = match identity.gender.as_str() {
        "female" => "née",
        "male" => "né",
        _ => "né(e)",
    };
    format!("{born} {date}")
}

fn view(m: UsableMandate) -> UsagerView {
    let born = born(&m.identity);
    UsagerView {
        name: m.identity.full_name(),
        born,
        expires: french_date(m.expires_at),
        demarches: m.demarches.iter().map(DemarcheView::from).collect(),
        mandate_id: m.mandate_id,
    }
}

/// The short-lived record `key` names (from a URL id), if this browser started it.
pub(crate) async fn get_bound<T: serde::de::DeserializeOwned>(
    app: &App,
    key: &str,
    browser: &str,
    browser_of: impl Fn(&T) -> &String,
) -> Result<T, FrontError> {
    if key.len() > 80 {
        return Err(ErrorPage::expired().into());
    }
    let record: T = app
        .ephemeral
        .get_json(key)
        .await?
        .ok_or_else(ErrorPage::expired)?;
    if !tokens::same(browser, browser_of(&record)) {
        return Err(ErrorPage::expired().into());
    }
    Ok(record)
}

/// The interaction of this URL, in this browser, with a session fresh enough for it; or
/// the place to send the browser instead (upstream login).
async fn load(
    req: &HttpRequest,
    app: &App,
    id: &str,
) -> Result<Result<(Interaction, String, AidantSession), String>, FrontError> {
    let browser = cookie_value(req, BROWSER_COOKIE).unwrap_or_default();
    let ix: Interaction = get_bound(app, &interaction_key(id), &browser, |i: &Interaction| {
        &i.browser
    })
    .await?;
    let now = app.now();
    let back = |reason| abandon::way_back(app, id, &ix, reason);
    if ix.expired(&app.config.session, now) {
        return Err(ErrorPage::expired()
            .with_way_back(back(Abandon::Expired))
            .into());
    }
    match session::current(req, app, &browser).await? {
        Some((cookie, mut s)) if session::satisfies(app, &s, &ix, now) => {
            let limit = crate::provider::limits::Limit::Aidant;
            if let Some(after) = crate::provider::limits::over(app, limit, &s.aidant_id).await? {
                return Err(ErrorPage::too_many(after).into());
            }
            session::keep(app, &cookie, &mut s, now)
                .await
                .map_err(|e| e.with_way_back(back(Abandon::UnknownAidant)))?;
            Ok(Ok((ix, cookie, s)))
        }
        stale => Ok(Err(login::start(
            app,
            &format!("/interaction/{id}"),
            &browser,
            ix.force_login || stale.is_some(),
            ix.login_hint.as_deref(),
        )
        .await
        .map_err(|e| e.with_way_back(back(Abandon::UpstreamUnavailable)))?)),
    }
}

pub(crate) fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The form that ends a mandate (aidant's or usager's page): a confirmation box.
#[derive(Deserialize)]
pub(crate) struct EndForm {
    csrf: String,
    confirm: Option<String>,
}

/// A page shown again after a mandate was ended (`?termine=1`).
#[derive(Deserialize)]
pub(crate) struct EndedQuery {
    termine: Option<String>,
}

impl EndedQuery {
    fn notice(&self) -> Option<&'static str> {
        self.termine
            .as_ref()
            .map(|_| "Le mandat a pris fin. Plus aucun aidant ne peut l'utiliser.")
    }
}

/// A revocation's outcome as a page: refused (not theirs, unknown) or failed.
fn ended(
    result: Result<mandate_store::Mandate, mandate_store::StoreError>,
    not_theirs: &str,
) -> Result<(), FrontError> {
    use mandate_store::StoreError;
    match result {
        Ok(_) => Ok(()),
        Err(StoreError::NotAllowed(_) | StoreError::NotFound { .. }) => {
            Err(ErrorPage::forbidden(not_theirs).into())
        }
        Err(e) => Err(store_failure(e)),
    }
}

pub(crate) fn store_failure(e: impl std::fmt::Display) -> FrontError {
    tracing::error!(error = %e, "mandate store failure");
    ErrorPage::unavailable().into()
}

async fn render_choice(
    app: &App,
    id: String,
    ix: &Interaction,
    s: &AidantSession,
    error: Option<String>,
) -> Result<HttpResponse, FrontError> {
    let (org, aidant) = (s.organisation_id.clone(), s.aidant_id.clone());
    let (allowed, now) = (ix.allowed.clone(), app.now());
    let mandates = app
        .read(move |store| store.usable_mandates(&org, &aidant, &allowed, now))
        .await
        .map_err(store_failure)?
        .map_err(store_failure)?;
    let client_name = history::service_name(app, &ix.client_id);
    let reason = if mandates.is_empty() {
        Abandon::Nobody
    } else {
        Abandon::Cancelled
    };
    let page = ChoosePage {
        way_back: abandon::way_back(app, &id, ix, reason),
        id,
        csrf: ix.csrf.clone(),
        aidant_name: s.aidant_name.clone(),
        organisation_name: s.organisation_name.clone(),
        client_name,
        usagers: mandates.into_iter().map(view).collect(),
        error: error.clone(),
    };
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    Ok(html(status, page.render()))
}

pub async fn show(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
) -> Result<HttpResponse, FrontError> {
    let id = id.into_inner();
    match load(&req, &app, &id).await? {
        Err(login_url) => Ok(see_other(login_url)),
        Ok((ix, _, s)) => render_choice(&app, id, &ix, &s, None).await,
    }
}

#[derive(Deserialize)]
pub struct ChoiceForm {
    csrf: String,
    choice: Option<String>,
    certify: Option<String>,
}

fn refusal_fr(r: &Refusal) -> &'static str {
    match r {
        Refusal::Revoked => {
            "Ce mandat a été révoqué : il ne permet plus d'agir pour cette personne."
        }
        Refusal::Expired => "Ce mandat a expiré : il ne permet plus d'agir pour cette personne.",
        Refusal::DemarcheNotCovered => "Ce mandat ne couvre pas cette démarche.",
        Refusal::OtherOrganisation | Refusal::UnknownMandate => {
            "Ce mandat n'a pas été donné à votre structure."
        }
        Refusal::AidantInactive | Refusal::AidantNotMember | Refusal::OrganisationInactive => {
            "Votre compte d'aidant ne permet pas d'utiliser ce mandat."
        }
        Refusal::NotCreator => {
            "Dans votre structure, seul l'aidant qui a créé ce mandat peut l'utiliser."
        }
        Refusal::ConsentLevel => {
            "Ce service demande que la personne ait donné son mandat avec une identification plus forte. Créez un nouveau mandat avec elle."
        }
    }
}

pub async fn choose(
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<ChoiceForm>,
) -> Result<HttpResponse, FrontError> {
    let id = id.into_inner();
    let (ix, cookie, mut s) = match load(&req, &app, &id).await? {
        Err(login_url) => return Ok(see_other(login_url)),
        Ok(found) => found,
    };
    if !tokens::same(&form.csrf, &ix.csrf) {
        return Err(ErrorPage::expired().into());
    }
    if form.certify.as_deref() != Some("yes") {
        let msg = "Cochez la case pour certifier que la personne est d'accord.".to_string();
        return render_choice(&app, id, &ix, &s, Some(msg)).await;
    }
    let parsed = form.choice.as_deref().and_then(|c| {
        let (mandate, demarche) = c.split_once(':')?;
        Some((mandate.to_string(), demarche.parse::<Demarche>().ok()?))
    });
    let Some((mandate_id, demarche)) = parsed else {
        let msg = "Choisissez une personne et une démarche.".to_string();
        return render_choice(&app, id, &ix, &s, Some(msg)).await;
    };
    if !ix.allowed.contains(&demarche) {
        let msg = "Ce service ne propose pas cette démarche.".to_string();
        return render_choice(&app, id, &ix, &s, Some(msg)).await;
    }
    // Single use: a double submission cannot mint two codes.
    let ix_key = interaction_key(&id);
    let Some(ix) = app.ephemeral.take_json::<Interaction>(&ix_key).await? else {
        return Err(ErrorPage::expired().into());
    };
    match issue_code(&app, &ix, &s, &mandate_id, demarche, true).await {
        Ok(Ok((res, usager_id))) => {
            // Remembered for a later `prompt=none` from this client in this session.
            s.remember(LastChoice {
                client_id: ix.client_id.clone(),
                mandate_id,
                demarche,
                usager_id,
            });
            // The use is journaled and its code stored: the browser must get the code even if
            // the remembered choice (a convenience for `prompt=none`) cannot be saved.
            if let Err(e) = session::save(&app, &cookie, &s).await {
                tracing::warn!(error = %e, "choice not remembered in the session");
            }
            Ok(res)
        }
        Ok(Err(r)) => {
            tracing::info!(reason = r.code(), "mandate use refused");
            crate::metrics::refused(r.code());
            let ttl = interaction_storage_ttl(&app.config.session);
            app.ephemeral.put_json(&ix_key, &ix, ttl).await?;
            render_choice(&app, id, &ix, &s, Some(refusal_fr(&r).to_string())).await
        }
        Err(e) => {
            // Put the interaction back so the aidant can retry: nothing was journaled.
            let ttl = interaction_storage_ttl(&app.config.session);
            let _ = app.ephemeral.put_json(&ix_key, &ix, ttl).await;
            Err(e)
        }
    }
}

/// The mandate checked, a code stored, then the use journaled (re-checked in the same
/// transaction); or, `journal_now` false, only checked: the token endpoint journals it when
/// the client redeems the code. Then the browser is sent back to the client with the code:
/// the response, and the usager acted for. A refusal or a failure leaves nothing journaled
/// and no code anyone knows.
pub(crate) async fn issue_code(
    app: &App,
    ix: &Interaction,
    s: &AidantSession,
    mandate_id: &str,
    demarche: Demarche,
    journal_now: bool,
) -> Result<Result<(HttpResponse, String), Refusal>, FrontError> {
    let session_level = s.acr.as_deref().and_then(acr::level).unwrap_or(0);
    let min = ix.acr_min.unwrap_or(1);
    let unmet = |what: &str| FrontError::Redirect {
        to: return_to(app, ix),
        error: acr::unmet(&format!(
            "{what} reached no {} or higher",
            acr::name(min).unwrap_or_default()
        )),
    };
    let client = app
        .config
        .client(&ix.client_id)
        .ok_or_else(|| unmet("the request"))?;
    if session_level < min {
        return Err(unmet("the aidant's login"));
    }
    let mut delegation = Delegation {
        client_id: ix.client_id.clone(),
        scopes: ix.scopes.clone(),
        mandate_id: mandate_id.to_string(),
        aidant_id: s.aidant_id.clone(),
        organisation_id: s.organisation_id.clone(),
        demarche,
        vocabulary: ix.vocabulary,
        acr: String::new(),
        auth_time: s.auth_time,
        sid: s.sid.clone(),
        claims: ix.claims.clone(),
        issued_at: 0,
    };
    // A mandate is always given after the usager's FranceConnect login: one without a recorded
    // level (imported from an older system) counts as eidas1, and is checked only above it.
    let use_ = delegation.as_use((min > 1).then(|| acr::at_least(min)));
    let now = app.now();
    let checked = {
        let use_ = use_.clone();
        app.read(move |store| store.check_use(&use_, now)).await
    }
    .map_err(store_failure)?;
    let grant = match checked {
        Ok(g) => g,
        Err(UseError::Refused(r)) => return Ok(Err(r)),
        Err(UseError::Store(e)) => return Err(store_failure(e)),
    };
    // What was really reached: the lower of the aidant's login and the usager's consent.
    let consent_level = grant
        .consent_acr
        .as_deref()
        .and_then(acr::level)
        .unwrap_or(1);
    delegation.acr = acr::stated(client, session_level.min(consent_level), min)
        .ok_or_else(|| unmet("the mandate's consent"))?
        .to_string();
    let code = tokens::random();
    let code_grant = CodeGrant {
        delegation,
        redirect_uri: ix.redirect_uri.clone(),
        code_challenge: ix.code_challenge.clone(),
        nonce: ix.nonce.clone(),
        journal_at_token: !journal_now,
    };
    let ttl = Duration::from_secs(app.config.tokens.code_ttl_secs);
    let key = code_key(&app.keys().access_token_for(&code));
    // The code is stored before the use is journaled, and shown to nobody until the journal
    // entry is committed: a store failure on either side leaves no journal entry without its
    // code, and no code that could be redeemed without its entry.
    app.ephemeral.put_json(&key, &code_grant, ttl).await?;
    if journal_now {
        let recorded = app
            .write(move |store| store.record_use(&use_, now))
            .await
            .map_err(store_failure);
        let refused = match recorded {
            Ok(Ok(_)) => None,
            Ok(Err(UseError::Refused(r))) => Some(Ok(Err(r))),
            Ok(Err(UseError::Store(e))) => Some(Err(store_failure(e))),
            Err(e) => Some(Err(e)),
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
    Ok(Ok((see_other(to.url(&[("code", &code)])), grant.usager_id)))
}

/// Where answers to this interaction's client go.
pub(crate) fn return_to(app: &App, ix: &Interaction) -> ReturnTo {
    ReturnTo {
        redirect_uri: ix.redirect_uri.clone(),
        state: ix.state.clone(),
        issuer: app.issuer().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::born;

    fn person(birthdate: &str, gender: &str) -> mandate_store::Identity {
        mandate_store::Identity {
            given_name: "Moussa".into(),
            family_name: "KEITA".into(),
            birthdate: birthdate.into(),
            gender: gender.into(),
            birthplace: None,
            birthcountry: "99335".into(),
            email: None,
            preferred_username: None,
        }
    }

    #[test]
    fn a_birth_date_reads_as_far_as_it_is_known() {
        assert_eq!(born(&person("1962-08-24", "male")), "né le 24/08/1962");
        assert_eq!(born(&person("1951-02-03", "female")), "née le 03/02/1951");
        // Presumed dates, as FranceConnect's identity providers give them.
        assert_eq!(born(&person("1962-08-00", "female")), "née en août 1962");
        assert_eq!(born(&person("1958-00-00", "male")), "né en 1958");
        assert_eq!(
            born(&person("1990-01-15", "unspecified")),
            "né(e) le 15/01/1990"
        );
    }
}
