//! The few pages the protocol needs: the aidant's choice of usager and démarche (a
//! CSRF-protected form that works without JavaScript), the upstream login callback, and
//! error pages. Then the mandate is re-checked and the use journaled in one transaction, and
//! only then is a code minted.

pub mod abandon;
pub mod aidant;
pub mod franceconnect;
pub mod french;
pub mod history;
pub mod login;
pub mod mandate;
pub mod recap;

pub mod usager;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use mandate_store::{Demarche, Refusal, UsableMandate};
use serde::Deserialize;

use crate::ephemeral::EphemeralJson;
use crate::provider::error::FrontError;
use crate::provider::keyspace::interaction_key;
use crate::provider::page::{html, ErrorPage, WayBack};
use crate::provider::records::{interaction_storage_ttl, AidantSession, Interaction, LastChoice};
use crate::provider::respond::{aidant_level, issue_code, see_other, way_back, Abandon, Issued};
use crate::provider::session;
use crate::provider::{cookie_value, tokens, App, AppData, BROWSER_COOKIE};
use french::{born, french_date};

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

/// A field of a form that needs correcting: listed in the page's error summary, which links
/// to it (`field` is its id), and shown beside it.
pub(crate) struct FieldError {
    field: &'static str,
    message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
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
    /// The aidant's session CSRF token, for « Se déconnecter ».
    logout_csrf: String,
    id: String,
    csrf: String,
    aidant_name: String,
    organisation_name: String,
    client_name: String,
    usagers: Vec<UsagerView>,
    error: Option<String>,
    way_back: WayBack,
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

/// The interaction of a choice page, and what it needs first.
// Returned once per request and taken apart at once: a box would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    /// In this browser, with a session fresh enough for it (and its cookie).
    Ready {
        ix: Interaction,
        cookie: String,
        session: AidantSession,
    },
    /// Where to send the browser instead: the upstream login.
    LoginFirst(String),
}

/// The interaction of this URL, in this browser, and its session or the login it needs.
async fn load(req: &HttpRequest, app: &App, id: &str) -> Result<Loaded, FrontError> {
    let browser = cookie_value(req, BROWSER_COOKIE).unwrap_or_default();
    let ix: Interaction = get_bound(app, &interaction_key(id), &browser, |i: &Interaction| {
        &i.browser
    })
    .await?;
    let now = app.now();
    let back = |reason| way_back(app, id, &ix, reason);
    if ix.expired(&app.config.session, now) {
        return Err(ErrorPage::expired()
            .with_way_back(back(Abandon::Expired))
            .into());
    }
    match session::current(req, app, &browser).await? {
        Some((cookie, mut s)) if session::satisfies(app, &s, &ix, id, now) => {
            let limit = crate::provider::limits::Limit::Aidant;
            if let Some(after) = crate::provider::limits::over(app, limit, &s.aidant_id).await? {
                return Err(ErrorPage::too_many(after).into());
            }
            // An aidant no longer allowed to act (403) may go back; a store failure may not:
            // the way back needs the store too.
            session::keep(app, &cookie, &mut s, now)
                .await
                .map_err(|e| match &e {
                    FrontError::Page(p) if p.status == StatusCode::FORBIDDEN => {
                        e.with_way_back(back(Abandon::UnknownAidant))
                    }
                    _ => e,
                })?;
            // A login below the level the client needs: said to the client at once.
            aidant_level(app, &ix, &s)?;
            Ok(Loaded::Ready {
                ix,
                cookie,
                session: s,
            })
        }
        stale => Ok(Loaded::LoginFirst(
            session::start(
                app,
                &format!("/interaction/{id}"),
                &browser,
                ix.force_login || stale.is_some(),
                ix.login_hint.as_deref(),
            )
            .await
            .map_err(|e| e.with_way_back(back(Abandon::UpstreamUnavailable)))?,
        )),
    }
}

/// The form that ends a mandate, or one of its démarches (`demarche`), on the aidant's or
/// the usager's page: a confirmation box.
#[derive(Deserialize)]
pub(crate) struct EndForm {
    csrf: String,
    confirm: Option<String>,
    demarche: Option<String>,
}

