//! Connections, the pool and migrations. The backend is chosen from the URL scheme here and
//! nowhere else: everything above speaks to [`AnyConnection`], so each query is written once.
//! Errors keep the driver's real message but never the URL's password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{
    AnsiTransactionManager, InstrumentationEvent, SimpleConnection, TransactionManager,
};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::StoreError;

/// The one migration set, run on either backend.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the pool connects and how long anything may wait. Every bound is finite: a slow or
/// absent database makes calls fail (the proxy answers 503), never hang.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// Connections kept open while idle (`None`: as many as `max_connections`).
    pub min_idle: Option<u32>,
    /// How long a caller waits for a pooled connection before the store reports it
    /// unavailable. Short: failing closed with a 503 beats hanging a browser.
    pub acquire_timeout: Duration,
    /// PostgreSQL: libpq's `connect_timeout` (whole seconds, at least 1), unless the URL sets it.
    pub connect_timeout: Duration,
    /// PostgreSQL: `statement_timeout` of every connection (`None`: the server's setting).
    /// It also bounds the wait for the write lock.
    pub statement_timeout: Option<Duration>,
}

impl PoolOptions {
    /// `max_connections` connections, the other bounds at their defaults.
    pub fn sized(max_connections: u32) -> PoolOptions {
        PoolOptions {
            max_connections,
            min_idle: None,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// After a connection-level failure (the server restarted or went away), pooled connections
/// are suspect for this long: each is checked before use and when given back, so the dead
/// ones are dropped instead of failing one request each, forever.
const SUSPECT_FOR: Duration = Duration::from_secs(60);

/// Key of the PostgreSQL advisory lock that serialises writers (journal appends need a
/// gap-free `seq`; provisioning upserts need their read-then-write to be atomic).
/// "idp_jrnl" in ASCII.
const WRITE_LOCK_KEY: i64 = 0x6964_705f_6a72_6e6c;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Where the pool connects, parsed once from the URL.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// A file path, or `:memory:`.
    Sqlite(String),
    /// The full URL (handed to libpq), its printable form and the secrets it holds, so
    /// driver messages that quote the URL can be scrubbed.
    Pg {
        url: String,
        shown: String,
        secrets: Vec<String>,
    },
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Target::Sqlite(":memory:".to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Invalid(
                    "sqlite URL without a path: use sqlite://PATH or sqlite::memory:".to_owned(),
                ));
            }
            return Ok(Target::Sqlite(path.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Pg {
                url: url.to_owned(),
                shown: without_password(url),
                secrets: secrets_of(url),
            });
        }
        // Only the scheme is echoed: the rest may hold a password.
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        Err(StoreError::UnsupportedUrl {
            scheme: scheme.chars().take(32).collect(),
        })
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Pg { .. } => "postgres",
        }
    }

    fn shown(&self) -> String {
        match self {
            Target::Sqlite(path) => format!("sqlite://{path}"),
            Target::Pg { shown, .. } => shown.clone(),
        }
    }

    /// A driver message made safe to print: libpq quotes a malformed URI whole.
    fn scrub(&self, message: &str) -> String {
        match self {
            Target::Sqlite(_) => message.to_owned(),
            Target::Pg {
                url,
                shown,
                secrets,
            } => {
                let mut out = message.replace(url.as_str(), shown);
                for secret in secrets {
                    out = out.replace(secret.as_str(), "***");
                }
                out
            }
        }
    }

    fn is_memory(&self) -> bool {
        matches!(self, Target::Sqlite(path) if path == ":memory:")
    }
}

/// libpq parameters that hold a secret when given in the URL's query.
const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];

/// The URL with any password (in the user info or a query parameter) replaced by `***`; an
/// unparsable URL is shown by scheme only.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return format!("{}://…", parsed.scheme());
            }
            if parsed
                .query_pairs()
                .any(|(k, _)| SECRET_PARAMS.contains(&k.as_ref()))
            {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if SECRET_PARAMS.contains(&k.as_ref()) {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => {
            let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
            format!("{scheme}://…")
        }
    }
}

