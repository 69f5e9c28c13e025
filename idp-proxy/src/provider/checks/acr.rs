//! Rule: `acr_values` (OIDC Core §3.1.2.1). The level returned is the one this deployment
//! really reaches; a request that only accepts higher eIDAS levels fails with
//! `access_denied` rather than receive a lower `acr`. Values we do not know are ignored.

use crate::provider::error::{Code, OAuthError};
use crate::provider::params::Params;

fn eidas_level(acr: &str) -> Option<u8> {
    match acr {
        "eidas1" => Some(1),
        "eidas2" => Some(2),
        "eidas3" => Some(3),
        _ => None,
    }
}

pub fn acr(reached: &str, params: &Params) -> Result<String, OAuthError> {
    let Some(values) = params.get("acr_values") else {
        return Ok(reached.to_string());
    };
    let ours = eidas_level(reached).unwrap_or(0);
    let asked: Vec<u8> = values.split(' ').filter_map(eidas_level).collect();
    if !asked.is_empty() && asked.iter().all(|l| *l > ours) {
        return Err(OAuthError::new(
            Code::AccessDenied,
            "the requested acr level cannot be reached",
        ));
    }
    Ok(reached.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_level_than_reached_is_refused_never_downgraded() {
        let p = Params::parse(b"acr_values=eidas2").unwrap();
        assert_eq!(acr("eidas1", &p).unwrap_err().code, Code::AccessDenied);
        let p = Params::parse(b"acr_values=eidas1+eidas2").unwrap();
        assert_eq!(acr("eidas1", &p).unwrap(), "eidas1");
    }
}
