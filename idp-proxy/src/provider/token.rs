//! The token endpoint (RFC 6749 §4.1.3, OIDC Core §3.1.3): client authentication, then the
//! grant checks in order, then the mandate checked once more — a mandate revoked since the
//! choice gets `invalid_grant`. The code is read, and spent only in the last step, atomically
//! with storing its access token: a store failure on the way leaves it redeemable. A replayed
//! code fails and revokes what it issued.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use mandate_store::UseError;
use serde_json::{json, Map, Value};

use super::checks::verify_pkce;
use super::client_auth::authenticate;
use super::error::{Code, JsonError, OAuthError};
use super::keyspace::{access_token_key, code_key, redeem_claim_key};
use super::params::Params;
use super::records::{CodeGrant, Delegation};
use super::{claims, tokens, App, AppData};
use crate::config::Client;
use crate::ephemeral::{EphemeralError, EphemeralJson};

pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The parameters of a back-channel request (token, revocation, introspection, PAR): a form,
/// parsed as every protocol request is.
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    if !is_form(req) {
        return Err(OAuthError::invalid_request(
            "expected application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))
}

/// `claims` as a JWT for `client`: signed with `sign` (if any), then encrypted with `encrypt`
/// (if any) to the client's key; a signed JWT inside is marked `cty: JWT`.
pub async fn jwt_for(
    app: &App,
    client: &Client,
    claims: &Map<String, Value>,
    sign: Option<crate::config::SigningAlg>,
    encrypt: Option<crate::config::EncryptionAlg>,
) -> Result<String, OAuthError> {
    let body = match sign {
        Some(alg) => app.keys().sign(alg, claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            OAuthError::new(Code::ServerError, "signing failed")
        })?,
        None => Value::Object(claims.clone()).to_string(),
    };
    match encrypt {
        Some(alg) => encrypt_for(app, client, alg, body.as_bytes(), sign.is_some()).await,
        None => Ok(body),
    }
}

pub async fn token(
    req: HttpRequest,
    app: AppData,
    body: web::Bytes,
) -> Result<HttpResponse, JsonError> {
    let params = form_params(&req, &body)?;
    let client = authenticate(&req, &app, &params).await?;
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

    let access_token = app.keys().access_token_for(code);
    let key = code_key(&access_token);
    let Some(grant) = app.ephemeral.get_json::<CodeGrant>(&key).await? else {
        return Err(replayed(&app, &access_token).await?.into());
    };
    match redeem(&app, client, &params, &grant, &key, access_token).await {
        Ok(res) => Ok(res),
        Err(e) => {
            // A refused redemption spends the code. One that met a store failure leaves it
            // untouched: nothing was issued, and the client may retry within its lifetime.
            if e.code != Code::TemporarilyUnavailable {
                if let Err(store) = app.ephemeral.delete(&key).await {
                    tracing::warn!(error = %store, "refused code could not be spent");
                }
            }
            Err(e.into())
        }
    }
}

/// Unknown, expired or already used: if the code was redeemed, its access token is revoked
/// (RFC 6749 §4.1.2, RFC 9700 §4.5). Deleting a token that never existed is harmless.
async fn replayed(app: &App, access_token: &str) -> Result<OAuthError, OAuthError> {
    app.ephemeral
        .delete(&access_token_key(access_token))
        .await?;
    Ok(OAuthError::invalid_grant(
        "code is invalid, expired or already used",
    ))
}

/// The grant checks in order, the mandate once more, the ID token; then, in one atomic step,
/// the code spent and the access token stored.
async fn redeem(
    app: &App,
    client: &Client,
    params: &Params,
    grant: &CodeGrant,
    key: &str,
    access_token: String,
) -> Result<HttpResponse, OAuthError> {
    let delegation = &grant.delegation;
    if delegation.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "code was issued to another client",
        ));
    }
    if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    verify_pkce(grant.code_challenge.as_deref(), params.get("code_verifier"))?;

    let now = app.now();
    let checked = if grant.journal_at_token {
        journal_once(app, grant, &access_token, now).await?
    } else {
        check_mandate(app, delegation, now).await?
    };

    let at_ttl = client.access_token_ttl(&app.config.tokens);
    let id_token = id_token(app, client, grant, &checked, &access_token, now).await?;
    let issued = Delegation {
        issued_at: now,
        ..delegation.clone()
    };
    let spent = app
        .ephemeral
        .take_and_put(
            key,
            &access_token_key(&access_token),
            serde_json::to_vec(&issued).map_err(EphemeralError::from)?,
            at_ttl,
        )
        .await?;
    if !spent {
        // Redeemed meanwhile by a concurrent request: a replay.
        return Err(replayed(app, &access_token).await?);
    }

    tracing::info!(client = %client.client_id, demarche = delegation.demarche.as_str(), "tokens issued");
    crate::metrics::token_issued(&client.client_id, delegation.demarche.as_str());
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": at_ttl.as_secs(),
            "id_token": id_token,
            "scope": delegation.scopes.join(" "),
        })))
}