/// The secrets a URL holds, to scrub from driver messages: the password in
/// `scheme://user:password@host…`, and the `password` and `sslpassword` query parameters
/// (as written and decoded), found without a full parse so that they are found even in a URL
/// too malformed to parse.
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return secrets;
    };
    // libpq reads the user info up to the last `@` before the path: a `?` or `#` written
    // unencoded in a password stays part of it.
    let authority = rest.split('/').next().unwrap_or("");
    let password = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password);
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let params = query.split('#').next().unwrap_or("").split('&');
    let in_query = params
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| SECRET_PARAMS.contains(key))
        .map(|(_, value)| value);
    // As written, and as libpq decodes it (percent escapes only).
    for written in password.into_iter().chain(in_query) {
        secrets.push(written.to_owned());
        secrets.push(
            percent_encoding::percent_decode_str(written)
                .decode_utf8_lossy()
                .into_owned(),
        );
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first: a secret that begins another must not leave the other's end in clear.
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    secrets
}

/// Why a connection could not be made (also what r2d2 logs for background attempts).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the {backend} database {target}: {message}")]
pub(crate) struct ConnectionFailure {
    backend: &'static str,
    target: String,
    message: String,
}

/// r2d2 manager that opens the variant the URL asked for. diesel's own
/// `MultiConnection::establish` would hide the driver's message (STACK.md, trap 4).
#[derive(Debug)]
pub(crate) struct Manager {
    target: Target,
    statement_timeout: Option<Duration>,
    health: Arc<Health>,
}

/// What the pool saw of the database: failed calls (for metrics), and whether a
/// connection-level failure happened lately. Steady state costs nothing; only after such a
/// failure does the pool ping connections at checkout and check-in.
#[derive(Debug)]
pub(crate) struct Health {
    since: Instant,
    /// Milliseconds after `since` until which connections are suspect (0: never failed).
    suspect_until_ms: AtomicU64,
    /// Calls that failed for a reason other than the data: connection lost or refused, pool
    /// exhausted, statement timeout.
    failures: AtomicU64,
}

