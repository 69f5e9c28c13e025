//! In-memory ephemeral store: the embedded default for a single node. State is lost on
//! restart (users log in again); never use it behind a load balancer with several nodes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{EphemeralError, EphemeralStore};

const SHARDS: usize = 16;
/// Expired entries are swept every this many writes to a shard.
const SWEEP_EVERY: u32 = 1024;

#[derive(Default)]
struct Shard {
    map: HashMap<String, (Instant, Vec<u8>)>,
    writes: u32,
}

pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

/// The shard of a key: by its `{hash tag}` when it has one, as Redis Cluster picks a slot, so
/// keys that must change together (`take_and_put`) are under one lock.
fn shard_of(key: &str) -> usize {
    let tag = key
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag)
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key);
    let h = tag.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    (h as usize) % SHARDS
}

impl MemoryStore {
    fn shard(&self, key: &str) -> Result<std::sync::MutexGuard<'_, Shard>, EphemeralError> {
        self.shards[shard_of(key)]
            .lock()
            .map_err(|_| EphemeralError::Unavailable("memory store lock poisoned".into()))
    }
}

impl Shard {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut (Instant, Vec<u8>)> {
        if self.map.get(key).is_some_and(|(exp, _)| *exp <= now) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn insert(&mut self, key: &str, mut value: Vec<u8>, ttl: Duration, now: Instant) {
        // Serialisers over-allocate by doubling; a value lives here for its whole TTL.
        value.shrink_to_fit();
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.map.retain(|_, (exp, _)| *exp > now);
        }
        self.map.insert(key.to_string(), (now + ttl, value));
    }
}

#[async_trait::async_trait]
impl EphemeralStore for MemoryStore {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, EphemeralError> {
        let now = Instant::now();
        let mut shard = self.shard(key)?;
        if let Some((_, value)) = shard.live(key, now) {
            let n = u64::from_le_bytes(value.as_slice().try_into().unwrap_or([0; 8])) + 1;
            *value = n.to_le_bytes().to_vec();
            return Ok(n);
        }
        shard.insert(key, 1u64.to_le_bytes().to_vec(), ttl, now);
        Ok(1)
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), EphemeralError> {
        self.shard(key)?.insert(key, value, ttl, Instant::now());
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, EphemeralError> {
        let now = Instant::now();
        let mut shard = self.shard(key)?;
        if shard.live(key, now).is_some() {
            return Ok(false);
        }
        shard.insert(key, value, ttl, now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        Ok(self
            .shard(key)?
            .live(key, Instant::now())
            .map(|(_, v)| v.clone()))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut shard = self.shard(key)?;
        let live = shard.live(key, Instant::now()).is_some();
        Ok(if live {
            shard.map.remove(key).map(|(_, v)| v)
        } else {
            None
        })
    }

    async fn take_and_put(
        &self,
        take: &str,
        put: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, EphemeralError> {
        if shard_of(take) != shard_of(put) {
            // As Redis Cluster refuses keys of two slots in one script.
            return Err(EphemeralError::Unavailable(
                "take_and_put on keys without a shared hash tag".into(),
            ));
        }
        let now = Instant::now();
        let mut shard = self.shard(take)?;
        if shard.live(take, now).is_none() {
            return Ok(false);
        }
        shard.map.remove(take);
        shard.insert(put, value, ttl, now);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        self.shard(key)?.map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_shared_suite() {
        super::super::suite::run(&MemoryStore::default(), "t").await;
    }
}
