//! Protocol errors as types, turned into responses in one place: a redirect to the client
//! (with `state` and `iss`), a JSON body with the right status and `WWW-Authenticate`, or the
//! local French page when no redirect is safe. Handlers never build error responses by hand.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use mandate_store::StoreError;
use serde_json::json;

use super::page::{ErrorPage, WayBack};
pub use super::respond::ReturnTo;
use crate::ephemeral::EphemeralError;

/// RFC 6749 §4.1.2.1 / §5.2, OIDC Core §3.1.2.6, RFC 6750 §3.1 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    InteractionRequired,
    InvalidToken,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidRequestObject,
    InvalidRequestUri,
    UnmetAuthenticationRequirements,
    /// Over a rate limit: 429 with Retry-After (sent as `temporarily_unavailable`).
    RateLimited,
    ServerError,
    TemporarilyUnavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::InvalidClient => "invalid_client",
            Code::InvalidGrant => "invalid_grant",
            Code::UnauthorizedClient => "unauthorized_client",
            Code::UnsupportedGrantType => "unsupported_grant_type",
            Code::UnsupportedResponseType => "unsupported_response_type",
            Code::InvalidScope => "invalid_scope",
            Code::AccessDenied => "access_denied",
            Code::LoginRequired => "login_required",
            Code::InteractionRequired => "interaction_required",
            Code::InvalidToken => "invalid_token",
            Code::RequestNotSupported => "request_not_supported",
            Code::RequestUriNotSupported => "request_uri_not_supported",
            Code::InvalidRequestObject => "invalid_request_object",
            Code::InvalidRequestUri => "invalid_request_uri",
            Code::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Code::RateLimited => "temporarily_unavailable",
            Code::ServerError => "server_error",
            Code::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: Code,
    pub description: String,
    /// Seconds to wait, for `RateLimited` (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: Code, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: ascii_description(&description.into()),
            retry_after: None,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(Code::InvalidRequest, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(Code::InvalidGrant, d)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        OAuthError {
            retry_after: Some(retry_after),
            ..Self::new(Code::RateLimited, "too many requests, retry later")
        }
    }
    pub fn unavailable() -> Self {
        Self::new(
            Code::TemporarilyUnavailable,
            "a backing store is unavailable, retry later",
        )
    }
}

/// RFC 6749 §4.1.2.1 and §5.2: `error_description` holds %x20-21 / %x23-5B / %x5D-7E only.
/// French letters fold to their base letter ("démarche" → "demarche"), quotes and backslashes
/// become an apostrophe, anything else a question mark.
fn ascii_description(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'É' | 'È' => 'E',
            _ => '?',
        })
        .collect()
}

impl From<EphemeralError> for OAuthError {
    fn from(e: EphemeralError) -> Self {
        tracing::error!(error = %e, "ephemeral store failure");
        crate::metrics::ephemeral_error();
        OAuthError::unavailable()
    }
}

/// An error of a back-channel endpoint (token, userinfo): JSON, never HTML.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct JsonError(#[from] pub OAuthError);

impl ResponseError for JsonError {
    fn status_code(&self) -> StatusCode {
        match self.0.code {
            Code::InvalidClient | Code::InvalidToken => StatusCode::UNAUTHORIZED,
            Code::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        match self.0.code {
            Code::RateLimited => {
                let after = self.0.retry_after.unwrap_or(1);
                res.insert_header((header::RETRY_AFTER, after.to_string()));
            }
            Code::InvalidClient => {
                res.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"idp-proxy\""));
            }
            Code::InvalidToken => {
                // RFC 6750 §3: quoted-string values; our descriptions never contain quotes.
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer error=\"invalid_token\", error_description=\"{}\"",
                        self.0.description.replace('"', "'")
                    ),
                ));
            }
            _ => {}
        }
        res.json(json!({"error": self.0.code.as_str(), "error_description": self.0.description}))
    }
}

impl From<EphemeralError> for JsonError {
    fn from(e: EphemeralError) -> Self {
        JsonError(e.into())
    }
}

/// An error of a front-channel endpoint (authorize, interaction, login callback).
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// Sent back to the client: `error`, `error_description`, `state`, `iss`.
    #[error("{error} (redirected)")]
    Redirect { to: ReturnTo, error: OAuthError },
    /// Shown here, in French, because no redirect is safe or useful.
    #[error("{}: {}", .0.status, .0.message)]
    Page(ErrorPage),
}

impl From<ErrorPage> for FrontError {
    fn from(p: ErrorPage) -> Self {
        FrontError::Page(p)
    }
}

impl From<EphemeralError> for FrontError {
    fn from(e: EphemeralError) -> Self {
        tracing::error!(error = %e, "ephemeral store failure");
        crate::metrics::ephemeral_error();
        FrontError::Page(ErrorPage::unavailable())
    }
}

impl FrontError {
    /// A page error with the way back to the client added; other errors unchanged.
    pub fn with_way_back(self, way_back: WayBack) -> Self {
        match self {
            Self::Page(p) => Self::Page(p.with_way_back(way_back)),
            other => other,
        }
    }
}

/// A mandate-store failure, logged here once, whatever answers it (the pool counts it for
/// the metrics): the page every person sees for it, or `temporarily_unavailable`.
fn store_failure(e: &StoreError) {
    tracing::error!(error = %e, "mandate store failure");
}

impl From<StoreError> for FrontError {
    fn from(e: StoreError) -> Self {
        store_failure(&e);
        ErrorPage::unavailable().into()
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        store_failure(&e);
        OAuthError::unavailable()
    }
}

impl From<StoreError> for JsonError {
    fn from(e: StoreError) -> Self {
        JsonError(e.into())
    }
}

impl ResponseError for FrontError {
    fn status_code(&self) -> StatusCode {
        match self {
            FrontError::Redirect { .. } => StatusCode::SEE_OTHER,
            FrontError::Page(p) => p.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            FrontError::Redirect { to, error } => {
                tracing::info!(
                    error = error.code.as_str(),
                    "authorization error sent to client"
                );
                HttpResponse::SeeOther()
                    .insert_header((
                        header::LOCATION,
                        to.url(&[
                            ("error", error.code.as_str()),
                            ("error_description", &error.description),
                        ]),
                    ))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()
            }
            FrontError::Page(p) => p.response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_rfc_6749_character_set() {
        let e = OAuthError::invalid_request("la démarche \"çà\" n'est pas\\ couverte — ok");
        assert_eq!(e.description, "la demarche 'ca' n'est pas' couverte ? ok");
        assert!(e
            .description
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'));
    }
}
