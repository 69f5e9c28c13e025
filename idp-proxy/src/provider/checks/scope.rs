//! Rule: `scope` contains `openid`; unknown scopes are ignored (OIDC Core §3.1.2.1), the
//! known ones are kept in a stable order.

use crate::provider::claims::SCOPES;
use crate::provider::error::{Code, OAuthError};
use crate::provider::params::Params;

pub fn scope(params: &Params) -> Result<Vec<String>, OAuthError> {
    let asked: Vec<&str> = params.get("scope").unwrap_or("").split(' ').collect();
    if !asked.contains(&"openid") {
        return Err(OAuthError::new(
            Code::InvalidScope,
            "scope must include openid",
        ));
    }
    Ok(SCOPES
        .iter()
        .filter(|s| asked.contains(s))
        .map(|s| s.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openid_is_required_and_unknown_scopes_dropped() {
        assert!(scope(&Params::parse(b"scope=email").unwrap()).is_err());
        let s = scope(&Params::parse(b"scope=email+openid+bogus").unwrap()).unwrap();
        assert_eq!(s, vec!["openid", "email"]);
    }
}
