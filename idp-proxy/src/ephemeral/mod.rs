//! Short-lived state: interactions, aidant sessions, codes, access tokens, upstream login
//! state. One Redis-shaped trait (TTL on everything, atomic take, set-if-absent) so the
//! in-memory default and the Redis backend behave the same. Values are opaque bytes; the
//! callers serialise. Never store a credential here longer than its own lifetime.

mod memory;
mod redis;

use std::time::Duration;

pub use self::redis::RedisStore;
pub use memory::MemoryStore;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum EphemeralError {
    /// The backend cannot be reached: callers fail closed (503).
    #[error("ephemeral store unavailable: {0}")]
    Unavailable(String),
    #[error("ephemeral value is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

#[async_trait::async_trait]
pub trait EphemeralStore: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), EphemeralError>;
    /// Stores only if `key` is absent; `true` when stored (replay caches).
    async fn put_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, EphemeralError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Returns and removes the value in one atomic step: two concurrent takes never both win.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    async fn delete(&self, key: &str) -> Result<(), EphemeralError>;
    /// In one atomic step: if `take` holds a value, removes it and stores `value` under `put`
    /// for `ttl`, and says `true`; otherwise changes nothing and says `false`. Redeeming a code
    /// for its access token: until this step the code is untouched (a failure before it leaves
    /// the code redeemable), after it the code is spent and the token stored, never one
    /// without the other. Both keys must carry the same `{hash tag}` (one Redis Cluster slot).
    async fn take_and_put(
        &self,
        take: &str,
        put: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, EphemeralError>;
    /// Adds one to the counter under `key` and returns it; a new counter lives `ttl` (a fixed
    /// window: later increments do not extend it). Rate limits count with it.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, EphemeralError>;
}

/// Typed helpers over the byte store: JSON in, JSON out.
#[async_trait::async_trait]
pub trait EphemeralJson {
    async fn put_json<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), EphemeralError>;
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, EphemeralError>;
    async fn take_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, EphemeralError>;
    /// Takes the record only if `owns` says it is the asker's (a browser's login, a client's
    /// pushed request): someone else holding the key cannot burn it. `None`: absent or not
    /// theirs, left in place.
    async fn take_json_if<T, F>(&self, key: &str, owns: F) -> Result<Option<T>, EphemeralError>
    where
        T: DeserializeOwned + Send,
        F: Fn(&T) -> bool + Send + Sync;
}

#[async_trait::async_trait]
impl EphemeralJson for dyn EphemeralStore {
    async fn put_json<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), EphemeralError> {
        self.put(key, serde_json::to_vec(value)?, ttl).await
    }
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, EphemeralError> {
        decode(self.get(key).await?)
    }
    async fn take_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, EphemeralError> {
        decode(self.take(key).await?)
    }
    async fn take_json_if<T, F>(&self, key: &str, owns: F) -> Result<Option<T>, EphemeralError>
    where
        T: DeserializeOwned + Send,
        F: Fn(&T) -> bool + Send + Sync,
    {
        match self.get_json::<T>(key).await? {
            Some(found) if owns(&found) => self.take_json(key).await,
            _ => Ok(None),
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, EphemeralError> {
    bytes
        .map(|b| serde_json::from_slice(&b))
        .transpose()
        .map_err(EphemeralError::from)
}

/// The behaviour every backend must show, as named cases (`suite::CASES`).
#[cfg(test)]
pub(crate) mod suite;
