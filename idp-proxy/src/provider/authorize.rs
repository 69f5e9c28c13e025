//! The authorization endpoint (OIDC Core §3.1.2): a list of checks, then an interaction
//! stored for the aidant's choice, bound to this browser. The aidant goes to the choice page
//! if their session is fresh enough, otherwise to the upstream IdP first.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::error::{Code, FrontError, OAuthError};
use super::keyspace::interaction_key;
use super::page::ErrorPage;
use super::params::Params;
use super::records::{interaction_storage_ttl, Interaction, RequestedClaims};
use super::respond::{issue_code, way_back, Abandon, Issued};
use super::session;
use super::{checks, claims, request, tokens, App, AppData, BROWSER_COOKIE};
use crate::ephemeral::EphemeralJson;

pub async fn get(req: HttpRequest, app: AppData) -> Result<HttpResponse, FrontError> {
    authorize(&req, &app, req.query_string().as_bytes()).await
}

pub async fn post(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, FrontError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(ErrorPage::bad_request("Requête invalide : formulaire attendu.").into());
    }
    // A cross-site POST carries no SameSite=Lax cookie: handled here, it would replace the
    // browser cookie and orphan the aidant's session. The same request as a GET keeps them.
    Params::parse(&body).map_err(|e| ErrorPage::bad_request(format!("Requête invalide : {e}.")))?;
    let query = String::from_utf8_lossy(&body);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/authorize?{query}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

async fn authorize(req: &HttpRequest, app: &App, raw: &[u8]) -> Result<HttpResponse, FrontError> {
    let ip = super::limits::client_ip(app, req);
    if let Some(after) = super::limits::over(app, super::limits::Limit::Ip, &ip).await? {
        return Err(ErrorPage::too_many(after).into());
    }
    let params = Params::parse(raw)
        .map_err(|e| ErrorPage::bad_request(format!("Requête invalide : {e}.")))?;
    for name in ["state", "nonce"] {
        if params.get(name).is_some_and(|v| v.len() > 512) {
            return Err(ErrorPage::bad_request(format!(
                "Requête invalide : `{name}` est trop long."
            ))
            .into());
        }
    }
    let client = checks::client(&app.config, &params)?;
    let params = signed_or_pushed(app, client, params).await?;
    let to = checks::redirect_uri(client, &params, app.issuer())?;
    let back = |error: OAuthError| FrontError::Redirect {
        to: to.clone(),
        error,
    };
    let checks::Checked {
        scopes,
        code_challenge,
        prompt,
        allowed,
        vocabulary,
        acr_min,
    } = checks::authorization_request(client, &params).map_err(back)?;

    let now = app.now();
    let (browser, new_browser) = super::browser_id(req);
    let interaction = Interaction {
        client_id: client.client_id.clone(),
        redirect_uri: to.redirect_uri.clone(),
        state: to.state.clone(),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge,
        scopes,
        allowed,
        vocabulary,
        acr_min: Some(acr_min),
        claims: RequestedClaims {
            id_token: claims::requested(params.get("claims"), "id_token"),
            userinfo: claims::requested(params.get("claims"), "userinfo"),
        },
        max_age: prompt.max_age,
        force_login: prompt.force_login,
        login_hint: params
            .get("login_hint")
            .filter(|h| h.len() <= 256)
            .map(str::to_string),
        browser: browser.clone(),
        csrf: tokens::random(),
        created_at: now,
    };
    if prompt.none {
        return silently(req, app, &interaction, &params, &browser)
            .await
            .map_err(back);
    }
    let id = tokens::random();
    app.ephemeral
        .put_json(
            &interaction_key(&id),
            &interaction,
            interaction_storage_ttl(&app.config.session),
        )
        .await?;

    // A stale session (idle, too old for max_age) sends the aidant to authenticate again.
    let (fresh, stale) = match session::current(req, app, &browser).await? {
        Some((_, s)) => {
            let ok = session::satisfies(app, &s, &interaction, &id, now);
            (ok, !ok)
        }
        None => (false, false),
    };
    let location = if fresh {
        Ok(format!("/interaction/{id}"))
    } else {
        let then = format!("/interaction/{id}");
        let hint = interaction.login_hint.as_deref();
        session::start(app, &then, &browser, interaction.force_login || stale, hint).await
    };
    let mut res = match location {
        Ok(location) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        // The aidants' IdP unreachable: a page whose way back needs this browser's cookie.
        Err(e) => e
            .with_way_back(way_back(
                app,
                &id,
                &interaction,
                Abandon::UpstreamUnavailable,
            ))
            .error_response(),
    };
    if new_browser {
        // Built from our own random id: a cookie that always encodes.
        let _ = res.add_cookie(&app.cookie(BROWSER_COOKIE, browser));
    }
    Ok(res)
}

