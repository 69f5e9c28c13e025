//! Client authentication at the token, revocation and introspection endpoints: exactly one
//! method per request, and only the one the client registered. Secrets (basic, post) are
//! compared as SHA-256 in constant time; assertions (`private_key_jwt`, `client_secret_jwt`)
//! are checked as RFC 7523 §3 and OIDC Core §9 require: signature with the registered
//! algorithm only (never `none`, never HMAC keyed with a public key), `iss` = `sub` = the
//! client, `aud` naming us, bounded `exp`, and a `jti` used once (replay cache in the
//! ephemeral store, shared by every node).

use std::time::Duration;

use actix_web::http::header;
use actix_web::HttpRequest;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use base64::Engine;
use ring::digest::{digest, SHA256};
use serde_json::Value;

use super::error::{Code, OAuthError};
use super::limits::{self, Limit};
use super::params::Params;
use super::{tokens, App};
use crate::config::{Client, ClientAuth, SigningAlg};
use crate::keys::{hex, verify_with_jwks};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion may not be valid for longer than this: `exp` at most this far ahead.
const MAX_ASSERTION_LIFETIME: i64 = 600;
/// Clock difference tolerated with the client.
const SKEW: i64 = 60;

fn invalid_client(d: &str) -> OAuthError {
    OAuthError::new(Code::InvalidClient, d)
}

fn failed() -> OAuthError {
    invalid_client("client authentication failed")
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

/// The client this request authenticates, by the one method it registered, within its rate
/// limit (counted once authenticated: failures cannot lock a client out).
pub async fn authenticate<'a>(
    req: &HttpRequest,
    app: &'a App,
    params: &Params,
) -> Result<&'a Client, OAuthError> {
    let client = identify(req, app, params).await?;
    if let Some(after) = limits::over(app, Limit::Client, &client.client_id).await? {
        return Err(OAuthError::rate_limited(after));
    }
    Ok(client)
}

async fn identify<'a>(
    req: &HttpRequest,
    app: &'a App,
    params: &Params,
) -> Result<&'a Client, OAuthError> {
    let basic = basic_credentials(req)?;
    let secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let methods = [basic.is_some(), secret.is_some(), assertion.is_some()];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    if let Some(assertion) = assertion {
        return by_assertion(app, params, assertion).await;
    }
    let (id, secret, method) = match (basic, secret) {
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|c| c != id) {
                return Err(OAuthError::invalid_request("client_id does not match"));
            }
            (id, secret, ClientAuth::ClientSecretBasic)
        }
        (None, Some(secret)) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| invalid_client("client_id is required"))?;
            (
                id.to_string(),
                secret.to_string(),
                ClientAuth::ClientSecretPost,
            )
        }
        _ => return Err(invalid_client("client authentication is required")),
    };
    let presented = hex(digest(&SHA256, secret.as_bytes()).as_ref());
    let client = app.config.client(&id);
    let expected = client.map(|c| c.client_secret_sha256.to_ascii_lowercase());
    let matches = tokens::same(&presented, expected.as_deref().unwrap_or(""));
    match client {
        Some(c) if matches && c.token_endpoint_auth_method == method => Ok(c),
        _ => Err(failed()),
    }
}

