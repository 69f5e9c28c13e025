//! What the tokens say: the usager's identity claims per scope (FranceConnect's "identité
//! pivot"), `acr`, `rep_scope`, `mandate`, and the RFC 8693 `act` claim naming the aidant.
//! `act` is written last and from the mandate store only: no request parameter and no
//! upstream claim reaches it.

use mandate_store::{Grant as StoreGrant, Identity, Vocabulary};
use serde_json::{json, Map, Value};

/// Scopes we know, in the order discovery lists them. `profile`, `birth` and
/// `identite_pivot` are FranceConnect's groups.
pub const SCOPES: [&str; 12] = [
    "openid",
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "birthplace",
    "birthcountry",
    "email",
    "preferred_username",
    "profile",
    "birth",
    "identite_pivot",
];

pub const CLAIMS_SUPPORTED: [&str; 19] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "birthplace",
    "birthcountry",
    "email",
    "preferred_username",
    "act",
    "rep_scope",
    "mandate",
];

/// Which scopes release a claim.
fn granted(claim: &str, scopes: &[String]) -> bool {
    let by: &[&str] = match claim {
        "given_name" | "family_name" | "gender" => &["profile", "identite_pivot"],
        // FranceConnect's `birth` scope is birthplace and birthcountry only
        // (france-connect/sources `back/libs/scopes/src/data/fcp-low/fcp-low.scopes.ts`).
        "birthdate" => &["profile", "identite_pivot"],
        "birthplace" | "birthcountry" => &["birth", "identite_pivot"],
        "preferred_username" => &["profile"],
        _ => &[],
    };
    scopes
        .iter()
        .any(|s| s == claim || by.contains(&s.as_str()))
}

/// The identity claims a `claims` request parameter names for `target` (`id_token` or
/// `userinfo`), essential or voluntary (OIDC Core §5.5); names we do not hold are ignored.
pub fn requested(params_claims: Option<&str>, target: &str) -> Vec<String> {
    let Some(request) = params_claims.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
        return Vec::new();
    };
    request
        .get(target)
        .and_then(|t| t.as_object())
        .into_iter()
        .flat_map(|t| t.keys())
        .filter(|k| IDENTITY_CLAIMS.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// The identity claims held for a usager.
const IDENTITY_CLAIMS: [&str; 8] = [
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "birthplace",
    "birthcountry",
    "email",
    "preferred_username",
];

/// The usager's claims the scopes grant, or the `claims` parameter asked for (`asked`); an
/// absent value (birthplace abroad) stays absent.
pub fn identity(
    identity: &Identity,
    scopes: &[String],
    asked: &[String],
    out: &mut Map<String, Value>,
) {
    let fields: [(&str, Option<&String>); 8] = [
        ("given_name", Some(&identity.given_name)),
        ("family_name", Some(&identity.family_name)),
        ("birthdate", Some(&identity.birthdate)),
        ("gender", Some(&identity.gender)),
        ("birthplace", identity.birthplace.as_ref()),
        ("birthcountry", Some(&identity.birthcountry)),
        ("email", identity.email.as_ref()),
        ("preferred_username", identity.preferred_username.as_ref()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            if granted(name, scopes) || asked.iter().any(|a| a == name) {
                out.insert(name.into(), Value::String(v.clone()));
            }
        }
    }
}

/// `rep_scope` (the démarche, in the vocabulary the client asked in), `mandate` and, last,
/// `act`: the same in the ID token, at userinfo and at introspection. `seen` gives an id as
/// the client sees it (itself, or pairwise: then neither the aidant nor the mandate can link
/// two sectors either).
pub fn delegation(
    grant: &StoreGrant,
    vocabulary: Vocabulary,
    seen: impl Fn(&str) -> String,
    out: &mut Map<String, Value>,
) {
    let expires = chrono::DateTime::from_timestamp(grant.mandate_expires_at, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    out.insert(
        "rep_scope".into(),
        json!([grant.demarche.name_in(vocabulary)]),
    );
    out.insert(
        "mandate".into(),
        json!({"id": seen(&grant.mandate_id), "demarche": grant.demarche.as_str(), "expires_at": expires}),
    );
    out.insert(
        "act".into(),
        json!({
            "sub": seen(&grant.aidant.id),
            "given_name": grant.aidant.given_name,
            "family_name": grant.aidant.family_name,
            "organisation": {"siret": grant.organisation.siret, "name": grant.organisation.name},
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn michel() -> Identity {
        Identity {
            given_name: "Michel".into(),
            family_name: "DUPONT".into(),
            birthdate: "1962-08-24".into(),
            gender: "male".into(),
            birthplace: None,
            birthcountry: "99100".into(),
            email: Some("m@example.org".into()),
            preferred_username: None,
        }
    }

    #[test]
    fn scopes_release_only_their_claims() {
        let mut out = Map::new();
        identity(
            &michel(),
            &["openid".into(), "given_name".into()],
            &[],
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out["given_name"], "Michel");
    }

    #[test]
    fn birth_releases_birthplace_and_birthcountry_only() {
        let mut born = michel();
        born.birthplace = Some("79191".into());
        let mut out = Map::new();
        identity(&born, &["openid".into(), "birth".into()], &[], &mut out);
        let mut names: Vec<&str> = out.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["birthcountry", "birthplace"]);
    }

    #[test]
    fn identite_pivot_releases_the_pivot_but_not_email_and_absent_birthplace_stays_absent() {
        let mut out = Map::new();
        identity(
            &michel(),
            &["openid".into(), "identite_pivot".into()],
            &[],
            &mut out,
        );
        for c in [
            "given_name",
            "family_name",
            "birthdate",
            "gender",
            "birthcountry",
        ] {
            assert!(out.contains_key(c), "{c}");
        }
        assert!(!out.contains_key("birthplace"));
        assert!(!out.contains_key("email"));
    }
}
