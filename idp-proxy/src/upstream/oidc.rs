//! The real upstream: an OpenID Provider found by discovery, spoken to with openidconnect
//! and reqwest (no redirects followed), its keys and endpoints refreshed hourly and on a
//! signature failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::str::FromStr;

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthenticationContextClass, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
};
use serde::Deserialize;
use tokio::sync::RwLock;

use super::{Callback, PendingLogin, Upstream, UpstreamError, VerifiedIdentity};
use crate::config::{AuthMethod, SigningAlg, SubjectClaim, UpstreamIdp};
use crate::keys::{verify_with_jwks, KeyRing};

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovery and keys are refreshed this often, and on a signature failure (key rotation).
const REFRESH: Duration = Duration::from_secs(3600);
const MIN_REFRESH: Duration = Duration::from_secs(30);

struct Discovered {
    client: Client,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    /// The provider's JWKS as published, for signed userinfo.
    jwks: serde_json::Value,
    end_session_endpoint: Option<String>,
    iss_parameter_supported: bool,
    fetched: Instant,
}

pub struct OidcUpstream {
    config: UpstreamIdp,
    redirect_uri: String,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
}

#[derive(Deserialize)]
struct ExtraMetadata {
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    end_session_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
    access_token: String,
}

/// A JWE has five parts; what it wraps is the signed token to verify.
fn unwrap_jwe(token: String, keys: &KeyRing) -> Result<String, UpstreamError> {
    if token.split('.').count() != 5 {
        return Ok(token);
    }
    let inner = keys
        .decrypt(&token)
        .map_err(|e| UpstreamError::Rejected(format!("cannot decrypt: {e}")))?;
    String::from_utf8(inner).map_err(|_| UpstreamError::Rejected("JWE payload is not text".into()))
}

