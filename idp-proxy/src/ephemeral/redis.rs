//! The Redis backend, shared by every node: `SET … PX` puts a TTL on everything, `SET NX`
//! makes the replay caches, `GETDEL` the single-use take (Redis ≥ 6.2), a script the rate
//! limit counters. Every command and script names one key, so a Redis Cluster serves them
//! as well as a single Redis. Every key carries the deployment's prefix, so several
//! deployments can share one Redis. Both connections reconnect by themselves (the cluster one
//! also follows slot moves and failovers); while Redis is unreachable every call fails, and
//! callers fail closed.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, SetExpiry, SetOptions, Value};

use super::{EphemeralError, EphemeralStore};

pub struct RedisStore {
    conn: Conn,
    prefix: String,
    /// `take_and_put`: DEL, then SET … PX only if something was deleted (EVALSHA).
    swap: redis::Script,
    /// `incr`: INCR, then PEXPIRE where the key has no expiry yet (EVALSHA).
    count: redis::Script,
}

/// A fixed window: the first increment sets the expiry, later ones keep it. In a script
/// rather than `PEXPIRE … NX` (Redis ≥ 7.0), so any Redis with `GETDEL` (6.2) will do.
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

const SWAP: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// A single Redis (or a stable endpoint in front of one), or a Redis Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
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
        Ok(Self::over(Conn::Single(conn), prefix))
    }

    /// Connects to a Redis Cluster through any of its `nodes` (the rest of the topology is
    /// discovered); same bounds as [`RedisStore::connect`].
    pub async fn connect_cluster(
        nodes: &[&str],
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, EphemeralError> {
        let client = ClusterClient::builder(nodes.iter().copied())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .build()
            .map_err(unavailable)?;
        let conn = client.get_async_connection().await.map_err(unavailable)?;
        Ok(Self::over(Conn::Cluster(conn), prefix))
    }

    fn over(conn: Conn, prefix: &str) -> Self {
        RedisStore {
            conn,
            prefix: prefix.to_string(),
            swap: redis::Script::new(SWAP),
            count: redis::Script::new(COUNT),
        }
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
        let mut conn = self.conn.clone();
        self.count
            .key(self.key(key))
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn take_and_put(
        &self,
        take: &str,
        put: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, EphemeralError> {
        let mut conn = self.conn.clone();
        let swapped: i64 = self
            .swap
            .key(self.key(take))
            .key(self.key(put))
            .arg(value)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(swapped == 1)
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
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("idp-proxy-test:{}-{nanos}:", std::process::id());
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

    /// Three masters of a real Redis Cluster on free ports, stopped when dropped.
    struct Cluster {
        servers: Vec<std::process::Child>,
        ports: Vec<u16>,
        _dir: tempfile::TempDir,
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            for s in &mut self.servers {
                let _ = s.kill();
                let _ = s.wait();
            }
        }
    }

    /// A port free for the server and for its cluster bus (port + 10000).
    fn free_cluster_port(taken: &[u16]) -> u16 {
        use std::net::TcpListener;
        loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if port < 55_000
                && !taken.contains(&port)
                && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
            {
                return port;
            }
        }
    }

    fn cluster() -> Cluster {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let mut ports = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port(&ports);
            let conf = dir.path().join(format!("nodes-{port}.conf"));
            servers.push(
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                    .arg(&conf)
                    .args(["--save", "", "--appendonly", "no", "--dir"])
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server (scripts/test and .ci/run install it)"),
            );
            ports.push(port);
        }
        let cluster = Cluster {
            servers,
            ports,
            _dir: dir,
        };
        let cli = |port: u16, args: &[&str]| {
            Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(args)
                .stderr(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        for &port in &cluster.ports {
            for _ in 0..100 {
                if cli(port, &["ping"]).contains("PONG") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(nodes.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cli(cluster.ports[0], &create);
        for &port in &cluster.ports {
            for _ in 0..200 {
                if cli(port, &["cluster", "info"]).contains("cluster_state:ok") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    #[tokio::test]
    async fn a_redis_cluster_passes_the_shared_suite() {
        let cluster = cluster();
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let s = RedisStore::connect_cluster(&nodes[..1], "cluster:", Duration::from_secs(2))
            .await
            .expect("the cluster, found through one of its nodes");
        super::super::suite::run(&s, "suite").await;
        // The keys really are spread over the masters: each holds some of them.
        for i in 0..30 {
            s.put(
                &format!("spread-{i}"),
                b"v".to_vec(),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        }
        for port in &cluster.ports {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let n: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
            assert!(n > 0, "master on {port} holds none of the keys");
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable_not_a_panic() {
        let r = RedisStore::connect("redis://127.0.0.1:1", "x:", Duration::from_millis(300)).await;
        assert!(matches!(r, Err(EphemeralError::Unavailable(_))));
    }
}
