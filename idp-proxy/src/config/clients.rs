//! The client registry: the service providers registered in `[[clients]]`, what each may ask
//! and how it authenticates, looked up by `client_id`.

use std::path::PathBuf;
use std::time::Duration;

use mandate_store::{Demarche, Level};
use serde::Deserialize;
use url::Url;

use super::sections::{EncryptionAlg, SigningAlg, Tokens};
use super::values::{opt_secs, WebUrl};
use super::Config;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Hex SHA-256 of the client secret (`client_secret_basic`, `client_secret_post`): the
    /// secret itself is never in config. Client secrets are random and long, so a fast hash
    /// is enough and keeps the token endpoint cheap.
    #[serde(default)]
    pub client_secret_sha256: String,
    /// `client_secret_jwt` only: the shared secret itself (an HMAC key), read from this file.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(skip)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: ClientAuth,
    /// The one algorithm the client signs its assertions with (`private_key_jwt`: ES256,
    /// RS256 or PS256, any of them if unset; `client_secret_jwt`: HS256).
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The client's public keys (assertion signatures, encryption), inline…
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// …or fetched (cached, refreshed on an unknown `kid`).
    #[serde(default)]
    pub jwks_uri: Option<WebUrl>,
    pub redirect_uris: Vec<WebUrl>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<WebUrl>,
    pub demarches: Vec<Demarche>,
    /// This client is FranceConnect's core (idp-proxy registered as one of its identity
    /// providers): `rep_scope` always answers in FranceConnect's `DelegationScope` strings, and
    /// the way back from every page names FranceConnect.
    #[serde(default)]
    pub franceconnect: bool,
    /// The eIDAS levels this client accepts in `acr` (consecutive, e.g. `["eidas1"]`: what
    /// FranceConnect registered as the identity provider's `allowedAcr`); unset: all three.
    /// Every answer carries an `acr` within them, else `unmet_authentication_requirements`.
    #[serde(default)]
    pub allowed_acr: Option<Vec<Level>>,
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// ID tokens encrypted to the client's key (A256GCM), signed inside.
    #[serde(default)]
    pub id_token_encrypted_response_alg: Option<EncryptionAlg>,
    #[serde(default)]
    pub id_token_encrypted_response_enc: Option<String>,
    /// Userinfo as a signed JWT (`application/jwt`) rather than JSON.
    #[serde(default)]
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    #[serde(default)]
    pub userinfo_encrypted_response_alg: Option<EncryptionAlg>,
    #[serde(default)]
    pub userinfo_encrypted_response_enc: Option<String>,
    #[serde(default = "yes")]
    pub pkce_required: bool,
    /// This client's access-token lifetime, if shorter than `tokens.access_token_ttl_secs`.
    #[serde(default, rename = "access_token_ttl_secs", with = "opt_secs")]
    pub access_token_ttl: Option<Duration>,
    /// eIDAS levels asked when a request names none (`eidas1`…`eidas3`).
    #[serde(default)]
    pub default_acr_values: Option<Vec<Level>>,
    /// `public` (the usager's and aidant's ids) or `pairwise` (per sector, OIDC Core §8).
    #[serde(default)]
    pub subject_type: SubjectType,
    /// Pairwise sector: this URI's host (not fetched: clients are registered statically)…
    #[serde(default)]
    pub sector_identifier_uri: Option<String>,
    /// …or a sector named in config (clients of one administration share it).
    #[serde(default)]
    pub sector: Option<String>,
    /// The sector of a pairwise client, resolved once at load (`None`: public subjects).
    #[serde(skip)]
    pub pairwise_sector: Option<String>,
    /// Where logout tokens go when the aidant's session ends (OIDC Back-Channel Logout).
    #[serde(default)]
    pub backchannel_logout_uri: Option<WebUrl>,
    /// Logout tokens always carry `sid`; accepted for registration parity.
    #[serde(default)]
    pub backchannel_logout_session_required: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    #[default]
    Public,
    Pairwise,
}

/// How a client authenticates at the token, revocation and introspection endpoints.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    ClientSecretJwt,
    PrivateKeyJwt,
}

impl ClientAuth {
    pub const ALL: [ClientAuth; 4] = [
        ClientAuth::ClientSecretBasic,
        ClientAuth::ClientSecretPost,
        ClientAuth::ClientSecretJwt,
        ClientAuth::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::ClientSecretJwt => "client_secret_jwt",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl Client {
    /// The pairwise sector: `sector`, else the host of `sector_identifier_uri`, else the one
    /// host of the redirect URIs (`validate` refuses several hosts without a sector).
    pub fn sector(&self) -> Option<String> {
        let host = |u: &str| Url::parse(u).ok()?.host_str().map(str::to_string);
        if let Some(s) = &self.sector {
            return Some(s.clone());
        }
        if let Some(u) = &self.sector_identifier_uri {
            return host(u);
        }
        let mut hosts: Vec<String> = self.redirect_uris.iter().filter_map(|u| host(u)).collect();
        hosts.sort();
        hosts.dedup();
        match hosts.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    /// The lowest and highest eIDAS level this client accepts (`allowed_acr`; unset: all).
    pub fn acr_range(&self) -> (Level, Level) {
        let allowed = self.allowed_acr.iter().flatten();
        match (allowed.clone().min(), allowed.max()) {
            (Some(lo), Some(hi)) => (*lo, *hi),
            _ => (Level::Eidas1, Level::Eidas3),
        }
    }

    /// The lifetime of the access tokens this client receives.
    pub fn access_token_ttl(&self, tokens: &Tokens) -> Duration {
        // The checks keep it between 1 s and the default.
        self.access_token_ttl.unwrap_or(tokens.access_token_ttl)
    }
}

fn yes() -> bool {
    true
}

impl Config {
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}
