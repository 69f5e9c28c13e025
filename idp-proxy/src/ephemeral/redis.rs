//! The Redis backend, shared by every node: `SET … PX` puts a TTL on everything, `SET NX`
//! makes the replay caches, `GETDEL` the single-use take, `INCR` + `PEXPIRE … NX` the rate
//! limit counters (Redis ≥ 7.0). Every key carries
//! the deployment's prefix, so several deployments can share one Redis. The connection
//! manager reconnects by itself; while Redis is unreachable every call fails, and callers
//! fail closed.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, SetExpiry, SetOptions};

use super::{EphemeralError, EphemeralStore};

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

fn unavailable(e: redis::RedisError) -> EphemeralError {
    EphemeralError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects (TLS with `rediss://`, password in the URL); each command and each
    /// (re)connection is bounded by `timeout`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, EphemeralError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        // Few quick retries: a node whose Redis is down at start says so instead of hanging.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn millis(ttl: Duration) -> u64 {
    // Redis refuses a zero expiry: a TTL always counts at least one millisecond.
    (ttl.as_millis() as u64).max(1)
}

#[async_trait::async_trait]
impl EphemeralStore for RedisStore {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), EphemeralError> {
        let opts = SetOptions::default().with_expiration(SetExpiry::PX(millis(ttl)));
        let mut conn = self.conn.clone();
        conn.set_options::<_, _, ()>(self.key(key), value, opts)
            .await
            .map_err(unavailable)
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, EphemeralError> {
        let opts = SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(SetExpiry::PX(millis(ttl)));
        let mut conn = self.conn.clone();
        let set: Option<String> = conn
            .set_options(self.key(key), value, opts)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut conn = self.conn.clone();
        conn.get(self.key(key)).await.map_err(unavailable)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut conn = self.conn.clone();
        conn.get_del(self.key(key)).await.map_err(unavailable)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, EphemeralError> {
        // INCR, then an expiry only where none is set yet: one round trip, a fixed window.
        let mut conn = self.conn.clone();
        let (n,): (u64,) = redis::pipe()
            .atomic()
            .incr(self.key(key), 1)
            .cmd("PEXPIRE")
            .arg(self.key(key))
            .arg(millis(ttl))
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(n)
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real Redis (TEST_REDIS_URL, default the local one), one key prefix per run.
    async fn store() -> RedisStore {
        let url =
            std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("idp-proxy-test:{}:", crate::provider::tokens::random());
        RedisStore::connect(&url, &prefix, Duration::from_secs(2))
            .await
            .expect("a Redis at TEST_REDIS_URL (scripts/test and .ci/run start one)")
    }

    #[tokio::test]
    async fn redis_passes_the_shared_suite() {
        super::super::suite::run(&store().await, "suite").await;
    }

    #[tokio::test]
    async fn keys_carry_the_deployment_prefix() {
        let a = store().await;
        let b = store().await;
        a.put("k", b"a".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            b.get("k").await.unwrap(),
            None,
            "another prefix, another key space"
        );
        assert_eq!(a.get("k").await.unwrap(), Some(b"a".to_vec()));
    }

    #[tokio::test]
    async fn concurrent_takes_never_both_win() {
        let s = std::sync::Arc::new(store().await);
        for round in 0..50 {
            let key = format!("race-{round}");
            s.put(&key, b"v".to_vec(), Duration::from_secs(60))
                .await
                .unwrap();
            let (a, b) = tokio::join!(s.take(&key), s.take(&key));
            let won = [a.unwrap(), b.unwrap()]
                .iter()
                .filter(|t| t.is_some())
                .count();
            assert_eq!(won, 1, "exactly one take wins");
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable_not_a_panic() {
        let r = RedisStore::connect("redis://127.0.0.1:1", "x:", Duration::from_millis(300)).await;
        assert!(matches!(r, Err(EphemeralError::Unavailable(_))));
    }
}