impl Health {
    fn new() -> Health {
        Health {
            since: Instant::now(),
            suspect_until_ms: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn suspect(&self) -> bool {
        self.elapsed_ms() < self.suspect_until_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    fn saw(&self, error: &DieselError) {
        use DatabaseErrorKind as K;
        match error {
            // A read-only transaction error means the server was demoted to a replica
            // (failover): its connections must go too.
            DieselError::DatabaseError(
                K::ClosedConnection | K::UnableToSendCommand | K::ReadOnlyTransaction,
                _,
            ) => {
                self.failed();
                let until = self.elapsed_ms() + SUSPECT_FOR.as_millis() as u64;
                self.suspect_until_ms.fetch_max(until, Ordering::Relaxed);
            }
            // Constraint violations and absent rows are answers about the data.
            DieselError::DatabaseError(
                K::UniqueViolation
                | K::ForeignKeyViolation
                | K::NotNullViolation
                | K::CheckViolation
                | K::RestrictViolation
                | K::ExclusionViolation,
                _,
            )
            | DieselError::NotFound => {}
            _ => self.failed(),
        }
    }
}

impl Manager {
    /// Reports each failed query of a connection to the pool's health.
    fn watch(&self) -> impl FnMut(InstrumentationEvent<'_>) + Send + 'static {
        let health = self.health.clone();
        move |event| {
            if let InstrumentationEvent::FinishQuery { error: Some(e), .. } = event {
                health.saw(e);
            }
        }
    }

    fn failure(&self, message: impl std::fmt::Display) -> ConnectionFailure {
        ConnectionFailure {
            backend: self.target.backend(),
            target: self.target.shown(),
            message: self.target.scrub(&message.to_string()),
        }
    }
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectionFailure;

    /// A new connection, set up: statement timeout (PostgreSQL), failure watch.
    fn connect(&self) -> Result<AnyConnection, ConnectionFailure> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path).map_err(|e| self.failure(e))?;
                conn.set_instrumentation(self.watch());
                Ok(AnyConnection::Sqlite(conn))
            }
            Target::Pg { url, .. } => {
                let mut conn = PgConnection::establish(url).map_err(|e| self.failure(e))?;
                if let Some(t) = self.statement_timeout {
                    conn.batch_execute(&format!("SET statement_timeout = {}", t.as_millis()))
                        .map_err(|e| self.failure(e))?;
                }
                conn.set_instrumentation(self.watch());
                Ok(AnyConnection::Pg(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionFailure> {
        r2d2::R2D2Connection::ping(conn).map_err(|e| self.failure(e))
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        // A connection given back by a panicking thread may be mid-transaction.
        std::thread::panicking()
            || r2d2::R2D2Connection::is_broken(conn)
            || (self.health.suspect() && self.is_valid(conn).is_err())
    }
}

/// Per-connection SQLite settings: WAL so readers never block the writer, a busy timeout so
/// writers queue instead of failing, and foreign keys (off by default in SQLite).
#[derive(Debug)]
struct SqlitePragmas {
    shown: String,
}

impl CustomizeConnection<AnyConnection, ConnectionFailure> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), ConnectionFailure> {
        if let AnyConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| ConnectionFailure {
                backend: "sqlite",
                target: self.shown.clone(),
                message: format!("cannot set WAL, busy timeout and foreign keys: {e}"),
            })?;
        }
        Ok(())
    }
}

pub(crate) type DbConn = PooledConnection<Manager>;

/// The bounded pool, and what it knows of the database's health.
#[derive(Clone, Debug)]
pub(crate) struct DbPool {
    pool: r2d2::Pool<Manager>,
    health: Arc<Health>,
}

/// Opens the pool after one direct connection attempt, so a wrong URL, a missing directory
/// or a refused password is reported at once with the driver's words.
pub(crate) fn open_pool(url: &str, options: &PoolOptions) -> Result<DbPool, StoreError> {
    let target = match Target::parse(url)? {
        Target::Pg {
            url,
            shown,
            secrets,
        } => Target::Pg {
            url: with_network_bounds(&url, options.connect_timeout),
            shown,
            secrets,
        },
        sqlite => sqlite,
    };
    let health = Arc::new(Health::new());
    let manager = Manager {
        target: target.clone(),
        statement_timeout: options.statement_timeout,
        health: health.clone(),
    };
    let pragmas = SqlitePragmas {
        shown: target.shown(),
    };
    let as_store_error = |e: ConnectionFailure| StoreError::Connect {
        backend: e.backend,
        target: e.target,
        message: e.message,
    };
    let mut probe = manager.connect().map_err(as_store_error)?;
    pragmas.on_acquire(&mut probe).map_err(as_store_error)?;
    drop(probe);

    // No ping at checkout: it would double the queries of the hot path. A connection that
    // broke (database restarted) fails its query, is reported as unavailable, and is then
    // dropped by `has_broken`.
    let mut builder = r2d2::Pool::builder()
        .test_on_check_out(false)
        .connection_timeout(options.acquire_timeout)
        .connection_customizer(Box::new(pragmas));
    builder = if target.is_memory() {
        // Each SQLite connection to :memory: is its own database: keep exactly one, forever.
        builder
            .max_size(1)
            .min_idle(Some(1))
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        let max = options.max_connections.max(1);
        builder
            .max_size(max)
            .min_idle(options.min_idle.map(|m| m.min(max)))
    };
    Ok(DbPool {
        pool: builder.build_unchecked(manager),
        health,
    })
}

/// libpq settings that bound the network, added where the URL does not set them:
/// `connect_timeout`; TCP keepalives and `tcp_user_timeout`, so a query to a host that
/// vanished (failover to a new address, a partition) fails in seconds, not when TCP gives up
/// minutes later; `target_session_attrs=read-write`, so a connection never lands on a standby
/// (a demoted primary, a stale address after failover): every statement here may write. A
/// URL that does not parse is handed to libpq as it is (its error is then libpq's).
fn with_network_bounds(url: &str, connect: Duration) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let set: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let wanted = [
        ("connect_timeout", connect.as_secs().max(1).to_string()),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", "10".to_owned()),
        ("keepalives_interval", "5".to_owned()),
        ("keepalives_count", "3".to_owned()),
        ("tcp_user_timeout", "20000".to_owned()),
        ("target_session_attrs", "read-write".to_owned()),
    ];
    {
        let mut query = parsed.query_pairs_mut();
        for (key, value) in wanted.iter().filter(|(k, _)| !set.iter().any(|s| s == k)) {
            query.append_pair(key, value);
        }
    }
    parsed.to_string()
}

