//! What FranceConnect requires of the configuration, in both of idp-proxy's parts: as its
//! relying party (`[upstream.franceconnect]`, where usagers log in to give a mandate) and as
//! one of its identity providers (a `[[clients]]` entry with `franceconnect = true`). The rules
//! come from FranceConnect's source (`../shared/FRANCECONNECT.md` in the steering repo):
//! `client_secret_post`, asymmetric signatures pinned to the registered algorithm, a signed
//! userinfo, `acr_values` asked and checked; `allowed_acr` as FranceConnect records it.

use super::checks::Problems;
use super::{AuthMethod, Client, ClientAuth, Config, SigningAlg, UpstreamIdp};
use mandate_store::Level;

impl UpstreamIdp {
    /// FranceConnect v2's relying-party defaults for what the section leaves unset.
    pub(super) fn apply_franceconnect_profile(&mut self) {
        self.token_endpoint_auth_method
            .get_or_insert(AuthMethod::ClientSecretPost);
        self.id_token_signed_response_alg
            .get_or_insert(SigningAlg::ES256);
        self.userinfo_signed_response_alg
            .get_or_insert(SigningAlg::ES256);
        // The identity provider's own birth date, possibly presumed, which FranceConnect checks
        // when idp-proxy answers it as an identity provider.
        if !self.scopes.iter().any(|s| s == "idp_birthdate") {
            self.scopes.push("idp_birthdate".into());
        }
    }

    /// How we authenticate at its token endpoint.
    pub fn auth_method(&self) -> AuthMethod {
        self.token_endpoint_auth_method.unwrap_or_default()
    }

    /// The eIDAS levels its `acr_values` (as `acr_levels` maps them) can reach, highest first.
    fn highest_level(&self) -> Option<Level> {
        let values = self.acr_values.as_deref().unwrap_or_default();
        let asked = values.split(' ').filter_map(|a| self.level_of(a));
        asked.chain(self.acr_levels.values().copied()).max()
    }

    /// The eIDAS level an `acr` of this provider stands for (`acr_levels`, or itself).
    pub fn level_of(&self, acr: &str) -> Option<Level> {
        self.acr_levels
            .get(acr)
            .copied()
            .or_else(|| Level::named(acr))
    }
}

/// A client with `franceconnect = true` as FranceConnect's core calls its identity
/// providers: `client_secret_post`, no PKCE (it sends none), and `allowed_acr` recorded.
/// FranceConnect's registration takes any algorithm (its fixtures mostly HS256, keyed with
/// the shared secret); idp-proxy signs asymmetrically only, ES256 or RS256, the ones
/// FranceConnect's documentation names: Aidants Connect is registered with one of them.
pub(super) fn check_franceconnect_client(
    c: &Client,
    key: &dyn Fn(&str) -> String,
    p: &mut Problems,
) {
    if !c.franceconnect {
        return;
    }
    let named = |a: SigningAlg| matches!(a, SigningAlg::ES256 | SigningAlg::RS256);
    let rules = [
            (
                c.token_endpoint_auth_method != ClientAuth::ClientSecretPost,
                "token_endpoint_auth_method",
                "FranceConnect's core authenticates with client_secret_post",
                "set token_endpoint_auth_method = \"client_secret_post\"",
            ),
            (
                c.pkce_required,
                "pkce_required",
                "FranceConnect's core sends no PKCE: every request would be refused",
                "set pkce_required = false",
            ),
            (
                !named(c.id_token_signed_response_alg),
                "id_token_signed_response_alg",
                "FranceConnect's documentation names ES256 and RS256",
                "register Aidants Connect at FranceConnect with ES256 (recommended) or RS256, and set the same here",
            ),
            (
                !c.userinfo_signed_response_alg.is_none_or(named),
                "userinfo_signed_response_alg",
                "FranceConnect's documentation names ES256 and RS256",
                "set what FranceConnect registered: ES256 (recommended) or RS256, or nothing for a JSON userinfo",
            ),
            (
                c.allowed_acr.is_none(),
                "allowed_acr",
                "missing: FranceConnect refuses an acr outside the allowedAcr it recorded",
                "set the levels FranceConnect recorded, [\"eidas1\"] on FranceConnect",
            ),
        ];
    for (bad, k, problem, fix) in rules {
        p.check(bad, key(k), problem, fix);
    }
}

