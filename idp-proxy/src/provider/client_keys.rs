//! Clients' public keys: inline `jwks` from config, or `jwks_uri` fetched and cached. They
//! verify `private_key_jwt` assertions and receive encrypted ID tokens and userinfo. A `kid`
//! the cached set lacks refetches it at once (the client rotated), but attempts — failed ones
//! included — are at least `REFETCH_AFTER` apart per client, so neither unknown kids nor a
//! client's server being down can make us hammer it or hold workers on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::Client;
use crate::keys::jwks_has_kid;

/// How long a fetched set is used without asking again.
const FRESH_FOR: Duration = Duration::from_secs(3600);
/// The least time between two fetches for one client.
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// A JWKS larger than this is not one.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientKeysError {
    #[error("client has no keys registered")]
    None,
    #[error("client jwks_uri unusable: {0}")]
    Fetch(String),
}

struct Cached {
    /// The last set fetched, if any fetch succeeded.
    jwks: Option<Arc<Value>>,
    /// The last attempt, successful or not: refetches are spaced from it.
    attempted: Instant,
    /// When `jwks` was fetched.
    fetched: Option<Instant>,
}

pub struct ClientKeys {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

impl ClientKeys {
    pub fn new(timeout: Duration) -> Result<ClientKeys, reqwest::Error> {
        Ok(ClientKeys {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The client's key set, holding `kid` if the client has such a key.
    pub async fn get(
        &self,
        client: &Client,
        kid: Option<&str>,
    ) -> Result<Arc<Value>, ClientKeysError> {
        if let Some(jwks) = &client.jwks {
            return Ok(Arc::new(jwks.clone()));
        }
        let uri = client.jwks_uri.as_deref().ok_or(ClientKeysError::None)?;
        let jwks = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let entry = cache.get(&client.client_id);
            let seen = (
                entry.and_then(|c| c.jwks.clone()),
                entry.and_then(|c| c.fetched),
                entry.map(|c| c.attempted),
            );
            // Asking now (or too soon again): later callers wait for the spacing.
            let too_soon = seen.2.is_some_and(|a| a.elapsed() < REFETCH_AFTER);
            let fresh = seen.1.is_some_and(|f| f.elapsed() < FRESH_FOR)
                && seen
                    .0
                    .as_ref()
                    .is_some_and(|j| kid.is_none_or(|k| jwks_has_kid(j, k)));
            if fresh || too_soon {
                return seen.0.ok_or_else(|| {
                    ClientKeysError::Fetch("last fetch failed; retry later".into())
                });
            }
            cache.insert(
                client.client_id.clone(),
                Cached {
                    jwks: seen.0.clone(),
                    attempted: Instant::now(),
                    fetched: seen.1,
                },
            );
            seen.0
        };
        match self.fetch(uri).await {
            Ok(new) => {
                let new = Arc::new(new);
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                cache.insert(
                    client.client_id.clone(),
                    Cached {
                        jwks: Some(new.clone()),
                        attempted: Instant::now(),
                        fetched: Some(Instant::now()),
                    },
                );
                Ok(new)
            }
            // Unreachable for now: the set we have is still the client's.
            Err(e) => match jwks {
                Some(jwks) => {
                    tracing::warn!(client = %client.client_id, error = %e, "client jwks_uri refetch failed; keeping the cached set");
                    Ok(jwks)
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self, uri: &str) -> Result<Value, ClientKeysError> {
        let fail = |e: &dyn std::fmt::Display| ClientKeysError::Fetch(e.to_string());
        let mut res = self.http.get(uri).send().await.map_err(|e| fail(&e))?;
        if !res.status().is_success() {
            return Err(fail(&format!("HTTP {}", res.status())));
        }
        // Read in chunks up to the cap: a client's server cannot fill our memory.
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| fail(&e))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(fail(&"too large"));
            }
            body.extend_from_slice(&chunk);
        }
        let jwks: Value = serde_json::from_slice(&body).map_err(|e| fail(&e))?;
        if !jwks.get("keys").is_some_and(|k| k.is_array()) {
            return Err(fail(&"not a JWK Set"));
        }
        Ok(jwks)
    }
}
