//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a valid `id_token_hint` of
//! ours, a `post_logout_redirect_uri` registered for that client and compared exactly, then
//! the aidant session ends here, at the upstream IdP, and at the clients that registered a
//! back-channel logout URI. A request that does not prove it comes from this session (an
//! `id_token_hint` naming it) is confirmed by the aidant first, so no other site can log them
//! out. Anything doubtful: a local page, never a redirect.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use url::Url;

use super::error::FrontError;
use super::keyspace::{session_key, Space};
use super::params::Params;
use super::records::{AidantSession, PendingLogout};
use super::token::is_form;
use super::{cookie_value, tokens, App, AppData, SESSION_COOKIE};
use crate::ephemeral::EphemeralJson;
use crate::provider::page::{html, ErrorPage};

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOut;

/// "Log out?" — the parameters go along, to be checked again when the aidant confirms.
#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct Confirm {
    aidant_name: String,
    organisation_name: String,
    csrf: String,
    fields: Vec<(&'static str, String)>,
}

pub async fn get(req: HttpRequest, app: AppData) -> Result<HttpResponse, FrontError> {
    end_session(&req, &app, req.query_string().as_bytes()).await
}

pub async fn post(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, FrontError> {
    if !is_form(&req) {
        return Err(ErrorPage::bad_request("Requête invalide : formulaire attendu.").into());
    }
    end_session(&req, &app, &body).await
}

/// Where to go once logged out, if the request names a registered URI, and the verified
/// `id_token_hint`'s claims.
fn final_redirect(
    app: &App,
    params: &Params,
) -> Result<(Option<String>, Option<serde_json::Value>), ErrorPage> {
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(h) => match app
            .keys()
            .verify_own(h)
            .filter(|c| c.get("iss").and_then(|i| i.as_str()) == Some(app.issuer()))
        {
            Some(claims) => Some(claims),
            // Not ours, altered, or signed by a key long retired: no redirect on its word;
            // the aidant can still log out (after confirming).
            None => return Ok((None, None)),
        },
    };
    let hint_aud = hint
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(|a| a.as_str())
        .map(str::to_string);
    let client_id = match (params.get("client_id"), hint_aud.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(ErrorPage::bad_request(
                "Le service (client_id) ne correspond pas au jeton fourni.",
            ))
        }
        (Some(a), _) => Some(a.to_string()),
        (None, b) => b.map(str::to_string),
    };
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok((None, hint));
    };
    let client = client_id
        .as_deref()
        .and_then(|id| app.config.client(id))
        .ok_or_else(|| ErrorPage::bad_request("Le service demandeur est inconnu."))?;
    if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
        return Err(ErrorPage::bad_request(
            "L'adresse de retour après déconnexion n'est pas enregistrée pour ce service.",
        ));
    }
    let mut url = Url::parse(uri).map_err(|_| ErrorPage::bad_request("Adresse invalide."))?;
    if let Some(state) = params.get("state") {
        url.query_pairs_mut().append_pair("state", state);
    }
    Ok((Some(url.into()), hint))
}

/// Whether a verified `id_token_hint` was issued in this session (its `sid`, as its client
/// sees it).
fn names_session(app: &App, hint: &serde_json::Value, s: &AidantSession) -> bool {
    let client = hint
        .get("aud")
        .and_then(|a| a.as_str())
        .and_then(|a| app.config.client(a));
    let Some(client) = client.filter(|_| !s.sid.is_empty()) else {
        return false;
    };
    hint.get("sid").and_then(|v| v.as_str()) == Some(app.subject(client, &s.sid).as_str())
}

fn go(redirect: Option<String>) -> HttpResponse {
    match redirect {
        Some(to) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        None => html(StatusCode::OK, LoggedOut.render()),
    }
}

async fn end_session(
    req: &HttpRequest,
    app: &AppData,
    raw: &[u8],
) -> Result<HttpResponse, FrontError> {
    let params = Params::parse(raw)
        .map_err(|e| ErrorPage::bad_request(format!("Requête invalide : {e}.")))?;
    let (redirect, hint) = final_redirect(app, &params)?;
    let cookie = cookie_value(req, SESSION_COOKIE);
    let session: Option<AidantSession> = match &cookie {
        Some(c) => app.ephemeral.get_json(&session_key(c)).await?,
        None => None,
    };
    if let Some(s) = &session {
        let by_hint = hint.as_ref().is_some_and(|h| names_session(app, h, s));
        let by_aidant = params
            .get("logout_confirm")
            .is_some_and(|c| !s.csrf.is_empty() && tokens::same(c, &s.csrf));
        if !(by_hint || by_aidant) {
            // A hint that did not verify: no redirect after the confirmation either.
            let unverified = params.get("id_token_hint").is_some() && hint.is_none();
            return Ok(confirm_page(s, &params, hint.as_ref(), unverified));
        }
    }
    // Taken: a second logout of the same session finds nothing to end.
    let session: Option<AidantSession> = match &cookie {
        Some(c) if session.is_some() => app.ephemeral.take_json(&session_key(c)).await?,
        _ => None,
    };
    let mut upstream = None;
    let mut ended = false;
    if let Some(s) = session {
        tracing::info!(aidant = %s.aidant_id, "aidant logged out");
        super::backchannel::notify(app, &s);
        ended = true;
        let state = tokens::random();
        let back = format!("{}/logout/callback", app.issuer());
        if let Some(url) = app
            .upstream
            .logout_url(&s.upstream_id_token, &back, &state)
            .await
        {
            let pending = PendingLogout {
                redirect: redirect.clone(),
            };
            let ttl = app.config.session.interaction_ttl;
            app.ephemeral
                .put_json(&Space::Logout.key(&state), &pending, ttl)
                .await?;
            upstream = Some(url);
        }
    }
    let mut res = go(upstream.or(redirect));
    // Only a session really ended clears the cookie: a cross-site POST, which carries no
    // cookie, must not log the aidant out in the browser either.
    if ended {
        let _ = res.add_cookie(&app.removal_cookie(SESSION_COOKIE));
    }
    Ok(res)
}

fn confirm_page(
    s: &AidantSession,
    params: &Params,
    hint: Option<&serde_json::Value>,
    unverified_hint: bool,
) -> HttpResponse {
    // The client named by the request or its hint, so the redirect can be checked again.
    let client_id = params.get("client_id").map(str::to_string).or_else(|| {
        hint.and_then(|h| h.get("aud"))
            .and_then(|a| a.as_str())
            .map(str::to_string)
    });
    let fields = [
        ("client_id", client_id),
        (
            "post_logout_redirect_uri",
            params.get("post_logout_redirect_uri").map(str::to_string),
        ),
        ("state", params.get("state").map(str::to_string)),
    ]
    .into_iter()
    .filter(|(k, _)| !unverified_hint || *k == "state")
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let page = Confirm {
        aidant_name: s.aidant_name.clone(),
        organisation_name: s.organisation_name.clone(),
        csrf: s.csrf.clone(),
        fields,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Deserialize)]
pub struct Done {
    state: Option<String>,
}

/// The upstream IdP is done: finish where the client asked.
pub async fn upstream_done(app: AppData, q: web::Query<Done>) -> Result<HttpResponse, FrontError> {
    let pending: Option<PendingLogout> = match q.state.as_deref().filter(|s| s.len() <= 128) {
        Some(state) => app.ephemeral.take_json(&Space::Logout.key(state)).await?,
        None => None,
    };
    Ok(go(pending.and_then(|p| p.redirect)))
}