impl OidcUpstream {
    pub fn new(config: UpstreamIdp, redirect_uri: String) -> Result<OidcUpstream, UpstreamError> {
        let http = reqwest::ClientBuilder::new()
            // An OP must not steer us anywhere else (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .build()
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        Ok(OidcUpstream {
            config,
            redirect_uri,
            http,
            discovered: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    async fn discovered(&self, force: bool) -> Result<Arc<Discovered>, UpstreamError> {
        if let Some(d) = self.discovered.read().await.as_ref() {
            let age = d.fetched.elapsed();
            if (!force && age < REFRESH) || (force && age < MIN_REFRESH) {
                return Ok(d.clone());
            }
        }
        let mut slot = self.discovered.write().await;
        // Whoever held the lock before may have refreshed already.
        if let Some(d) = slot.as_ref() {
            if d.fetched.elapsed() < MIN_REFRESH {
                return Ok(d.clone());
            }
        }
        let fresh = match self.discover().await {
            Ok(d) => Arc::new(d),
            // A failed routine refresh keeps serving the known keys and endpoints.
            Err(e) => match slot.as_ref() {
                Some(stale) if !force => {
                    tracing::warn!(error = %e, "upstream discovery refresh failed; keeping the last one");
                    return Ok(stale.clone());
                }
                _ => return Err(e),
            },
        };
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, UpstreamError> {
        let unavailable = |e: reqwest::Error| UpstreamError::Unavailable(e.to_string());
        self.http
            .get(url)
            .send()
            .await
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }

    async fn discover(&self) -> Result<Discovered, UpstreamError> {
        let unavailable = |e: &dyn std::fmt::Display| UpstreamError::Unavailable(e.to_string());
        let issuer = IssuerUrl::new(self.config.issuer.to_string()).map_err(|e| unavailable(&e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable(&e))?;
        // Fields openidconnect's core metadata does not carry, and the raw JWKS.
        let extra: ExtraMetadata = self
            .get_json(&format!(
                "{}/.well-known/openid-configuration",
                self.config.issuer
            ))
            .await?;
        let jwks: serde_json::Value = self.get_json(&extra.jwks_uri).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(
            RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| unavailable(&e))?,
        );
        Ok(Discovered {
            client,
            token_endpoint: extra.token_endpoint,
            userinfo_endpoint: extra.userinfo_endpoint,
            jwks,
            end_session_endpoint: extra.end_session_endpoint,
            iss_parameter_supported: extra.authorization_response_iss_parameter_supported,
            fetched: Instant::now(),
        })
    }

    /// The ID-token verifier: the registered algorithm only when one is pinned, else any
    /// asymmetric one we know; never HS256 (keyed with our secret) nor `none`.
    fn verifier<'a>(&self, d: &'a Discovered) -> CoreIdTokenVerifier<'a> {
        d.client
            .id_token_verifier()
            .set_allowed_algs(self.signing_algs().into_iter().map(|a| match a {
                SigningAlg::ES256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                SigningAlg::RS256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                SigningAlg::PS256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            }))
    }

    fn signing_algs(&self) -> Vec<SigningAlg> {
        match self.config.id_token_signed_response_alg {
            Some(alg) => vec![alg],
            None => SigningAlg::ALL.to_vec(),
        }
    }

    /// The code exchange, done here rather than by openidconnect: its token response cannot
    /// carry an encrypted ID token.
    async fn exchange(
        &self,
        d: &Discovered,
        code: &str,
        verifier: &str,
    ) -> Result<TokenAnswer, UpstreamError> {
        let secret = self.config.client_secret.clone().unwrap_or_default();
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("code_verifier", verifier.to_string()),
        ];
        let mut req = self.http.post(&d.token_endpoint);
        match self.config.auth_method() {
            AuthMethod::ClientSecretBasic => {
                let enc = |v: &str| {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                };
                req = req.basic_auth(enc(&self.config.client_id), Some(enc(&secret)));
            }
            AuthMethod::ClientSecretPost => {
                form.push(("client_id", self.config.client_id.clone()));
                form.push(("client_secret", secret));
            }
        }
        let res = req
            .form(&form)
            .send()
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if !res.status().is_success() {
            let status = res.status();
            let body: String = res
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return Err(UpstreamError::Rejected(format!(
                "token endpoint {status}: {body}"
            )));
        }
        res.json()
            .await
            .map_err(|e| UpstreamError::Rejected(format!("token response: {e}")))
    }

    /// Userinfo: JSON, or a JWT signed with the provider's keys and possibly encrypted to ours;
    /// only a JWT signed with the pinned algorithm when `userinfo_signed_response_alg` is set
    /// (FranceConnect v2). Its `sub` must be the ID token's. A signature that does not verify
    /// is checked once more against freshly fetched keys (rotated between the two answers).
    async fn userinfo(
        &self,
        d: Arc<Discovered>,
        access_token: &str,
        subject: &str,
        keys: &KeyRing,
    ) -> Result<serde_json::Value, UpstreamError> {
        let endpoint = d
            .userinfo_endpoint
            .as_deref()
            .ok_or_else(|| UpstreamError::Rejected("no userinfo endpoint".into()))?;
        let pinned = self.config.userinfo_signed_response_alg;
        let mut req = self.http.get(endpoint).bearer_auth(access_token);
        if pinned.is_some() {
            req = req.header(reqwest::header::ACCEPT, "application/jwt");
        }
        let res = req
            .send()
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(UpstreamError::Rejected(format!(
                "userinfo {}",
                res.status()
            )));
        }
        let jwt = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/jwt"));
        let body = res
            .text()
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if pinned.is_some() && !jwt {
            return Err(UpstreamError::Rejected(
                "userinfo is not the signed JWT registered".into(),
            ));
        }
        let claims: serde_json::Value = if jwt {
            let jws = unwrap_jwe(body.trim().to_string(), keys)?;
            let algs = pinned.map_or(SigningAlg::ALL.to_vec(), |a| vec![a]);
            let claims = match verify_with_jwks(&jws, &d.jwks, &algs) {
                Some(c) => c,
                None => verify_with_jwks(&jws, &self.discovered(true).await?.jwks, &algs)
                    .ok_or_else(|| UpstreamError::Rejected("userinfo signature".into()))?,
            };
            let aud_ok = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => *a == self.config.client_id,
                Some(serde_json::Value::Array(a)) => a.iter().any(|v| *v == *self.config.client_id),
                _ => false,
            };
            if claims.get("iss").and_then(|i| i.as_str()) != Some(self.config.issuer.as_str())
                || !aud_ok
            {
                return Err(UpstreamError::Rejected("userinfo iss or aud".into()));
            }
            claims
        } else {
            serde_json::from_str(&body)
                .map_err(|e| UpstreamError::Rejected(format!("userinfo: {e}")))?
        };
        if claims.get("sub").and_then(|s| s.as_str()) != Some(subject) {
            return Err(UpstreamError::Rejected(
                "userinfo sub differs from the ID token's".into(),
            ));
        }
        Ok(claims)
    }
}