impl Config {
    /// `[upstream.franceconnect]` as FranceConnect v2 accepts its relying parties: token
    /// endpoint authentication `client_secret_post` (`private_key_jwt`, its other method, is
    /// not offered here), userinfo read (the identity is there only) as a signed JWT, and
    /// `acr_values` asked, so that the level reached is checked.
    pub(super) fn check_franceconnect_upstream(&self, p: &mut Problems) {
        let Some(fc) = &self.upstream.franceconnect else {
            return;
        };
        p.check(
            fc.auth_method() != AuthMethod::ClientSecretPost,
            "upstream.franceconnect.token_endpoint_auth_method",
            "FranceConnect v2 authenticates relying parties with client_secret_post or private_key_jwt",
            "set it to \"client_secret_post\" or omit it",
        );
        p.check(
            !fc.userinfo,
            "upstream.franceconnect.userinfo",
            "false: FranceConnect gives the identity at userinfo only",
            "set userinfo = true",
        );
        let levels = fc.acr_values.as_deref().unwrap_or_default();
        p.check(
            levels.split(' ').all(|v| v.is_empty()),
            "upstream.franceconnect.acr_values",
            "missing: FranceConnect must be asked for a level, and the level returned checked",
            "set acr_values = \"eidas1\" (FranceConnect) or \"eidas2\" (FranceConnect+)",
        );
    }

