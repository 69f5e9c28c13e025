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

use mandate_store::{Demarche, Vocabulary};

use crate::config::Client;
use crate::provider::error::OAuthError;
use crate::provider::params::Params;

/// What the rules after the redirect URI's yield.
pub struct Checked {
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub allowed: Vec<Demarche>,
    /// The vocabulary `rep_scope` answers in.
    pub vocabulary: Vocabulary,
    /// The lowest eIDAS level (1 to 3) the answer may carry.
    pub acr_min: mandate_store::Level,
}

/// The rules once the redirect URI is known, in order; also run on a pushed request.
pub fn authorization_request(client: &Client, params: &Params) -> Result<Checked, OAuthError> {
    for name in ["state", "nonce"] {
        if params.get(name).is_some_and(|v| v.len() > 512) {
            return Err(OAuthError::invalid_request(format!("{name} is too long")));
        }
    }
    response_type(params)?;
    let (scopes, code_challenge, prompt) = (scope(params)?, pkce(client, params)?, prompt(params)?);
    let (allowed, vocabulary) = rep_scope(client, params)?;
    Ok(Checked {
        scopes,
        code_challenge,
        prompt,
        allowed,
        vocabulary,
        acr_min: acr(client, params)?,
    })
}
