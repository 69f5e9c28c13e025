//! The userinfo endpoint (OIDC Core §5.3): Bearer header only (RFC 6750 §2.1), the claims
//! the scopes granted, and the same `act`, `rep_scope` and `mandate` as the ID token. A
//! revoked mandate or a revoked token gets 401 `invalid_token`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::error::{Code, JsonError, OAuthError};
use super::keyspace::access_token_key;
use super::records::Delegation;
use super::token::{check_mandate, jwt_for};
use super::{claims, AppData};
use crate::ephemeral::EphemeralJson;

fn invalid_token(d: &str) -> OAuthError {
    OAuthError::new(Code::InvalidToken, d)
}

pub async fn userinfo(req: HttpRequest, app: AppData) -> Result<HttpResponse, JsonError> {
    if req.query_string().contains("access_token=") {
        return Err(OAuthError::invalid_request(
            "send the access token in the Authorization header",
        )
        .into());
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or_else(|| invalid_token("a Bearer access token is required"))?;
    let grant: Delegation = app
        .ephemeral
        .get_json(&access_token_key(token))
        .await?
        .ok_or_else(|| invalid_token("the access token is invalid, expired or revoked"))?;
    let checked = check_mandate(&app, &grant, app.now())
        .await
        .map_err(|e| match e.code {
            Code::InvalidGrant => invalid_token("the mandate no longer allows this"),
            _ => e,
        })?;
    let client = app
        .config
        .client(&grant.client_id)
        .ok_or_else(|| invalid_token("the client is no longer registered"))?;
    let mut c = Map::new();
    c.insert(
        "sub".into(),
        Value::from(app.subject(client, &checked.usager_id)),
    );
    claims::identity(
        &checked.identity,
        &grant.scopes,
        &grant.claims.userinfo,
        &mut c,
    );
    claims::delegation(
        &checked,
        grant.vocabulary,
        |id| app.subject(client, id),
        &mut c,
    );
    let (signing, encryption) = (
        client.userinfo_signed_response_alg,
        client.userinfo_encrypted_response_alg,
    );
    let res = |content_type: &str, body: String| {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::CONTENT_TYPE, content_type.to_string()))
            .body(body)
    };
    if signing.is_none() && encryption.is_none() {
        return Ok(res("application/json", Value::Object(c).to_string()));
    }
    // As a JWT (OIDC Core §5.3.2): signed, then encrypted, as the client registered.
    if signing.is_some() {
        c.insert("iss".into(), Value::from(app.issuer()));
        c.insert("aud".into(), Value::from(client.client_id.as_str()));
    }
    let body = jwt_for(&app, client, &c, signing, encryption).await?;
    Ok(res("application/jwt", body))
}
