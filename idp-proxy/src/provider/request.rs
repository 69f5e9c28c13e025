//! Authorization requests that do not travel in the URL as they are: signed request objects
//! (`request`, RFC 9101 / OIDC Core §6.1) and pushed authorization requests (RFC 9126, PAR).
//! Either way the parameters `authorize` checks are the ones the client signed or pushed
//! itself, never ones added on the way.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client_auth::authenticate;
use super::error::{Code, JsonError, OAuthError};
use super::params::Params;
use super::token::form_params;
use super::{checks, tokens, App, AppData};
use crate::config::{Client, SigningAlg};
use crate::ephemeral::EphemeralJson;
use crate::keys::verify_with_jwks;

/// `request_uri` values we give out: `urn:ietf:params:oauth:request_uri:<random>`.
const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request waits for the browser (RFC 9126 §2.2: short).
const PUSHED_TTL: Duration = Duration::from_secs(60);
/// The furthest ahead a request object may expire.
const MAX_OBJECT_LIFETIME: i64 = 3600;

/// A pushed authorization request. Key: `par:{sha256(request_uri)}`. Single use.
#[derive(Debug, Serialize, Deserialize)]
struct Pushed {
    client_id: String,
    params: HashMap<String, String>,
}

fn invalid_object(d: &str) -> OAuthError {
    OAuthError::new(Code::InvalidRequestObject, d)
}

/// The parameters of a signed request object, checked against `client` (RFC 9101 §6): a
/// signature by one of its keys with an asymmetric algorithm (unsigned objects are not
/// supported), `iss` = the client, `aud` = us, not expired.
pub async fn open_object(app: &App, client: &Client, jwt: &str) -> Result<Params, OAuthError> {
    let mut parts = jwt.split('.');
    let header = parts
        .next()
        .and_then(|h| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .ok_or_else(|| invalid_object("request is not a JWT"))?;
    let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("none");
    if alg == "none" {
        return Err(OAuthError::new(
            Code::RequestNotSupported,
            "unsigned request objects are not supported",
        ));
    }
    let kid = header.get("kid").and_then(|k| k.as_str());
    let jwks =
        app.client_keys.get(client, kid).await.map_err(|_| {
            invalid_object("the client has no usable keys to verify request objects")
        })?;
    let claims = verify_with_jwks(jwt, &jwks, &SigningAlg::ALL)
        .ok_or_else(|| invalid_object("request object signature not verified"))?;
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str());
    if text("iss") != Some(client.client_id.as_str()) {
        return Err(invalid_object("request object iss must be the client_id"));
    }
    let issuer = app.issuer();
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a == issuer),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_object("request object aud must be this issuer"));
    }
    let now = app.now();
    match claims.get("exp").and_then(|e| e.as_i64()) {
        Some(exp) if exp > now && exp <= now + MAX_OBJECT_LIFETIME => {}
        _ => {
            return Err(invalid_object(
                "request object expired, or exp missing or too far",
            ))
        }
    }
    if text("client_id").is_some_and(|c| c != client.client_id) {
        return Err(invalid_object("request object client_id does not match"));
    }
    // Shaped like a client assertion (sub = client_id) it could be replayed as one: refused
    // (RFC 9101 §10.8); and client assertions refuse this object's `typ`.
    if text("sub") == Some(client.client_id.as_str()) {
        return Err(invalid_object(
            "request object sub must not be the client_id",
        ));
    }
    // Used once when it names itself (`jti`): a request object seen in a URL is not replayed.
    if let Some(jti) = text("jti") {
        let key = format!(
            "ro:{}",
            tokens::sha256_b64(&format!("{}\0{jti}", client.client_id))
        );
        let ttl = Duration::from_secs((exp_of(&claims) - now).max(1) as u64);
        if !app.ephemeral.put_if_absent(&key, Vec::new(), ttl).await? {
            return Err(invalid_object("request object already used (jti)"));
        }
    }
    // Its members are the request's parameters; objects (claims) travel as JSON text.
    let mut map = HashMap::new();
    for (k, v) in claims.as_object().into_iter().flatten() {
        if [
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "request",
            "request_uri",
        ]
        .contains(&k.as_str())
        {
            continue;
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Object(_) | Value::Array(_) => v.to_string(),
            _ => continue,
        };
        map.insert(k.clone(), value);
    }
    map.insert("client_id".into(), client.client_id.clone());
    Params::from_map(map).map_err(|e| invalid_object(&e.to_string()))
}

fn exp_of(claims: &Value) -> i64 {
    claims.get("exp").and_then(|e| e.as_i64()).unwrap_or(0)
}

/// The pushed request named by `request_uri`, taken once, if `client` pushed it.
pub async fn take_pushed(app: &App, client: &Client, uri: &str) -> Result<Params, OAuthError> {
    let invalid = || {
        OAuthError::new(
            Code::InvalidRequestUri,
            "request_uri is unknown, expired, already used or another client's",
        )
    };
    if !uri.starts_with(REQUEST_URI_PREFIX) {
        // Request objects by reference are not fetched: only our own pushed requests.
        return Err(OAuthError::new(
            Code::RequestUriNotSupported,
            "only request_uri values from the pushed authorization request endpoint",
        ));
    }
    if uri.len() > 128 {
        return Err(invalid());
    }
    let pushed: Pushed = app
        .ephemeral
        .take_json_if(&super::keyspace::Space::Pushed.hashed(uri), |p: &Pushed| {
            p.client_id == client.client_id
        })
        .await?
        .ok_or_else(invalid)?;
    Params::from_map(pushed.params).map_err(|_| invalid())
}

/// `POST /par` (RFC 9126): the client authenticates as at the token endpoint and pushes its
/// authorization request; it gets a single-use `request_uri` for the browser, valid 60 s.
pub async fn push(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, JsonError> {
    let params = form_params(&req, &body)?;
    let client = authenticate(&req, &app, &params).await?;
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed").into());
    }
    let mut map = match params.get("request") {
        Some(jwt) => open_object(&app, client, jwt).await?.into_map(),
        None => params.into_map(),
    };
    for auth in ["client_secret", "client_assertion", "client_assertion_type"] {
        map.remove(auth);
    }
    map.insert("client_id".into(), client.client_id.clone());
    // What can be checked without the browser is checked now (RFC 9126 §2.1): the client
    // hears of a bad request from this answer, not from its user's browser.
    let redirect_ok = map
        .get("redirect_uri")
        .is_some_and(|r| client.redirect_uris.iter().any(|u| u == r));
    if !redirect_ok {
        return Err(
            OAuthError::invalid_request("redirect_uri is missing or not registered").into(),
        );
    }
    let pushed_params =
        Params::from_map(map.clone()).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    checks::authorization_request(client, &pushed_params)?;
    let uri = format!("{REQUEST_URI_PREFIX}{}", tokens::random());
    let pushed = Pushed {
        client_id: client.client_id.clone(),
        params: map,
    };
    app.ephemeral
        .put_json(
            &super::keyspace::Space::Pushed.hashed(&uri),
            &pushed,
            PUSHED_TTL,
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "request_uri": uri, "expires_in": PUSHED_TTL.as_secs() })))
}
