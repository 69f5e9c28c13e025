//! The rules of the authorization endpoint, one per file, in the order `authorize` runs them.
//! The first two answer with a local page (no redirect is safe yet); the others return an
//! `OAuthError` that is sent back to the client.

pub mod acr;
mod client;
mod pkce;
mod prompt;
mod redirect_uri;
mod rep_scope;
mod response_type;
mod scope;

pub use acr::acr;
pub use client::client;
pub use pkce::{pkce, verify_pkce};
pub use prompt::{prompt, Prompt};
pub use redirect_uri::redirect_uri;
pub use rep_scope::rep_scope;
pub use response_type::response_type;
pub use scope::scope;

use mandate_store::Demarche;

use crate::config::Client;
use crate::provider::error::OAuthError;
use crate::provider::params::Params;

/// What the rules after the redirect URI's yield.
pub struct Checked {
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub allowed: Vec<Demarche>,
    pub acr_min: Option<u8>,
}

/// The rules once the redirect URI is known, in order; also run on a pushed request.
pub fn authorization_request(client: &Client, params: &Params) -> Result<Checked, OAuthError> {
    for name in ["state", "nonce"] {
        if params.get(name).is_some_and(|v| v.len() > 512) {
            return Err(OAuthError::invalid_request(format!("{name} is too long")));
        }
    }
    response_type(params)?;
    Ok(Checked {
        scopes: scope(params)?,
        code_challenge: pkce(client, params)?,
        prompt: prompt(params)?,
        allowed: rep_scope(client, params)?,
        acr_min: acr(client, params)?,
    })
}
