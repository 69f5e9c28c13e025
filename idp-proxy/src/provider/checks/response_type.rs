//! Rule: only the authorization code flow (`response_type=code`); `response_mode`, if sent,
//! must be `query`, the only mode offered.

use crate::provider::error::{Code, OAuthError};
use crate::provider::params::Params;

pub fn response_type(params: &Params) -> Result<(), OAuthError> {
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some(_) => {
            return Err(OAuthError::new(
                Code::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    match params.get("response_mode") {
        None | Some("query") => Ok(()),
        Some(_) => Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )),
    }
}