/// A silent code's use journaled by the first request to claim the code: a concurrent
/// request, or a retry after a failure that followed the entry, gets `invalid_grant` instead
/// of a second entry. The claim is released only if nothing was journaled.
async fn journal_once(
    app: &App,
    grant: &CodeGrant,
    access_token: &str,
    now: i64,
) -> Result<mandate_store::Grant, OAuthError> {
    let claim = redeem_claim_key(access_token);
    let ttl = app.config.tokens.code_ttl;
    if !app
        .ephemeral
        .put_if_absent(&claim, b"1".to_vec(), ttl)
        .await?
    {
        return Err(replayed(app, access_token).await?);
    }
    let recorded = record_use(app, &grant.delegation, now).await;
    if let Err(e) = &recorded {
        if e.code == Code::TemporarilyUnavailable {
            if let Err(e) = app.ephemeral.delete(&claim).await {
                tracing::warn!(error = %e, "redemption claim left to expire");
            }
        }
    }
    recorded
}

/// The use of a silently issued code, re-checked and journaled now that its client redeemed it.
async fn record_use(
    app: &App,
    d: &Delegation,
    now: i64,
) -> Result<mandate_store::Grant, OAuthError> {
    let use_ = d.as_use(None);
    let recorded = app.write(move |store| store.record_use(&use_, now)).await;
    refusal_as_grant_error(recorded)
}

/// A refusal is `invalid_grant`; a store failure, `temporarily_unavailable`.
fn refusal_as_grant_error(
    checked: Result<mandate_store::Grant, UseError>,
) -> Result<mandate_store::Grant, OAuthError> {
    match checked {
        Ok(c) => Ok(c),
        Err(UseError::Refused(r)) => {
            tracing::info!(reason = r.code(), "mandate refused at token or userinfo");
            crate::metrics::refused(r.code());
            Err(OAuthError::invalid_grant(format!(
                "the mandate no longer allows this: {r}"
            )))
        }
        Err(UseError::Store(e)) => Err(e.into()),
    }
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
        .await;
    refusal_as_grant_error(checked)
}

async fn id_token(
    app: &App,
    client: &Client,
    grant: &CodeGrant,
    checked: &mandate_store::Grant,
    access_token: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let mut c = Map::new();
    c.insert("iss".into(), Value::from(app.issuer()));
    c.insert(
        "sub".into(),
        Value::from(app.subject(client, &checked.usager_id)),
    );
    c.insert("aud".into(), Value::from(client.client_id.as_str()));
    c.insert("iat".into(), Value::from(now));
    c.insert(
        "exp".into(),
        Value::from(now + app.config.tokens.id_token_ttl.as_secs() as i64),
    );
    let delegation = &grant.delegation;
    c.insert("auth_time".into(), Value::from(delegation.auth_time));
    if !delegation.sid.is_empty() {
        // Per sector for pairwise clients, like `sub`: no cross-sector link.
        c.insert(
            "sid".into(),
            Value::from(app.subject(client, &delegation.sid)),
        );
    }
    if let Some(nonce) = &grant.nonce {
        c.insert("nonce".into(), Value::from(nonce.as_str()));
    }
    c.insert("acr".into(), Value::from(delegation.acr.as_str()));
    c.insert("at_hash".into(), Value::from(tokens::at_hash(access_token)));
    claims::identity(
        &checked.identity,
        &delegation.scopes,
        &delegation.claims.id_token,
        &mut c,
    );
    claims::delegation(
        checked,
        delegation.vocabulary,
        |id| app.subject(client, id),
        &mut c,
    );
    jwt_for(
        app,
        client,
        &c,
        Some(client.id_token_signed_response_alg),
        client.id_token_encrypted_response_alg,
    )
    .await
}

/// `payload` encrypted to the client's key. The client's keys unreachable means no answer
/// rather than one in clear.
async fn encrypt_for(
    app: &App,
    client: &Client,
    alg: crate::config::EncryptionAlg,
    payload: &[u8],
    nested_jwt: bool,
) -> Result<String, OAuthError> {
    let jwks = app.client_keys.get(client, None).await.map_err(|e| {
        tracing::warn!(client = %client.client_id, error = %e, "client encryption key unavailable");
        OAuthError::unavailable()
    })?;
    crate::keys::encrypt_to(&jwks, alg, payload, nested_jwt).map_err(|e| {
        tracing::warn!(client = %client.client_id, error = %e, "encryption to the client failed");
        OAuthError::new(
            Code::ServerError,
            "cannot encrypt to the client's registered key",
        )
    })
}