    /// What is valid but will likely fail at the first request: `config check` prints these,
    /// `serve` logs them.
    pub fn warnings(&self) -> Vec<String> {
        let aidant = &self.upstream.aidant;
        let reachable = aidant.highest_level();
        let file = self.source.display();
        let unmapped = reachable.is_none().then(|| {
            format!(
                "{file}: `upstream.aidant`: no acr_values nor acr_levels. Every answer states an eIDAS level, eidas1 at least: an aidant's login reaches one only if the provider's ID tokens carry acr eidas1…eidas3 themselves. Fix: map its acr values with acr_levels (e.g. {{ \"…/loa/password\" = \"eidas1\" }}); otherwise every démarche ends with unmet_authentication_requirements"
            )
        });
        unmapped
            .into_iter()
            .chain(self.clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.allowed_acr.is_some())
            .filter(|(_, c)| reachable.is_none_or(|r| r < c.acr_range().0))
            .map(|(i, c)| {
                format!(
                    "{file}: `clients[{i}].allowed_acr`: {} needs an aidant login at {} or higher, and upstream.aidant has no acr_values or acr_levels reaching it. Fix: ask the aidants' identity provider for that level (acr_values) or map its acr (acr_levels); otherwise every démarche of this client ends with unmet_authentication_requirements",
                    c.client_id,
                    c.acr_range().0,
                )
            }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"
issuer = "http://127.0.0.1:8080"
[database]
url = "sqlite://db.sqlite"
[keys]
dir = "keys"
[upstream.aidant]
issuer = "http://127.0.0.1:9100"
client_id = "idp-proxy"
client_secret = "s"
AIDANT
[upstream.franceconnect]
issuer = "http://127.0.0.1:9300/api/v2"
client_id = "idp-proxy"
client_secret = "s"
userinfo = true
FC
[[clients]]
client_id = "franceconnect"
client_secret_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
redirect_uris = ["http://127.0.0.1:9300/api/v2/oidc-callback"]
demarches = ["argent"]
CLIENT
"#;

    fn load(aidant: &str, fc: &str, client: &str) -> Result<Config, crate::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE
            .replace("AIDANT", aidant)
            .replace("FC", fc)
            .replace("CLIENT", client);
        Config::load(&super::super::tests::write(dir.path(), &body))
    }

    #[test]
    fn the_franceconnect_upstream_gets_its_relying_party_profile() {
        let c = load("", "acr_values = \"eidas1\"", "").unwrap();
        let fc = c.upstream.franceconnect.as_ref().unwrap();
        assert_eq!(fc.auth_method(), AuthMethod::ClientSecretPost);
        assert_eq!(fc.id_token_signed_response_alg, Some(SigningAlg::ES256));
        assert_eq!(fc.userinfo_signed_response_alg, Some(SigningAlg::ES256));
        // The aidants' identity provider keeps the generic defaults.
        assert_eq!(
            c.upstream.aidant.auth_method(),
            AuthMethod::ClientSecretBasic
        );
        assert_eq!(c.upstream.aidant.id_token_signed_response_alg, None);
        let rs = load(
            "",
            "acr_values = \"eidas1\"\nid_token_signed_response_alg = \"RS256\"",
            "",
        )
        .unwrap();
        let fc = rs.upstream.franceconnect.unwrap();
        assert_eq!(fc.id_token_signed_response_alg, Some(SigningAlg::RS256));
    }

    #[test]
    fn the_franceconnect_upstream_must_ask_a_level_and_post_its_secret() {
        let err = load("", "", "").unwrap_err().to_string();
        assert!(err.contains("upstream.franceconnect.acr_values"), "{err}");
        let basic = "acr_values = \"eidas1\"\ntoken_endpoint_auth_method = \"client_secret_basic\"";
        let err = load("", basic, "").unwrap_err().to_string();
        assert!(
            err.contains("upstream.franceconnect.token_endpoint_auth_method"),
            "{err}"
        );
        let hs = "acr_values = \"eidas1\"\nid_token_signed_response_alg = \"HS256\"";
        assert!(load("", hs, "").is_err(), "HS256 is no algorithm we accept");
    }

    #[test]
    fn a_franceconnect_client_is_configured_as_franceconnect_calls() {
        let fc = "acr_values = \"eidas1\"";
        let ok = "franceconnect = true\ntoken_endpoint_auth_method = \"client_secret_post\"\npkce_required = false\nallowed_acr = [\"eidas1\"]\nuserinfo_signed_response_alg = \"ES256\"";
        let c = load("", fc, ok).unwrap();
        assert!(c
            .upstream
            .franceconnect
            .unwrap()
            .scopes
            .iter()
            .any(|s| s == "idp_birthdate"));
        for (without, broken) in [
            ("pkce_required = false", "pkce_required"),
            ("allowed_acr = [\"eidas1\"]", "allowed_acr"),
        ] {
            let err = load("", fc, &ok.replace(without, ""))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("clients[0].{broken}")), "{err}");
        }
        // A JSON userinfo is what FranceConnect reads when it registered no algorithm.
        let json = ok.replace("userinfo_signed_response_alg = \"ES256\"", "");
        assert!(load("", fc, &json).is_ok());
        let basic = ok.replace("client_secret_post", "client_secret_basic");
        let err = load("", fc, &basic).unwrap_err().to_string();
        assert!(
            err.contains("clients[0].token_endpoint_auth_method"),
            "{err}"
        );
        let ps = format!("{ok}\nid_token_signed_response_alg = \"PS256\"");
        let err = load("", fc, &ps).unwrap_err().to_string();
        assert!(
            err.contains("clients[0].id_token_signed_response_alg"),
            "{err}"
        );
    }

    #[test]
    fn allowed_acr_is_a_range_of_levels() {
        let fc = "acr_values = \"eidas1\"";
        let c = load("", fc, "allowed_acr = [\"eidas2\", \"eidas3\"]").unwrap();
        assert_eq!(c.clients[0].acr_range(), (Level::Eidas2, Level::Eidas3));
        for bad in ["[\"eidas1\", \"eidas3\"]", "[]", "[\"substantial\"]"] {
            let err = load("", fc, &format!("allowed_acr = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("clients[0].allowed_acr"), "{bad}: {err}");
        }
        assert_eq!(
            load("", fc, "").unwrap().clients[0].acr_range(),
            (Level::Eidas1, Level::Eidas3)
        );
    }

    #[test]
    fn config_check_warns_when_the_aidant_login_cannot_reach_allowed_acr() {
        let fc = "acr_values = \"eidas1\"";
        let eidas2 = "allowed_acr = [\"eidas2\"]";
        let password = "acr_values = \"eidas1\"";
        let warnings = load(password, fc, eidas2).unwrap().warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("clients[0].allowed_acr"),
            "{warnings:?}"
        );
        assert!(load("acr_values = \"eidas2\"", fc, eidas2)
            .unwrap()
            .warnings()
            .is_empty());
        let mapped = "[upstream.aidant.acr_levels]\n\"https://idp.example/loa/2\" = \"eidas2\"";
        assert!(load(mapped, fc, eidas2).unwrap().warnings().is_empty());
        // No allowed_acr: nothing to warn about but an aidants' IdP of unknown levels.
        assert!(load(password, fc, "").unwrap().warnings().is_empty());
        let unknown = load("", fc, "").unwrap().warnings();
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(unknown[0].contains("`upstream.aidant`"), "{unknown:?}");
    }
}