impl DbPool {
    pub(crate) fn failures(&self) -> u64 {
        self.health.failures()
    }

    /// A connection, or `Unavailable`. While connections are suspect, each is pinged first;
    /// a dead one is given back (and dropped by `has_broken`) and the next one tried.
    pub(crate) fn checkout(&self) -> Result<DbConn, StoreError> {
        let unavailable = |e: r2d2::PoolError| {
            self.health.failed();
            StoreError::Unavailable(e.to_string())
        };
        if !self.health.suspect() {
            return self.pool.get().map_err(unavailable);
        }
        for _ in 0..=self.pool.max_size() {
            let mut conn = self.pool.get().map_err(unavailable)?;
            if r2d2::R2D2Connection::ping(&mut *conn).is_ok() {
                return Ok(conn);
            }
        }
        self.health.failed();
        Err(StoreError::Unavailable(
            "no pooled connection answers".to_owned(),
        ))
    }
}

/// Runs `f` in a transaction that excludes every other writer until it commits: SQLite's
/// `BEGIN IMMEDIATE` (takes the write lock first, so a read-then-write never hits a stale
/// snapshot), PostgreSQL's transaction-scoped advisory lock. Use it for every write.
pub(crate) fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        AnyConnection::Pg(c) => {
            <AnsiTransactionManager as TransactionManager<PgConnection>>::begin_transaction(c)?
        }
    }
    let outcome = take_write_lock(conn)
        .map_err(E::from)
        .and_then(|()| f(conn));
    // From here on the inner connection's transaction manager is in charge, reached through
    // the MultiConnection's delegating manager.
    match outcome {
        Ok(value) => {
            <AnyConnection as TransactionManager<AnyConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <AnyConnection as TransactionManager<AnyConnection>>::rollback_transaction(conn) {
                // The first error is the one worth reporting.
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                Err(rollback) => Err(rollback.into()),
            }
        }
    }
}

fn take_write_lock(conn: &mut AnyConnection) -> Result<(), diesel::result::Error> {
    if let AnyConnection::Pg(c) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")).execute(c)?;
    }
    Ok(())
}

/// Runs pending migrations under the write lock, so two nodes starting together do not
/// both try to create the tables.
pub(crate) fn run_migrations(conn: &mut AnyConnection) -> Result<(), StoreError> {
    write_transaction(conn, |conn| {
        let result = match conn {
            AnyConnection::Pg(c) => c
                // A migration may rewrite a large table: the pool's statement timeout, meant
                // for requests, does not apply to it; a table lock it waits for is bounded,
                // since everything else waits behind it.
                .batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '60s'")
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                .and_then(|()| c.run_pending_migrations(MIGRATIONS).map(|_| ())),
            AnyConnection::Sqlite(c) => c.run_pending_migrations(MIGRATIONS).map(|_| ()),
        };
        result.map_err(|e| StoreError::Migration(e.to_string()))
    })
}

