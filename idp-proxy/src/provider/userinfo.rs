//! The userinfo endpoint (OIDC Core §5.3): Bearer header only (RFC 6750 §2.1), the claims
//! the scopes granted, and the same `act`, `rep_scope` and `mandate` as the ID token. A
//! revoked mandate or a revoked token gets 401 `invalid_token`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::error::{Code, JsonError, OAuthError};
use super::records::{access_token_key, Delegation};
use super::token::check_mandate;
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
    let mut c = Map::new();
    c.insert("sub".into(), Value::from(checked.usager_id.as_str()));
    claims::identity(&checked.identity, &grant.scopes, &mut c);
    claims::delegation(&checked, &mut c);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(c))
}
