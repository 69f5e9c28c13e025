//! Connections, the pool and migrations. The backend is chosen from the URL scheme here and
//! nowhere else: everything above speaks to [`AnyConnection`], so each query is written once.
//! Errors keep the driver's real message but never the URL's password.

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::StoreError;

/// The one migration set, run on either backend.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a caller waits for a pooled connection before the store reports it unavailable.
/// Short on purpose: the proxy fails closed with a 503 rather than hanging a browser.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The full URL (handed to libpq), its printable form and its password, if any, so
    /// driver messages that quote the URL can be scrubbed.
    Pg {
        url: String,
        shown: String,
        password: Option<String>,
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
                password: password_of(url),
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
                password,
            } => {
                let mut out = message.replace(url.as_str(), shown);
                if let Some(password) = password {
                    out = out.replace(password.as_str(), "***");
                }
                out
            }
        }
    }

    fn is_memory(&self) -> bool {
        matches!(self, Target::Sqlite(path) if path == ":memory:")
    }
}

/// The URL with any password replaced by `***`; an unparsable URL is shown by scheme only.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return format!("{}://…", parsed.scheme());
            }
            parsed.to_string()
        }
        Err(_) => {
            let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
            format!("{scheme}://…")
        }
    }
}

/// The password in `scheme://user:password@host…`, found without a full parse so that it
/// is found even in a URL too malformed to parse.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
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
}

impl Manager {
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

    fn connect(&self) -> Result<AnyConnection, ConnectionFailure> {
        match &self.target {
            Target::Sqlite(path) => SqliteConnection::establish(path)
                .map(AnyConnection::Sqlite)
                .map_err(|e| self.failure(e)),
            Target::Pg { url, .. } => PgConnection::establish(url)
                .map(AnyConnection::Pg)
                .map_err(|e| self.failure(e)),
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionFailure> {
        r2d2::R2D2Connection::ping(conn).map_err(|e| self.failure(e))
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        // A connection given back by a panicking thread may be mid-transaction.
        std::thread::panicking() || r2d2::R2D2Connection::is_broken(conn)
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

pub(crate) type DbPool = Pool<Manager>;
pub(crate) type DbConn = PooledConnection<Manager>;

/// Opens the pool after one direct connection attempt, so a wrong URL, a missing directory
/// or a refused password is reported at once with the driver's words.
pub(crate) fn open_pool(url: &str, max_connections: u32) -> Result<DbPool, StoreError> {
    let target = Target::parse(url)?;
    let manager = Manager {
        target: target.clone(),
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
    let mut builder = Pool::builder()
        .test_on_check_out(false)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .connection_customizer(Box::new(pragmas));
    builder = if target.is_memory() {
        // Each SQLite connection to :memory: is its own database: keep exactly one, forever.
        builder
            .max_size(1)
            .min_idle(Some(1))
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        builder.max_size(max_connections.max(1))
    };
    Ok(builder.build_unchecked(manager))
}

pub(crate) fn checkout(pool: &DbPool) -> Result<DbConn, StoreError> {
    pool.get()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
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
            AnyConnection::Pg(c) => c.run_pending_migrations(MIGRATIONS).map(|_| ()),
            AnyConnection::Sqlite(c) => c.run_pending_migrations(MIGRATIONS).map(|_| ()),
        };
        result.map_err(|e| StoreError::Migration(e.to_string()))
    })
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
        assert_eq!(
            password_of("postgresql://a:secret@[::1"),
            Some("secret".into())
        );
        assert_eq!(password_of("postgres://a@h/db"), None);
        assert_eq!(password_of("postgres://a:b@h/db?x=@"), Some("b".into()));
        assert_eq!(
            without_password("postgresql://a:secret@[::1"),
            "postgresql://…"
        );
    }
}
