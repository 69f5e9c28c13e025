//! The usager's FranceConnect login, for the two things it serves: giving a mandate (on the
//! aidant's device, DESIGN.md §3.2) and the usager's own space (DESIGN.md §3.3). idp-proxy is
//! FranceConnect's relying party through `upstream` (state, nonce, PKCE, `acr_values`, RFC 9207
//! `iss`, v2's encrypted ID token and userinfo opened with our key). The FranceConnect session
//! ends right after the login: the device may not be the usager's, and nothing of it is kept.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use mandate_store::Identity;
use serde::{Deserialize, Serialize};

use super::{login, mandate, usager};
use crate::ephemeral::EphemeralJson;
use crate::provider::error::FrontError;
use crate::provider::keyspace::Space;
use crate::provider::page::ErrorPage;
use crate::provider::respond::see_other;
use crate::provider::{App, AppData};
use crate::upstream::{Callback, PendingLogin, UpstreamError, VerifiedIdentity};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/franceconnect/callback", web::get().to(callback))
        .route("/franceconnect/logout-callback", web::get().to(logged_out));
}

/// Why the usager logs in.
#[derive(Debug, Serialize, Deserialize)]
pub enum Purpose {
    /// To confirm the mandate pending under this id.
    GiveMandate(String),
    /// To open their own space.
    UsagerSpace,
}

/// A FranceConnect login in progress. Key: `fc:{state}`.
#[derive(Debug, Serialize, Deserialize)]
struct FranceConnectLogin {
    purpose: Purpose,
    browser: String,
    pending: PendingLogin,
}

fn franceconnect(app: &App) -> Result<&dyn crate::upstream::Upstream, ErrorPage> {
    app.franceconnect.as_deref().ok_or_else(|| {
        ErrorPage::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "FranceConnect n'est pas disponible",
            "Ce service n'est pas relié à FranceConnect.",
            "Contactez le responsable technique de la structure.",
        )
    })
}

/// Where to send the browser to log the usager in at FranceConnect for `purpose`.
pub async fn start(app: &App, browser: &str, purpose: Purpose) -> Result<String, FrontError> {
    let (url, state, pending) = franceconnect(app)?
        .login_url(true, None)
        .await
        .map_err(|e| error_page(&e))?;
    let record = FranceConnectLogin {
        purpose,
        browser: browser.to_string(),
        pending,
    };
    let ttl = app.config.session.interaction_ttl;
    app.ephemeral
        .put_json(&Space::FranceConnectLogin.key(&state), &record, ttl)
        .await?;
    Ok(url)
}

/// The French page for a FranceConnect failure; whatever was under way stored nothing.
pub fn error_page(e: &UpstreamError) -> ErrorPage {
    match e {
        UpstreamError::Unavailable(detail) => {
            tracing::warn!(%detail, "FranceConnect unavailable");
            ErrorPage::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "FranceConnect ne répond pas",
                "La connexion avec FranceConnect est impossible pour le moment. Rien n'a été enregistré.",
                "Réessayez dans quelques minutes.",
            )
        }
        UpstreamError::Denied(error) if error == "access_denied" => ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Connexion FranceConnect annulée",
            "La personne n'a pas terminé sa connexion avec FranceConnect. Rien n'a été enregistré.",
            "Vous pouvez recommencer quand vous le souhaitez.",
        ),
        UpstreamError::Denied(error) => {
            tracing::warn!(%error, "FranceConnect returned an error");
            ErrorPage::new(
                StatusCode::BAD_GATEWAY,
                "FranceConnect a signalé une erreur",
                "FranceConnect n'a pas pu terminer la connexion. Rien n'a été enregistré.",
                "Réessayez dans quelques minutes.",
            )
        }
        UpstreamError::Rejected(detail) => {
            tracing::warn!(%detail, "FranceConnect answer rejected");
            ErrorPage::bad_request(
                "La réponse de FranceConnect n'a pas pu être vérifiée. Rien n'a été enregistré.",
            )
        }
    }
}

/// The identité pivot from verified userinfo claims. The birth date kept is the identity
/// provider's own (`idp_birthdate`, possibly presumed: `YYYY-MM-00`), the one FranceConnect
/// checks at the RNIPP when idp-proxy answers it as an identity provider; else `birthdate`.
pub fn identity_from(claims: &serde_json::Value) -> Option<Identity> {
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Some(Identity {
        given_name: text("given_name")?,
        family_name: text("family_name")?,
        birthdate: text("idp_birthdate").or_else(|| text("birthdate"))?,
        gender: text("gender")?,
        birthplace: text("birthplace").filter(|b| !b.is_empty()),
        birthcountry: text("birthcountry")?,
        email: text("email").filter(|e| !e.is_empty()),
        preferred_username: text("preferred_username"),
    })
}

async fn callback(
    req: HttpRequest,
    app: AppData,
    query: web::Query<Callback>,
) -> Result<HttpResponse, FrontError> {
    let login: FranceConnectLogin = login::take_login(
        &req,
        &app,
        Space::FranceConnectLogin,
        &query,
        |l: &FranceConnectLogin| &l.browser,
    )
    .await?;
    let franceconnect = franceconnect(&app)?;
    let verified: VerifiedIdentity = franceconnect
        .finish(&query, &login.pending, &app.keys())
        .await
        .map_err(|e| error_page(&e))?;
    // What the login was for, and where to land once FranceConnect's session is closed.
    let (cookie, next, back_state) = match login.purpose {
        Purpose::GiveMandate(pending_id) => {
            mandate::usager_verified(&app, &pending_id, &verified).await?;
            let next = format!("/mandats/recapitulatif/{pending_id}");
            (None, next, format!("recap-{pending_id}"))
        }
        Purpose::UsagerSpace => {
            let cookie = usager::logged_in(&app, &login.browser, &verified).await?;
            (
                Some(cookie),
                "/mon-espace".to_string(),
                "espace".to_string(),
            )
        }
    };
    let back = format!("{}/franceconnect/logout-callback", app.issuer());
    let to = franceconnect
        .logout_url(&verified.id_token, &back, &back_state)
        .await
        .unwrap_or(next);
    let mut res = see_other(to);
    if let Some(cookie) = cookie {
        let _ = res.add_cookie(&cookie);
    }
    Ok(res)
}

#[derive(Deserialize)]
struct LoggedOut {
    state: Option<String>,
}

/// Back from FranceConnect's logout: on to the page the login was for.
async fn logged_out(q: web::Query<LoggedOut>) -> Result<HttpResponse, FrontError> {
    let state = q.state.as_deref().unwrap_or_default();
    if state == "espace" {
        return Ok(see_other("/mon-espace".to_string()));
    }
    let id = state
        .strip_prefix("recap-")
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(ErrorPage::expired)?;
    Ok(see_other(format!("/mandats/recapitulatif/{id}")))
}
