//! The aidant's session and its login: `start` sends the aidant to their own identity
//! provider (the pending login stored under its `state`); after a verified login the session is
//! kept in the ephemeral store behind a `__Host-` cookie, bound to the browser, ended by logout,
//! idleness or age.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};

use super::error::FrontError;
use super::keyspace::session_key;
use super::page::ErrorPage;
use super::records::{interaction_storage_ttl, AidantSession, Interaction, UpstreamLogin};
use super::respond::see_other;
use super::tokens::same;
use super::{cookie_value, App, BROWSER_COOKIE, SESSION_COOKIE};
use crate::ephemeral::{EphemeralError, EphemeralJson};
use crate::upstream::UpstreamError;

/// The page for a failed login at the aidants' identity provider.
pub fn upstream_page(e: UpstreamError) -> ErrorPage {
    match e {
        UpstreamError::Unavailable(detail) => {
            tracing::warn!(%detail, "aidant identity provider unavailable");
            ErrorPage::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "Connexion impossible pour le moment",
                "Le service d'identification des aidants ne répond pas.",
                "Réessayez dans quelques minutes.",
            )
        }
        UpstreamError::Denied(_) => ErrorPage::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "Connexion annulée",
            "La connexion auprès de votre fournisseur d'identité n'a pas abouti.",
            "Revenez sur le site du service et recommencez la démarche.",
        ),
        UpstreamError::Rejected(detail) => {
            tracing::warn!(%detail, "upstream login rejected");
            ErrorPage::bad_request("La réponse du fournisseur d'identité des aidants est invalide.")
        }
    }
}

/// Where to send the browser to log the aidant in, to come back to the local path `then`.
pub async fn start(
    app: &App,
    then: &str,
    browser: &str,
    force_login: bool,
    login_hint: Option<&str>,
) -> Result<String, FrontError> {
    let (url, state, pending) = app
        .upstream
        .login_url(force_login, login_hint)
        .await
        .map_err(upstream_page)?;
    let login = UpstreamLogin {
        then: then.to_string(),
        browser: browser.to_string(),
        pending,
    };
    let ttl = interaction_storage_ttl(&app.config.session);
    app.ephemeral
        .put_json(
            &super::keyspace::Space::UpstreamLogin.key(&state),
            &login,
            ttl,
        )
        .await?;
    Ok(url)
}

/// The session of this request's cookie, if it exists and belongs to this browser.
pub async fn current(
    req: &HttpRequest,
    app: &App,
    browser: &str,
) -> Result<Option<(String, AidantSession)>, EphemeralError> {
    let Some(cookie) = cookie_value(req, SESSION_COOKIE) else {
        return Ok(None);
    };
    let session: Option<AidantSession> = app.ephemeral.get_json(&session_key(&cookie)).await?;
    Ok(session
        .filter(|s| same(&s.browser, browser))
        .map(|s| (cookie, s)))
}

/// Whether the session may serve interaction `id` without a new upstream login: not idle
/// too long, young enough for `max_age`, and, if the request asked `prompt=login`, opened by
/// the login made for this very request (`fresh_for`; FranceConnect's core asks
/// `prompt=login` every time, and two of its requests may come within the same second).
pub fn satisfies(app: &App, s: &AidantSession, ix: &Interaction, id: &str, now: i64) -> bool {
    let idle = now - s.last_seen > app.config.session.idle_timeout.as_secs() as i64;
    let too_old = ix.max_age.is_some_and(|m| now - s.auth_time > m);
    let login_asked = ix.force_login && s.fresh_for.as_deref() != Some(id);
    !(idle || too_old || login_asked)
}

/// Whether the session may act now: not idle longer than the configured limit.
pub fn active(app: &App, s: &AidantSession, now: i64) -> bool {
    now - s.last_seen <= app.config.session.idle_timeout.as_secs() as i64
}

/// A session serving a page: the aidant may still act (else it ends), and it counts as seen
/// now.
pub async fn keep(
    app: &App,
    cookie: &str,
    s: &mut AidantSession,
    now: i64,
) -> Result<(), FrontError> {
    may_still_act(app, cookie, s).await?;
    s.last_seen = now;
    save(app, cookie, s).await?;
    Ok(())
}

/// A session opened before the aidant or the organisation was disabled, or the membership
/// removed, ends at the next page: nothing more is shown to it.
async fn may_still_act(app: &App, cookie: &str, s: &AidantSession) -> Result<(), FrontError> {
    let (aidant, organisation) = (s.aidant_id.clone(), s.organisation_id.clone());
    let may = app
        .read(move |store| store.aidant_may_act(&aidant, &organisation))
        .await?;
    if may {
        return Ok(());
    }
    // Ended like a logout: the clients it served hear of it too.
    if let Some(ended) = app
        .ephemeral
        .take_json::<AidantSession>(&session_key(cookie))
        .await?
    {
        crate::provider::backchannel::notify(app, &ended);
    }
    Err(ErrorPage::forbidden("Votre compte d'aidant n'est plus actif dans cette structure.").into())
}

pub async fn save(app: &App, cookie: &str, session: &AidantSession) -> Result<(), EphemeralError> {
    let lifetime = app.config.session.max_lifetime.as_secs() as i64;
    let remaining = (session.created_at + lifetime) - app.now();
    let ttl = Duration::from_secs(remaining.max(1) as u64);
    app.ephemeral
        .put_json(&session_key(cookie), session, ttl)
        .await
}

/// Who is at an aidant's own page.
pub enum Required {
    /// The aidant's active session in this browser, with the browser id.
    Active {
        browser: String,
        session: AidantSession,
    },
    /// The response that sends them to log in first, and back.
    LoginFirst(HttpResponse),
}

/// The aidant's active session in this browser, or the login that comes back to `then`.
pub async fn require(req: &HttpRequest, app: &App, then: &str) -> Result<Required, FrontError> {
    let (browser, new_browser) = crate::provider::browser_id(req);
    let now = app.now();
    match current(req, app, &browser).await? {
        Some((cookie, mut s)) if active(app, &s, now) => {
            keep(app, &cookie, &mut s, now).await?;
            Ok(Required::Active {
                browser,
                session: s,
            })
        }
        stale => {
            let url = start(app, then, &browser, stale.is_some(), None).await?;
            let mut res = see_other(url);
            if new_browser {
                let _ = res.add_cookie(&app.cookie(BROWSER_COOKIE, browser));
            }
            Ok(Required::LoginFirst(res))
        }
    }
}
