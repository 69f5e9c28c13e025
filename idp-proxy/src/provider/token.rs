//! The token endpoint (RFC 6749 §4.1.3, OIDC Core §3.1.3): client authentication, then the
//! grant checks in order, then the mandate checked once more — a mandate revoked since the
//! choice gets `invalid_grant`. A replayed code fails and revokes what it issued.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mandate_store::UseError;
use ring::digest::{digest, SHA256};
use serde_json::{json, Map, Value};

use super::checks::verify_pkce;
use super::error::{Code, JsonError, OAuthError};
use super::params::Params;
use super::records::{access_token_key, code_key, CodeGrant, Delegation};
use super::{claims, tokens, App, AppData};
use crate::config::{AuthMethod, Client};
use crate::ephemeral::EphemeralJson;
use crate::keys::hex;

pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn invalid_client(d: &str) -> OAuthError {
    OAuthError::new(Code::InvalidClient, d)
}

/// `Authorization: Basic` credentials, form-urldecoded as RFC 6749 §2.3.1 requires.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(bad());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// Rule: the client authenticates with the one method it registered, and its secret's
/// SHA-256 matches in constant time.
pub(super) fn authenticate<'a>(
    req: &HttpRequest,
    app: &'a App,
    params: &Params,
) -> Result<&'a Client, OAuthError> {
    let basic = basic_credentials(req)?;
    let (id, secret, method) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ))
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|c| c != id) {
                return Err(OAuthError::invalid_request("client_id does not match"));
            }
            (id, secret, AuthMethod::ClientSecretBasic)
        }
        (None, Some(secret)) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| invalid_client("client_id is required"))?;
            (
                id.to_string(),
                secret.to_string(),
                AuthMethod::ClientSecretPost,
            )
        }
        (None, None) => return Err(invalid_client("client authentication is required")),
    };
    let presented = hex(digest(&SHA256, secret.as_bytes()).as_ref());
    let client = app.config.client(&id);
    let expected = client.map(|c| c.client_secret_sha256.to_ascii_lowercase());
    let matches = tokens::same(&presented, expected.as_deref().unwrap_or(""));
    match client {
        Some(c) if matches && c.token_endpoint_auth_method == method => Ok(c),
        _ => Err(invalid_client("client authentication failed")),
    }
}

pub async fn token(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, JsonError> {
    if !is_form(&req) {
        return Err(
            OAuthError::invalid_request("expected application/x-www-form-urlencoded").into(),
        );
    }
    let params = Params::parse(&body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let client = authenticate(&req, &app, &params)?;
    match params.get("grant_type") {
        Some("authorization_code") => {}
        None => return Err(OAuthError::invalid_request("grant_type is required").into()),
        Some(_) => {
            return Err(OAuthError::new(
                Code::UnsupportedGrantType,
                "only authorization_code is supported",
            )
            .into())
        }
    }
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;

    let Some(grant) = app
        .ephemeral
        .take_json::<CodeGrant>(&code_key(code))
        .await?
    else {
        // Unknown, expired or replayed: if it was redeemed, its access token is revoked
        // (RFC 6749 §4.1.2, RFC 9700 §4.5). Deleting a token that never existed is harmless.
        let issued = access_token_key(&app.keys.access_token_for(code));
        app.ephemeral.delete(&issued).await?;
        return Err(OAuthError::invalid_grant("code is invalid, expired or already used").into());
    };
    let delegation = &grant.delegation;
    if delegation.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("code was issued to another client").into());
    }
    if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        )
        .into());
    }
    verify_pkce(grant.code_challenge.as_deref(), params.get("code_verifier"))?;

    let now = app.now();
    let checked = check_mandate(&app, delegation, now).await?;

    let access_token = app.keys.access_token_for(code);
    let at_ttl = client.access_token_ttl(&app.config.tokens);
    let issued = Delegation {
        issued_at: now,
        ..delegation.clone()
    };
    app.ephemeral
        .put_json(
            &access_token_key(&access_token),
            &issued,
            Duration::from_secs(at_ttl),
        )
        .await?;
    let id_token = id_token(&app, client, &grant, &checked, &access_token, now)?;
    tracing::info!(client = %client.client_id, demarche = delegation.demarche.as_str(), "tokens issued");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": at_ttl,
            "id_token": id_token,
            "scope": delegation.scopes.join(" "),
        })))
}

/// The mandate, re-checked in one indexed query: revoked, expired or no longer covering the
/// démarche means no token.
pub async fn check_mandate(
    app: &App,
    grant: &Delegation,
    now: i64,
) -> Result<mandate_store::Grant, OAuthError> {
    let g = grant.clone();
    let checked = app
        .read(move |store| {
            store.check_grant(
                &g.mandate_id,
                &g.aidant_id,
                &g.organisation_id,
                g.demarche,
                now,
            )
        })
        .await
        .map_err(|_| OAuthError::unavailable())?;
    match checked {
        Ok(c) => Ok(c),
        Err(UseError::Refused(r)) => {
            tracing::info!(reason = r.code(), "mandate refused at token or userinfo");
            Err(OAuthError::invalid_grant(format!(
                "the mandate no longer allows this: {r}"
            )))
        }
        Err(UseError::Store(e)) => {
            tracing::error!(error = %e, "mandate store failure");
            Err(OAuthError::unavailable())
        }
    }
}

fn id_token(
    app: &App,
    client: &Client,
    grant: &CodeGrant,
    checked: &mandate_store::Grant,
    access_token: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let mut c = Map::new();
    c.insert("iss".into(), Value::from(app.issuer()));
    c.insert("sub".into(), Value::from(checked.usager_id.as_str()));
    c.insert("aud".into(), Value::from(client.client_id.as_str()));
    c.insert("iat".into(), Value::from(now));
    c.insert(
        "exp".into(),
        Value::from(now + app.config.tokens.id_token_ttl_secs as i64),
    );
    let delegation = &grant.delegation;
    c.insert("auth_time".into(), Value::from(delegation.auth_time));
    if let Some(nonce) = &grant.nonce {
        c.insert("nonce".into(), Value::from(nonce.as_str()));
    }
    c.insert("acr".into(), Value::from(delegation.acr.as_str()));
    c.insert("at_hash".into(), Value::from(tokens::at_hash(access_token)));
    claims::identity(&checked.identity, &delegation.scopes, &mut c);
    claims::delegation(checked, &mut c);
    app.keys
        .sign(client.id_token_signed_response_alg, &c)
        .map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            OAuthError::new(Code::ServerError, "signing failed")
        })
}