impl EndForm {
    /// Ends what the form names, as `by`; the page to go back to gets `?termine=1` or
    /// `?retire=1`.
    /// `one`: the form ends one démarche (its own route), and must name it.
    fn apply(
        &self,
        one: bool,
        store: &mandate_store::Store,
        id: &str,
        reason: &str,
        by: mandate_store::Actor,
        now: i64,
    ) -> Result<&'static str, mandate_store::StoreError> {
        match (one, self.demarche.as_deref()) {
            (false, _) => store
                .revoke_mandate(id, reason, by, now)
                .map(|_| "termine=1"),
            (true, None) => Err(mandate_store::StoreError::Invalid(
                "no démarche named".into(),
            )),
            (true, Some(key)) => {
                let d = key
                    .parse::<Demarche>()
                    .map_err(|e| mandate_store::StoreError::Invalid(e.to_string()))?;
                store.end_demarche(id, d, by, now).map(|m| {
                    if m.revoked_at.is_some() {
                        "termine=1"
                    } else {
                        "retire=1"
                    }
                })
            }
        }
    }
}

/// The handler of a route that ends a mandate (`one` false) or one of its démarches: the
/// same page code, told which.
pub(crate) fn ending<F, Fut>(
    one: bool,
    end_with: F,
) -> impl Fn(HttpRequest, AppData, web::Path<String>, web::Form<EndForm>) -> Fut + Clone + 'static
where
    F: Fn(bool, HttpRequest, AppData, web::Path<String>, web::Form<EndForm>) -> Fut
        + Copy
        + 'static,
    Fut: std::future::Future<Output = Result<HttpResponse, FrontError>>,
{
    move |req, app, id, form| end_with(one, req, app, id, form)
}

/// A page shown again after a mandate was ended (`?termine=1`) or one of its démarches
/// (`?retire=1`).
#[derive(Deserialize)]
pub(crate) struct EndedQuery {
    termine: Option<String>,
    retire: Option<String>,
}

impl EndedQuery {
    fn notice(&self) -> Option<&'static str> {
        if self.retire.is_some() {
            return Some("La démarche a été retirée du mandat. Le reste du mandat continue.");
        }
        self.termine
            .as_ref()
            .map(|_| "Le mandat a pris fin. Plus aucun aidant ne peut l'utiliser.")
    }
}

/// An ending's outcome as a page: refused (not theirs, unknown, changed meanwhile) or failed.
fn ended<T>(
    result: Result<T, mandate_store::StoreError>,
    not_theirs: &str,
) -> Result<T, FrontError> {
    use mandate_store::StoreError;
    match result {
        Ok(done) => Ok(done),
        Err(StoreError::NotAllowed(_) | StoreError::NotFound { .. }) => {
            Err(ErrorPage::forbidden(not_theirs).into())
        }
        Err(StoreError::Invalid(_)) => Err(ErrorPage::bad_request(
            "Ce mandat a changé entre-temps : revenez à la page et recommencez.",
        )
        .into()),
        Err(e) => Err(e.into()),
    }
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
        .await?;
    let client_name = history::service_name(app, &ix.client_id);
    let reason = if mandates.is_empty() {
        Abandon::Nobody
    } else {
        Abandon::Cancelled
    };
    let page = ChoosePage {
        logout_csrf: s.csrf.clone(),
        way_back: way_back(app, &id, ix, reason),
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
        Loaded::LoginFirst(url) => Ok(see_other(url)),
        Loaded::Ready { ix, session, .. } => render_choice(&app, id, &ix, &session, None).await,
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
        Loaded::LoginFirst(url) => return Ok(see_other(url)),
        Loaded::Ready {
            ix,
            cookie,
            session,
        } => (ix, cookie, session),
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
        Ok(Issued::Code {
            response,
            usager_id,
        }) => {
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
            Ok(response)
        }
        Ok(Issued::Refused(r)) => {
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
