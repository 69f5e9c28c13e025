//! Rule: eIDAS levels (`acr`). A client asks for levels with `acr_values`, or with the
//! `claims` parameter's `id_token.acr` (essential), or registers `default_acr_values`; the
//! lowest known level asked is the minimum, and never below the lowest of the client's
//! `allowed_acr` (eidas1 when unset): every answer carries an `acr`, as FranceConnect's core
//! requires of an identity provider (`TokenResultDto`: `acr` required). What is returned is
//! what was really reached — the lower of the aidant's upstream login level and the level the
//! usager logged in with when giving the mandate — capped at the highest `allowed_acr`, and
//! never below that minimum: otherwise `unmet_authentication_requirements`. Asking only
//! unknown values, or more than the client accepts, fails at once, before any page.

use mandate_store::Level;

use crate::config::Client;
use crate::provider::error::{Code, OAuthError};
use crate::provider::params::Params;

pub fn unmet(description: &str) -> OAuthError {
    OAuthError::new(Code::UnmetAuthenticationRequirements, description)
}

/// The minimum level this request requires.
pub fn acr(client: &Client, params: &Params) -> Result<Level, OAuthError> {
    let essential: Option<Vec<String>> = params
        .get("claims")
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw).ok())
        .and_then(|c| c.pointer("/id_token/acr").cloned())
        .filter(|acr| acr.get("essential").and_then(|e| e.as_bool()) == Some(true))
        .map(|acr| {
            let one = acr
                .get("value")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let many = acr
                .get("values")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_else(Vec::new);
            one.into_iter().chain(many).collect()
        });
    // Each value asked, as a level if it is one (unknown values count for nothing).
    let asked: Vec<Option<Level>> = match (essential, params.get("acr_values")) {
        (Some(values), _) if !values.is_empty() => values
            .iter()
            .filter(|v| !v.is_empty())
            .map(|v| Level::named(v))
            .collect(),
        (_, Some(values)) => values
            .split(' ')
            .filter(|v| !v.is_empty())
            .map(Level::named)
            .collect(),
        _ => client
            .default_acr_values
            .iter()
            .flatten()
            .copied()
            .map(Some)
            .collect(),
    };
    let (lowest, highest) = client.acr_range();
    if asked.is_empty() {
        return Ok(lowest);
    }
    let min = asked
        .into_iter()
        .flatten()
        .min()
        .ok_or_else(|| unmet("none of the requested acr values is offered"))?;
    if min > highest {
        return Err(unmet(&format!("this client accepts {highest} at most")));
    }
    Ok(min.max(lowest))
}

/// The level an answer states: what was `reached`, capped at the client's highest; `None`
/// if nothing was reached or it is below `min` (the request cannot be answered).
pub fn stated(client: &Client, reached: Option<Level>, min: Level) -> Option<Level> {
    let level = reached?.min(client.acr_range().1);
    (level >= min).then_some(level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    fn client(default: Option<&[&str]>) -> Client {
        let mut c: Client = serde_json::from_value(serde_json::json!({
            "client_id": "c", "redirect_uris": ["https://sp.example/cb"], "demarches": [],
        }))
        .unwrap();
        c.default_acr_values = default.map(|d| d.iter().map(|s| s.parse().unwrap()).collect());
        c
    }

    #[test]
    fn the_lowest_known_level_asked_is_the_minimum() {
        let p = |q: &str| Params::parse(q.as_bytes()).unwrap();
        // Nothing asked: still eidas1, so that every answer states a level.
        assert_eq!(acr(&client(None), &p("")).unwrap(), Eidas1);
        assert_eq!(
            acr(&client(None), &p("acr_values=eidas2+eidas3")).unwrap(),
            Eidas2
        );
        assert_eq!(
            acr(&client(None), &p("acr_values=eidas3+unknown")).unwrap(),
            Eidas3
        );
        assert_eq!(
            acr(&client(None), &p("acr_values=urn:unknown"))
                .unwrap_err()
                .code,
            Code::UnmetAuthenticationRequirements
        );
        assert_eq!(acr(&client(Some(&["eidas2"])), &p("")).unwrap(), Eidas2);
        let claims = r#"claims={"id_token":{"acr":{"essential":true,"values":["eidas3"]}}}"#;
        assert_eq!(
            acr(&client(None), &p(&format!("acr_values=eidas1&{claims}"))).unwrap(),
            Eidas3
        );
    }

    #[test]
    fn allowed_acr_bounds_what_is_asked_and_what_is_stated() {
        let p = |q: &str| Params::parse(q.as_bytes()).unwrap();
        let mut fc = client(None);
        fc.allowed_acr = Some(vec![Eidas1]);
        assert_eq!(acr(&fc, &p("acr_values=eidas1")).unwrap(), Eidas1);
        // FranceConnect registered eidas1 only: eidas2 cannot be answered, said at once.
        assert_eq!(
            acr(&fc, &p("acr_values=eidas2")).unwrap_err().code,
            Code::UnmetAuthenticationRequirements
        );
        // Reached more than it accepts: the answer states its highest level.
        assert_eq!(stated(&fc, Some(Eidas2), Eidas1), Some(Eidas1));
        let mut high = client(None);
        high.allowed_acr = Some(vec![Eidas2, Eidas3]);
        assert_eq!(acr(&high, &p("acr_values=eidas1")).unwrap(), Eidas2);
        assert_eq!(stated(&high, Some(Eidas1), Eidas2), None);
        assert_eq!(stated(&high, Some(Eidas3), Eidas2), Some(Eidas3));
        assert_eq!(stated(&client(None), None, Eidas1), None);
    }
}
