//! Rule: the démarches a request allows are the client's, narrowed by FranceConnect's
//! perimeter request `claims={"id_token":{"rep_scope":{"essential":true,"values":[…]}}}`.
//! A value that is not a démarche, or one the client does not serve, is `invalid_request`.

use mandate_store::Demarche;

use crate::config::Client;
use crate::provider::error::OAuthError;
use crate::provider::params::Params;

pub fn rep_scope(client: &Client, params: &Params) -> Result<Vec<Demarche>, OAuthError> {
    let Some(raw) = params.get("claims") else {
        return Ok(client.demarches.clone());
    };
    let claims: serde_json::Value = serde_json::from_str(raw)
        .map_err(|_| OAuthError::invalid_request("claims is not valid JSON"))?;
    if !claims.is_object() {
        return Err(OAuthError::invalid_request("claims must be a JSON object"));
    }
    let Some(rep) = claims.pointer("/id_token/rep_scope") else {
        return Ok(client.demarches.clone());
    };
    let Some(values) = rep.get("values") else {
        return Ok(client.demarches.clone());
    };
    let values = values
        .as_array()
        .ok_or_else(|| OAuthError::invalid_request("rep_scope values must be an array"))?;
    let mut allowed = Vec::new();
    for v in values {
        let d: Demarche = v
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| OAuthError::invalid_request("rep_scope names an unknown demarche"))?;
        if !client.demarches.contains(&d) {
            return Err(OAuthError::invalid_request(format!(
                "rep_scope value {d} is not served by this client"
            )));
        }
        if !allowed.contains(&d) {
            allowed.push(d);
        }
    }
    Ok(allowed)
}