#[async_trait::async_trait]
impl Upstream for OidcUpstream {
    /// The URL to send the browser to, and what `finish` will need. `force_login` asks the
    /// upstream to authenticate again (idle aidant, `prompt=login`, `max_age`).
    async fn login_url(
        &self,
        force_login: bool,
        login_hint: Option<&str>,
    ) -> Result<(String, String, PendingLogin), UpstreamError> {
        let d = self.discovered(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = d
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                // 32 random bytes, as FranceConnect's own client draws them (its minimum is
                // 22 characters).
                || Nonce::new_random_len(32),
            )
            .set_pkce_challenge(challenge);
        for s in self.config.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if force_login || self.config.always_prompt_login {
            req = req.add_prompt(CoreAuthPrompt::Login);
        }
        if let Some(hint) = login_hint {
            // The client's hint about the aidant (e.g. their email), passed on as it is.
            req = req.add_extra_param("login_hint", hint.to_string());
        }
        if let Some(acr) = &self.config.acr_values {
            for value in acr.split(' ').filter(|v| !v.is_empty()) {
                req = req.add_auth_context_value(AuthenticationContextClass::new(value.into()));
            }
        }
        let (url, state, nonce) = req.url();
        Ok((
            url.to_string(),
            state.secret().clone(),
            PendingLogin {
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            },
        ))
    }

    /// Checks the callback and returns who logged in.
    async fn finish(
        &self,
        callback: &Callback,
        pending: &PendingLogin,
        keys: &KeyRing,
    ) -> Result<VerifiedIdentity, UpstreamError> {
        let d = self.discovered(false).await?;
        // RFC 9207: the response names its issuer, which defeats mix-up attacks.
        match &callback.iss {
            Some(iss) if self.config.issuer != *iss => {
                return Err(UpstreamError::Rejected("iss does not match".into()))
            }
            None if d.iss_parameter_supported => {
                return Err(UpstreamError::Rejected("iss parameter missing".into()))
            }
            _ => {}
        }
        if let Some(error) = &callback.error {
            return Err(UpstreamError::Denied(error.chars().take(64).collect()));
        }
        let code = callback
            .code
            .clone()
            .ok_or_else(|| UpstreamError::Rejected("no code".into()))?;
        let answer = self.exchange(&d, &code, &pending.pkce_verifier).await?;
        let id_token = unwrap_jwe(answer.id_token, keys)?;
        let parsed = CoreIdToken::from_str(&id_token)
            .map_err(|e| UpstreamError::Rejected(format!("id_token: {e}")))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let first = parsed.claims(&self.verifier(&d), &nonce).cloned();
        let (d, claims) = match first {
            Ok(c) => (d, c),
            Err(first @ openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                // The upstream may have rotated its keys: refresh once and retry. Any other
                // failure (nonce, audience, expiry) is the answer's own and is final. Userinfo
                // is then checked against the refreshed keys too.
                let d = self.discovered(true).await?;
                let claims = parsed
                    .claims(&self.verifier(&d), &nonce)
                    .map_err(|_| UpstreamError::Rejected(format!("id_token: {first}")))?
                    .clone();
                (d, claims)
            }
            Err(other) => return Err(UpstreamError::Rejected(format!("id_token: {other}"))),
        };
        let acr = claims.auth_context_ref().map(|a| a.to_string());
        if let Some(wanted) = &self.config.acr_values {
            // The level reached is checked, not assumed.
            if !acr
                .as_deref()
                .is_some_and(|a| wanted.split(' ').any(|w| w == a))
            {
                return Err(UpstreamError::Rejected("acr not reached".into()));
            }
        }
        let subject = match self.config.subject_claim {
            SubjectClaim::Sub => claims.subject().to_string(),
            SubjectClaim::Email => match (claims.email(), claims.email_verified()) {
                (Some(email), Some(true)) => email.to_lowercase(),
                _ => return Err(UpstreamError::Rejected("no verified email claim".into())),
            },
        };
        let userinfo = if self.config.userinfo {
            Some(
                self.userinfo(d, &answer.access_token, claims.subject().as_str(), keys)
                    .await?,
            )
        } else {
            None
        };
        Ok(VerifiedIdentity {
            issuer: claims.issuer().to_string(),
            subject,
            auth_time: claims.auth_time().map(|t| t.timestamp()),
            acr,
            id_token,
            userinfo,
        })
    }

    /// The eIDAS level an `acr` of this provider stands for (`acr_levels`, or itself).
    fn level_of(&self, acr: &str) -> Option<mandate_store::Level> {
        self.config.level_of(acr)
    }

    /// The upstream's RP-initiated logout URL, when it has one.
    async fn logout_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: &str,
        state: &str,
    ) -> Option<String> {
        let d = self.discovered(false).await.ok()?;
        let mut url = url::Url::parse(d.end_session_endpoint.as_deref()?).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
            .append_pair("state", state)
            .append_pair("client_id", &self.config.client_id);
        Some(url.into())
    }
}
