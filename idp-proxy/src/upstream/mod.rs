//! The relying-party side: one `Upstream` per configured identity provider, built from its
//! discovery document. `login_url` sends the browser there (state, nonce, PKCE S256);
//! `finish` checks the callback (RFC 9207 `iss`, code exchange, ID token signature, `iss`,
//! `aud`, `nonce`) and returns the verified identity. It never keeps an upstream credential
//! beyond the ID token needed to propagate logout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::config::{SubjectClaim, UpstreamIdp};

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

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream identity provider unreachable or invalid: {0}")]
    Unavailable(String),
    #[error("upstream returned an error: {0}")]
    Denied(String),
    #[error("upstream callback rejected: {0}")]
    Rejected(String),
}

struct Discovered {
    client: Client,
    end_session_endpoint: Option<String>,
    iss_parameter_supported: bool,
    fetched: Instant,
}

pub struct Upstream {
    config: UpstreamIdp,
    redirect_uri: String,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
}

/// What must survive between `login_url` and `finish`: kept in the ephemeral store under the
/// `state` value, taken once.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub nonce: String,
    pub pkce_verifier: String,
}

#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
    /// Kept only to name the session when logging out upstream.
    pub id_token: String,
}

/// The callback's query string.
#[derive(Debug, Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct ExtraMetadata {
    end_session_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl Upstream {
    pub fn new(config: UpstreamIdp, redirect_uri: String) -> Result<Upstream, UpstreamError> {
        let http = reqwest::ClientBuilder::new()
            // An OP must not steer us anywhere else (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        Ok(Upstream {
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
        let fresh = Arc::new(self.discover().await?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    async fn discover(&self) -> Result<Discovered, UpstreamError> {
        let unavailable = |e: &dyn std::fmt::Display| UpstreamError::Unavailable(e.to_string());
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| unavailable(&e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable(&e))?;
        // Two fields openidconnect's core metadata does not carry.
        let extra: ExtraMetadata = self
            .http
            .get(format!(
                "{}/.well-known/openid-configuration",
                self.config.issuer
            ))
            .send()
            .await
            .map_err(|e| unavailable(&e))?
            .json()
            .await
            .map_err(|e| unavailable(&e))?;
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
            end_session_endpoint: extra.end_session_endpoint,
            iss_parameter_supported: extra.authorization_response_iss_parameter_supported,
            fetched: Instant::now(),
        })
    }

    /// The URL to send the browser to, and what `finish` will need. `force_login` asks the
    /// upstream to authenticate again (idle aidant, `prompt=login`, `max_age`).
    pub async fn login_url(
        &self,
        force_login: bool,
    ) -> Result<(String, String, PendingLogin), UpstreamError> {
        let d = self.discovered(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = d
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in self.config.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if force_login {
            req = req.add_prompt(CoreAuthPrompt::Login);
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
    pub async fn finish(
        &self,
        callback: &Callback,
        pending: PendingLogin,
    ) -> Result<VerifiedIdentity, UpstreamError> {
        let d = self.discovered(false).await?;
        // RFC 9207: the response names its issuer, which defeats mix-up attacks.
        match &callback.iss {
            Some(iss) if iss != &self.config.issuer => {
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
        let token = d
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| UpstreamError::Rejected(format!("code exchange: {e}")))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| UpstreamError::Rejected("no id_token".into()))?;
        let nonce = Nonce::new(pending.nonce);
        let claims = match id_token.claims(&d.client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            Err(first) => {
                // The upstream may have rotated its keys: refresh once and retry.
                let d = self.discovered(true).await?;
                let verifier = d.client.id_token_verifier();
                let claims = id_token
                    .claims(&verifier, &nonce)
                    .map_err(|_| UpstreamError::Rejected(format!("id_token: {first}")))?
                    .clone();
                claims
            }
        };
        let subject = match self.config.subject_claim {
            SubjectClaim::Sub => claims.subject().to_string(),
            SubjectClaim::Email => match (claims.email(), claims.email_verified()) {
                (Some(email), Some(true)) => email.to_lowercase(),
                _ => return Err(UpstreamError::Rejected("no verified email claim".into())),
            },
        };
        Ok(VerifiedIdentity {
            issuer: claims.issuer().to_string(),
            subject,
            auth_time: claims.auth_time().map(|t| t.timestamp()),
            acr: claims.auth_context_ref().map(|a| a.to_string()),
            id_token: id_token.to_string(),
        })
    }

    /// The upstream's RP-initiated logout URL, when it has one.
    pub async fn logout_url(
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
