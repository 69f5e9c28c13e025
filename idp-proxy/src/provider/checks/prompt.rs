//! Rule: `prompt` (OIDC Core §3.1.2.1) and `max_age`. `none` is answered without any page
//! (see `authorize`): only for the same usager and démarche the aidant chose for this client
//! in this session, re-checked and journaled. `login` (and a `max_age` older than the
//! session) forces a fresh upstream login. `none` with anything else is invalid.

use crate::provider::error::OAuthError;
use crate::provider::params::Params;

#[derive(Debug, Default, PartialEq)]
pub struct Prompt {
    pub none: bool,
    pub force_login: bool,
    pub max_age: Option<i64>,
}

pub fn prompt(params: &Params) -> Result<Prompt, OAuthError> {
    let values: Vec<&str> = params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    for v in &values {
        if !["none", "login", "consent", "select_account"].contains(v) {
            return Err(OAuthError::invalid_request("unsupported prompt value"));
        }
    }
    let none = values.contains(&"none");
    if none && values.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative integer")
        })?),
    };
    Ok(Prompt {
        none,
        force_login: values.contains(&"login") || max_age == Some(0),
        max_age,
    })
}
