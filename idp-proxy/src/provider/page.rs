//! The French pages a person sees, rendered server-side (askama, auto-escaped, no JavaScript):
//! every page of the service is built here, the provider's errors and the interaction's pages.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use askama::Template;

/// An error shown to the aidant or the usager: what happened and what to do, in French.
#[derive(Debug, Clone, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    #[template(skip)]
    pub status: StatusCode,
    /// Seconds to wait (429): sent as `Retry-After`.
    #[template(skip)]
    pub retry_after: Option<u64>,
    pub title: String,
    pub message: String,
    pub advice: String,
    /// During an authorization: the form that sends the aidant back to the client.
    pub way_back: Option<Box<WayBack>>,
}

/// A button that ends an authorization and goes back to its client (`abandon.rs`).
#[derive(Debug, Clone)]
pub struct WayBack {
    pub action: String,
    pub csrf: String,
    pub reason: &'static str,
    pub label: &'static str,
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>, advice: &str) -> Self {
        ErrorPage {
            status,
            retry_after: None,
            title: title.into(),
            message: message.into(),
            advice: advice.into(),
            way_back: None,
        }
    }

    /// The same page, with a way back to the client of the authorization under way.
    pub fn with_way_back(self, way_back: WayBack) -> Self {
        ErrorPage {
            way_back: Some(Box::new(way_back)),
            ..self
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Demande invalide",
            message,
            "Revenez sur le site du service et recommencez. Si le problème continue, contactez ce service.",
        )
    }

    pub fn expired() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Demande expirée",
            "Cette démarche a expiré ou a été ouverte dans un autre navigateur.",
            "Revenez sur le site du service et recommencez la démarche.",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Accès refusé",
            message,
            "Si vous pensez que c'est une erreur, contactez le responsable de votre structure.",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service momentanément indisponible",
            "Le service ne peut pas traiter votre demande pour le moment. Aucune donnée n'a été transmise.",
            "Réessayez dans quelques minutes.",
        )
    }

    pub fn too_many(retry_after: u64) -> Self {
        ErrorPage {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Trop de demandes",
                "Trop de demandes ont été faites en peu de temps depuis ce poste ou ce compte.",
                "Patientez une minute, puis réessayez.",
            )
        }
    }

    pub fn response(&self) -> HttpResponse {
        let mut res = html(self.status, self.render());
        if let Some(after) = self.retry_after {
            if let Ok(v) = header::HeaderValue::from_str(&after.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// A rendered page with the headers every page gets.
pub fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> HttpResponse {
    match rendered {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' *; frame-ancestors 'none'",
            ))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}
