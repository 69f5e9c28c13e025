//! Discovery (OIDC Discovery §3) and JWKS, serialised once at start-up: they advertise
//! exactly what the code supports.

use actix_web::http::header;
use actix_web::HttpResponse;
use serde_json::json;

use super::claims::{CLAIMS_SUPPORTED, SCOPES};
use super::AppData;
use crate::config::{ClientAuth, Config, EncryptionAlg, SigningAlg, CONTENT_ENCRYPTION};

pub fn document(config: &Config) -> String {
    let i = &config.server.issuer;
    let signing: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    let encryption: Vec<&str> = EncryptionAlg::ALL.iter().map(|a| a.as_str()).collect();
    let auth_methods: Vec<&str> = ClientAuth::ALL.iter().map(|a| a.as_str()).collect();
    let assertion_algs: Vec<&str> = signing.iter().copied().chain(["HS256"]).collect();
    json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "end_session_endpoint": format!("{i}/end_session"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "revocation_endpoint": format!("{i}/revoke"),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint": format!("{i}/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": signing,
        "id_token_encryption_alg_values_supported": encryption,
        "id_token_encryption_enc_values_supported": [CONTENT_ENCRYPTION],
        "userinfo_signing_alg_values_supported": signing,
        "userinfo_encryption_alg_values_supported": encryption,
        "userinfo_encryption_enc_values_supported": [CONTENT_ENCRYPTION],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claims_parameter_supported": true,
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": signing,
        "request_uri_parameter_supported": false,
        "pushed_authorization_request_endpoint": format!("{i}/par"),
        "require_pushed_authorization_requests": false,
        "acr_values_supported": mandate_store::Level::NAMES,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["fr"],
        "claims_locales_supported": ["fr"],
    })
    .to_string()
}

pub async fn configuration(app: AppData) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(app.discovery_json.clone())
}

pub async fn jwks(app: AppData) -> HttpResponse {
    let max_age = app.config.keys.jwks_max_age.as_secs();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jwk-set+json"))
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .body(app.keys().jwks_json().to_string())
}
