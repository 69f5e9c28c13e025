//! Access-token lifecycle for clients: revocation (RFC 7009) and introspection (RFC 7662).
//! Both authenticate the client as the token endpoint does, and both only ever concern the
//! client's own tokens. Introspection re-checks the mandate, so a token is active only while
//! the mandate still allows what it stands for, and it states the same `act`, `rep_scope` and
//! `mandate` as the ID token.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::client_auth::authenticate;
use super::error::{Code, JsonError, OAuthError};
use super::keyspace::access_token_key;
use super::records::Delegation;
use super::token::{check_mandate, form_params};
use super::{claims, AppData};
use crate::ephemeral::EphemeralJson;

/// The client and the `token` parameter of a form-encoded, client-authenticated request.
async fn read<'a>(
    req: &HttpRequest,
    app: &'a AppData,
    body: &web::Bytes,
) -> Result<(&'a crate::config::Client, Option<String>), OAuthError> {
    let params = form_params(req, body)?;
    let client = authenticate(req, app, &params).await?;
    let token = params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // Ours are 43 characters; anything much longer is not one of them.
    Ok((client, Some(token.to_string()).filter(|t| t.len() <= 128)))
}

/// RFC 7009: the client's access token is revoked at once on every node. An unknown, expired
/// or foreign token changes nothing and still gets 200, so the answer tells nothing about it.
pub async fn revoke(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, JsonError> {
    let (client, token) = read(&req, &app, &body).await?;
    if let Some(token) = token {
        let key = access_token_key(&token);
        let found: Option<Delegation> = app.ephemeral.get_json(&key).await?;
        if found.is_some_and(|d| d.client_id == client.client_id) {
            app.ephemeral.delete(&key).await?;
            tracing::info!(client = %client.client_id, "access token revoked");
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// RFC 7662: `active` with what the token stands for, or only `{"active": false}` for a token
/// that is unknown, expired, revoked, another client's, or whose mandate no longer allows it.
pub async fn introspect(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, JsonError> {
    let (client, token) = read(&req, &app, &body).await?;
    let inactive = || {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "active": false }))
    };
    let Some(token) = token else {
        return Ok(inactive());
    };
    let grant: Option<Delegation> = app.ephemeral.get_json(&access_token_key(&token)).await?;
    let Some(grant) = grant.filter(|d| d.client_id == client.client_id) else {
        return Ok(inactive());
    };
    let checked = match check_mandate(&app, &grant, app.now()).await {
        Ok(c) => c,
        Err(e) if matches!(e.code, Code::InvalidGrant) => return Ok(inactive()),
        Err(e) => return Err(e.into()),
    };
    let mut c = Map::new();
    c.insert("active".into(), Value::from(true));
    c.insert("scope".into(), Value::from(grant.scopes.join(" ")));
    c.insert("client_id".into(), Value::from(grant.client_id.as_str()));
    c.insert("token_type".into(), Value::from("Bearer"));
    c.insert("iat".into(), Value::from(grant.issued_at));
    c.insert(
        "exp".into(),
        Value::from(grant.issued_at + client.access_token_ttl(&app.config.tokens).as_secs() as i64),
    );
    c.insert("iss".into(), Value::from(app.issuer()));
    c.insert("aud".into(), Value::from(grant.client_id.as_str()));
    c.insert(
        "sub".into(),
        Value::from(app.subject(client, &checked.usager_id)),
    );
    c.insert("acr".into(), Value::from(grant.acr.as_str()));
    c.insert("auth_time".into(), Value::from(grant.auth_time));
    claims::delegation(
        &checked,
        grant.vocabulary,
        |id| app.subject(client, id),
        &mut c,
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(c))
}
