//! Rule: the démarches a request allows are the client's, narrowed by a perimeter request
//! `claims={"id_token":{"rep_scope":{"essential":true,"values":[…]}}}`, which FranceConnect's
//! core sends to Aidants Connect with the service's perimeter in its own `DelegationScope`
//! strings (france-connect/sources, `core-fcp-aidants-connect-authorize.handler.ts`); our keys
//! are accepted too. No perimeter, or `values: []` (what FranceConnect sends for a service
//! without one, most of them), means no restriction. A value that names no démarche is
//! `invalid_request`, naming it; values the client does not serve are dropped, and none left
//! is `invalid_request`. The answer names the démarche in the vocabulary the request used, or
//! always in FranceConnect's for the FranceConnect client.

use mandate_store::{Demarche, Vocabulary};
use serde_json::Value;

use crate::config::Client;
use crate::provider::error::OAuthError;
use crate::provider::params::Params;

/// The démarches a request allows, and the vocabulary `rep_scope` answers in.
pub fn rep_scope(
    client: &Client,
    params: &Params,
) -> Result<(Vec<Demarche>, Vocabulary), OAuthError> {
    let forced = client.franceconnect.then_some(Vocabulary::FranceConnect);
    let unrestricted = Ok((client.demarches.clone(), forced.unwrap_or_default()));
    let Some(raw) = params.get("claims") else {
        return unrestricted;
    };
    let claims: Value = serde_json::from_str(raw)
        .map_err(|_| OAuthError::invalid_request("claims is not valid JSON"))?;
    if !claims.is_object() {
        return Err(OAuthError::invalid_request("claims must be a JSON object"));
    }
    let Some(rep) = claims
        .pointer("/id_token/rep_scope")
        .filter(|r| !r.is_null())
    else {
        return unrestricted;
    };
    // OIDC Core §5.5.1: `value` for one, `values` for several.
    let values: Vec<&Value> = match (rep.get("value"), rep.get("values")) {
        (None, None) => return unrestricted,
        (Some(one), None) => vec![one],
        (None, Some(Value::Array(many))) => many.iter().collect(),
        _ => {
            return Err(OAuthError::invalid_request(
                "rep_scope values must be an array of strings",
            ))
        }
    };
    if values.is_empty() {
        return unrestricted;
    }
    let mut asked = Vec::new();
    let mut vocabulary = Vocabulary::Keys;
    for v in values {
        let name = v.as_str().ok_or_else(|| {
            OAuthError::invalid_request("rep_scope values must be an array of strings")
        })?;
        let (d, named_in) = Demarche::from_either(name).map_err(|_| {
            // Named, as far as a person needs to recognise it: never a long echo of the input.
            let shown: String = name.chars().take(40).collect();
            OAuthError::invalid_request(format!("rep_scope value {shown} is not a known demarche"))
        })?;
        if named_in == Vocabulary::FranceConnect {
            vocabulary = Vocabulary::FranceConnect;
        }
        if !asked.contains(&d) {
            asked.push(d);
        }
    }
    let allowed: Vec<Demarche> = asked
        .into_iter()
        .filter(|d| client.demarches.contains(d))
        .collect();
    if allowed.is_empty() {
        return Err(OAuthError::invalid_request(
            "none of the rep_scope values is a demarche this client serves",
        ));
    }
    Ok((allowed, forced.unwrap_or(vocabulary)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::error::Code;

    fn client(franceconnect: bool) -> Client {
        let mut c: Client = serde_json::from_value(serde_json::json!({
            "client_id": "c", "redirect_uris": ["https://sp.example/cb"],
            "demarches": ["argent", "social", "logement"],
        }))
        .unwrap();
        c.franceconnect = franceconnect;
        c
    }

    fn ask(client: &Client, perimeter: Value) -> Result<(Vec<Demarche>, Vocabulary), OAuthError> {
        let claims = serde_json::json!({"id_token": {"rep_scope": perimeter}}).to_string();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("claims", &claims)
            .finish();
        rep_scope(client, &Params::parse(query.as_bytes()).unwrap())
    }

    #[test]
    fn franceconnect_strings_are_understood_and_answered_in_kind() {
        let perimeter =
            serde_json::json!({"essential": true, "values": ["Logement", "Social-Santé"]});
        assert_eq!(
            ask(&client(false), perimeter).unwrap(),
            (
                vec![Demarche::Logement, Demarche::Social],
                Vocabulary::FranceConnect
            )
        );
        let keys = serde_json::json!({"essential": true, "values": ["argent"]});
        assert_eq!(
            ask(&client(false), keys.clone()).unwrap(),
            (vec![Demarche::Argent], Vocabulary::Keys)
        );
        // The FranceConnect client always gets FranceConnect's strings.
        assert_eq!(
            ask(&client(true), keys).unwrap().1,
            Vocabulary::FranceConnect
        );
    }

    #[test]
    fn an_empty_or_absent_perimeter_restricts_nothing() {
        let all = vec![Demarche::Argent, Demarche::Social, Demarche::Logement];
        for rep in [
            serde_json::json!({"essential": true, "values": []}),
            serde_json::json!({"essential": true}),
            Value::Null,
        ] {
            assert_eq!(
                ask(&client(false), rep.clone()).unwrap(),
                (all.clone(), Vocabulary::Keys)
            );
            assert_eq!(
                ask(&client(true), rep).unwrap().1,
                Vocabulary::FranceConnect
            );
        }
        let none = Params::parse(b"scope=openid").unwrap();
        assert_eq!(rep_scope(&client(false), &none).unwrap().0, all);
    }

    #[test]
    fn unknown_values_are_named_and_unserved_ones_dropped() {
        let e = ask(
            &client(false),
            serde_json::json!({"values": ["Logement", "Impots"]}),
        )
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidRequest);
        assert!(e.description.contains("Impots"), "{}", e.description);
        // Justice is not served: dropped; Logement remains.
        assert_eq!(
            ask(
                &client(false),
                serde_json::json!({"values": ["Justice", "Logement"]})
            )
            .unwrap()
            .0,
            vec![Demarche::Logement]
        );
        let e = ask(&client(false), serde_json::json!({"values": ["Justice"]})).unwrap_err();
        assert_eq!(e.code, Code::InvalidRequest);
        let e = ask(&client(false), serde_json::json!({"values": "Logement"})).unwrap_err();
        assert_eq!(e.code, Code::InvalidRequest);
        assert_eq!(
            ask(
                &client(false),
                serde_json::json!({"value": "Argent-Impots-Consommation"})
            )
            .unwrap(),
            (vec![Demarche::Argent], Vocabulary::FranceConnect)
        );
    }
}
