//! Rule: PKCE with S256 (RFC 7636, RFC 9700 §2.1.1): a 43-character base64url challenge;
//! `plain` is refused. A client may be configured without PKCE, never with `plain`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::digest::{digest, SHA256};

use crate::config::Client;
use crate::provider::error::OAuthError;
use crate::provider::params::Params;
use crate::provider::tokens::same;

pub fn pkce(client: &Client, params: &Params) -> Result<Option<String>, OAuthError> {
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method");
    match (challenge, method) {
        (None, None) if !client.pkce_required => Ok(None),
        (None, _) => Err(OAuthError::invalid_request(
            "code_challenge is required (PKCE S256)",
        )),
        (Some(_), Some(m)) if m != "S256" => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
        (Some(c), Some(_)) => {
            if c.len() != 43 || B64.decode(c).is_err() {
                return Err(OAuthError::invalid_request(
                    "code_challenge must be a base64url SHA-256",
                ));
            }
            Ok(Some(c.to_string()))
        }
    }
}

/// At the token endpoint: the verifier is 43–128 unreserved characters and hashes to the
/// challenge.
pub fn verify_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant("code_verifier was not expected")),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(c), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = B64.encode(digest(&SHA256, v.as_bytes()));
            if well_formed && same(&computed, c) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("code_verifier does not match"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_verifier_matches() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify_pkce(Some(c), Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).is_ok());
        assert!(verify_pkce(Some(c), Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX")).is_err());
        assert!(verify_pkce(Some(c), None).is_err());
    }
}