/// The parameters to check: those of a signed request object or of a pushed request if the
/// request names one (and only them), else the URL's. An error goes back to the client if the
/// URL names a redirect URI registered for it, else to a local page.
async fn signed_or_pushed(
    app: &App,
    client: &crate::config::Client,
    outer: Params,
) -> Result<Params, FrontError> {
    let inner = match (outer.get("request"), outer.get("request_uri")) {
        (None, None) => return Ok(outer),
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "request and request_uri cannot be used together",
        )),
        (Some(jwt), None) => request::open_object(app, client, jwt).await,
        (None, Some(uri)) => request::take_pushed(app, client, uri).await,
    };
    inner.map_err(
        |error| match checks::redirect_uri(client, &outer, app.issuer()) {
            Ok(to) => FrontError::Redirect { to, error },
            Err(_) => ErrorPage::bad_request(format!(
                "La demande du service est invalide ({}).",
                error.code.as_str()
            ))
            .into(),
        },
    )
}

/// `prompt=none` (OIDC Core §3.1.2.1): no page may be shown. Answered only with a session
/// fresh enough for the request and a choice the aidant made for this client in it (same
/// usager, a démarche this request allows); the mandate is re-checked and the use journaled
/// as for a choice on the page. An `id_token_hint` must be ours, for this client, naming this
/// session's aidant and that usager. Otherwise `login_required` or `interaction_required`.
async fn silently(
    req: &HttpRequest,
    app: &App,
    ix: &Interaction,
    params: &Params,
    browser: &str,
) -> Result<HttpResponse, OAuthError> {
    let login_required = || OAuthError::new(Code::LoginRequired, "no fresh aidant session");
    let interaction_required = || {
        OAuthError::new(
            Code::InteractionRequired,
            "the aidant must choose the usager and the demarche",
        )
    };
    let session = session::current(req, app, browser).await?;
    let Some((_, s)) = session.filter(|(_, s)| session::satisfies(app, s, ix, "", app.now()))
    else {
        return Err(login_required());
    };
    let last = s
        .last_choice(&ix.client_id)
        .filter(|c| ix.allowed.contains(&c.demarche))
        .ok_or_else(interaction_required)?;
    if let Some(hint) = params.get("id_token_hint") {
        let claims = app.keys().verify_own(hint).ok_or_else(|| {
            OAuthError::invalid_request("id_token_hint is not an ID token we issued")
        })?;
        let aud_ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == &ix.client_id,
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| a == &ix.client_id[..]),
            _ => false,
        };
        if !aud_ok {
            return Err(OAuthError::invalid_request(
                "id_token_hint was issued to another client",
            ));
        }
        // Compared as this client sees them (public or pairwise).
        let client = app
            .config
            .client(&ix.client_id)
            .ok_or_else(login_required)?;
        let acting = claims.pointer("/act/sub").and_then(|v| v.as_str());
        if acting != Some(app.subject(client, &s.aidant_id).as_str()) {
            return Err(login_required());
        }
        let usager = app.subject(client, &last.usager_id);
        if claims.get("sub").and_then(|v| v.as_str()) != Some(usager.as_str()) {
            return Err(interaction_required());
        }
    }
    let (mandate_id, demarche) = (last.mandate_id.clone(), last.demarche);
    // Journaled when the client redeems the code: a site that merely triggers this request in
    // the aidant's browser never gets the code, so it journals nothing.
    match issue_code(app, ix, &s, &mandate_id, demarche, false).await {
        Ok(Issued::Code { response, .. }) => Ok(response),
        // Revoked, expired…: only the aidant, on the page, can choose otherwise.
        Ok(Issued::Refused(_)) => Err(interaction_required()),
        Err(FrontError::Redirect { error, .. }) => Err(error),
        Err(_) => Err(OAuthError::unavailable()),
    }
}