/// A compact JWT's header and claims, before any verification.
fn peek(jwt: &str) -> Option<(Value, Value)> {
    let mut parts = jwt.split('.');
    let (h, p, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json =
        |part: &str| -> Option<Value> { serde_json::from_slice(&B64.decode(part).ok()?).ok() };
    Some((json(h)?, json(p)?))
}

async fn by_assertion<'a>(
    app: &'a App,
    params: &Params,
    assertion: &str,
) -> Result<&'a Client, OAuthError> {
    if params.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(OAuthError::invalid_request(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    if assertion.len() > 8192 {
        return Err(failed());
    }
    // Who the assertion says the client is; its signature then decides.
    let (head, claims) = peek(assertion).ok_or_else(failed)?;
    let text = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let iss = text(&claims, "iss").ok_or_else(failed)?;
    if text(&claims, "sub").as_deref() != Some(iss.as_str()) {
        return Err(invalid_client(
            "the assertion's iss and sub must both be the client_id",
        ));
    }
    if params.get("client_id").is_some_and(|c| c != iss) {
        return Err(invalid_client("client_id does not match the assertion"));
    }
    let client = app.config.client(&iss).ok_or_else(failed)?;
    if text(&head, "typ").is_some_and(|t| t.eq_ignore_ascii_case("oauth-authz-req+jwt")) {
        // A request object is not a client assertion (RFC 9101 §10.8).
        return Err(failed());
    }
    let alg = text(&head, "alg").unwrap_or_default();
    let registered = client.token_endpoint_auth_signing_alg.as_deref();
    let verified = match client.token_endpoint_auth_method {
        ClientAuth::PrivateKeyJwt => {
            let allowed: Vec<SigningAlg> = SigningAlg::ALL
                .into_iter()
                .filter(|a| registered.is_none_or(|r| r == a.as_str()))
                .collect();
            let kid = text(&head, "kid");
            let jwks = app
                .client_keys
                .get(client, kid.as_deref())
                .await
                .map_err(|e| {
                    tracing::warn!(client = %client.client_id, error = %e, "client keys unavailable");
                    failed()
                })?;
            verify_with_jwks(assertion, &jwks, &allowed).is_some()
        }
        ClientAuth::ClientSecretJwt => alg == "HS256" && hmac_ok(client, assertion),
        // The client registered a secret method: an assertion is not its method.
        _ => false,
    };
    if !verified {
        return Err(failed());
    }
    check_claims(app, client, &claims).await?;
    Ok(client)
}

/// HS256 over the signing input, keyed with the client's shared secret.
fn hmac_ok(client: &Client, jwt: &str) -> bool {
    let Some(secret) = &client.client_secret else {
        return false;
    };
    let Some((input, sig)) = jwt.rsplit_once('.') else {
        return false;
    };
    let Ok(sig) = B64.decode(sig) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, input.as_bytes(), &sig).is_ok()
}

/// RFC 7523 §3: audience, lifetime, and a `jti` never seen before from this client.
async fn check_claims(app: &App, client: &Client, claims: &Value) -> Result<(), OAuthError> {
    let issuer = app.issuer();
    // The issuer or the token endpoint (RFC 7523 §3), nothing else: an assertion made for
    // another audience is not replayable here.
    let token_endpoint = format!("{issuer}/token");
    let ours = |a: &str| a == issuer || a == token_endpoint;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => ours(a),
        Some(Value::Array(list)) => list.iter().filter_map(|a| a.as_str()).any(ours),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(
            "the assertion's aud must be this issuer or its token endpoint",
        ));
    }
    let now = app.now();
    let time = |k: &str| claims.get(k).and_then(|v| v.as_i64());
    let exp = time("exp").ok_or_else(|| invalid_client("the assertion has no exp"))?;
    if exp <= now - SKEW {
        return Err(invalid_client("the assertion has expired"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME {
        return Err(invalid_client("the assertion lives too long (exp)"));
    }
    if ["iat", "nbf"]
        .iter()
        .any(|k| time(k).is_some_and(|t| t > now + SKEW))
    {
        return Err(invalid_client("the assertion is not valid yet"));
    }
    let jti = claims
        .get("jti")
        .and_then(|j| j.as_str())
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| invalid_client("the assertion has no jti"))?;
    let key = super::keyspace::Space::AssertionJti.hashed(&format!("{}\0{jti}", client.client_id));
    let ttl = Duration::from_secs((exp - now + SKEW).max(1) as u64);
    let first = app
        .ephemeral
        .put_if_absent(&key, Vec::new(), ttl)
        .await
        .map_err(|_| OAuthError::unavailable())?;
    if !first {
        return Err(invalid_client("the assertion was already used (jti)"));
    }
    Ok(())
}