/// Whether the latest embedded migration is applied: `Ok`, or `Migration` naming it.
pub(crate) fn check_schema(conn: &mut AnyConnection) -> Result<(), StoreError> {
    use diesel::migration::MigrationSource;
    use diesel::sqlite::Sqlite;
    let latest = MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
        .map_err(|e| StoreError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
        .unwrap_or_default();
    // Versions are digits (timestamps); anything else is not spliced into SQL.
    if !latest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::Migration(format!(
            "unexpected migration version {latest}"
        )));
    }
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let applied: Applied = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM __diesel_schema_migrations WHERE version = '{latest}'"
    ))
    .get_result(conn)?;
    if applied.n == 0 {
        return Err(StoreError::Migration(format!(
            "migration {latest} is not applied: run `idp-proxy migrate`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_the_backend() {
        assert!(
            matches!(Target::parse("sqlite::memory:"), Ok(Target::Sqlite(p)) if p == ":memory:")
        );
        assert!(
            matches!(Target::parse("sqlite:///var/lib/x.db"), Ok(Target::Sqlite(p)) if p == "/var/lib/x.db")
        );
        assert!(
            matches!(Target::parse("sqlite://var/x.db"), Ok(Target::Sqlite(p)) if p == "var/x.db")
        );
        assert!(matches!(
            Target::parse("postgres://u@h/db"),
            Ok(Target::Pg { .. })
        ));
        assert!(matches!(
            Target::parse("postgresql://u@h/db"),
            Ok(Target::Pg { .. })
        ));
        assert!(matches!(
            Target::parse("sqlite://"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            Target::parse("mysql://u:p@h/db"),
            Err(StoreError::UnsupportedUrl { scheme }) if scheme == "mysql"
        ));
    }

    #[test]
    fn network_bounds_are_added_once_and_keep_what_the_url_sets() {
        let url = with_network_bounds(
            "postgres://idp:pa%40ss@db:5432/m?sslmode=verify-full&connect_timeout=9",
            Duration::from_secs(5),
        );
        assert!(url.starts_with("postgres://idp:pa%40ss@db:5432/m?sslmode=verify-full"));
        assert_eq!(url.matches("connect_timeout=").count(), 1);
        assert!(url.contains("connect_timeout=9"));
        assert!(url.contains("&keepalives=1&") && url.contains("tcp_user_timeout=20000"));
        assert_eq!(
            with_network_bounds("postgres://db/m", Duration::from_millis(10)),
            "postgres://db/m?connect_timeout=1&keepalives=1&keepalives_idle=10&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=20000&target_session_attrs=read-write"
        );
    }

    #[test]
    fn passwords_are_masked_and_scrubbed() {
        let Ok(target) = Target::parse("postgres://idp:pa%40ss@db.internal:5432/mandates") else {
            panic!("valid URL");
        };
        assert_eq!(
            target.shown(),
            "postgres://idp:***@db.internal:5432/mandates"
        );
        let quoted = "bad URI \"postgres://idp:pa%40ss@db.internal:5432/mandates\"";
        assert!(!target.scrub(quoted).contains("pa%40ss"));
        assert_eq!(secrets_of("postgresql://a:secret@[::1"), ["secret"]);
        assert!(secrets_of("postgres://a@h/db").is_empty());
        assert_eq!(secrets_of("postgres://a:b@h/db?x=@"), ["b"]);
        // libpq also takes the password as a query parameter.
        let Ok(target) = Target::parse("postgres://idp@db/m?sslmode=require&password=s%3Dcret")
        else {
            panic!("valid URL");
        };
        assert_eq!(
            target.shown(),
            "postgres://idp@db/m?sslmode=require&password=***"
        );
        let said = "password authentication failed (password s=cret, s%3Dcret)";
        assert!(
            !target.scrub(said).contains("cret"),
            "{}",
            target.scrub(said)
        );
        assert_eq!(secrets_of("postgres://h/db?sslpassword=k#x"), ["k"]);
        assert_eq!(
            secrets_of("postgres://u:pa%40ss@h/db"),
            ["pa%40ss", "pa@ss"]
        );
        assert_eq!(secrets_of("postgres://u:p?w#d@h/db"), ["p?w#d"]);
        let Ok(target) = Target::parse("postgres://u:abc@h/db?sslpassword=abcdef") else {
            panic!("valid URL");
        };
        assert_eq!(target.scrub("keys abcdef and abc"), "keys *** and ***");
        assert_eq!(
            without_password("postgresql://a:secret@[::1"),
            "postgresql://…"
        );
    }
}
