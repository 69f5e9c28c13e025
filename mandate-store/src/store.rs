//! The [`Store`] handle: a bounded connection pool plus the identity sealer. Its methods live
//! in the domain modules (`organisation`, `aidant`, `usager`, `mandate`, `grant`, `journal`);
//! this module only opens, migrates and hands out connections. No clock is read in the store:
//! callers pass the time in.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use crate::db::{self, AnyConnection, DbConn, DbPool, PoolOptions};
use crate::error::StoreError;
use crate::identity::Sealer;

/// Unix time in seconds.
pub type Timestamp = i64;

/// The durable store. Cheap to clone; all clones share one pool. Every call blocks on the
/// database: async callers run it on a blocking pool.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    /// Swappable: a node reloads its key ring (a new data key) without restarting.
    sealer: Arc<RwLock<Arc<Sealer>>>,
    backend: &'static str,
    /// SQLite has one writer at a time; queueing writers here instead of in SQLite's busy
    /// handler (which sleeps in steps of milliseconds) keeps write latency at the cost of the
    /// write itself. Other processes (the CLI) still meet the busy timeout.
    writer: Arc<Mutex<()>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens `url` (`sqlite://PATH`, `sqlite::memory:`, `postgres://…` or `postgresql://…`)
    /// with at most `max_connections` pooled connections (`sqlite::memory:` always uses one,
    /// since each connection would otherwise see its own empty database). Connects once
    /// before returning, so a bad URL or an unreachable server is reported here.
    pub fn open(url: &str, pool: &PoolOptions, sealer: Sealer) -> Result<Store, StoreError> {
        let backend = db::Target::parse(url)?.backend();
        let pool = db::open_pool(url, pool)?;
        Ok(Store {
            pool,
            sealer: Arc::new(RwLock::new(Arc::new(sealer))),
            backend,
            writer: Arc::new(Mutex::new(())),
        })
    }

    /// Applies the embedded migrations that have not run yet; running it again is a no-op.
    pub fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        db::run_migrations(&mut conn)
    }

    /// One round trip (readiness probes): the database answers and has the latest migration
    /// of this build, so a node started before `idp-proxy migrate` ran is not ready.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        db::check_schema(&mut conn)
    }

    /// Database calls that failed for a reason other than the data since the store opened:
    /// connection lost or refused, no connection free in time, statement timeout.
    pub fn failures(&self) -> u64 {
        self.pool.failures()
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub(crate) fn conn(&self) -> Result<DbConn, StoreError> {
        self.pool.checkout()
    }

    /// `db::write_transaction`, queued in-process first on SQLite.
    pub(crate) fn write_transaction<T, E, F>(&self, conn: &mut AnyConnection, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        if self.backend == "sqlite" {
            // The guard protects no data, so a poisoned lock is still a valid queue.
            let _turn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            db::write_transaction(conn, f)
        } else {
            db::write_transaction(conn, f)
        }
    }

    pub(crate) fn sealer(&self) -> Arc<Sealer> {
        // A poisoned lock still holds a complete sealer: it is only ever replaced whole.
        self.sealer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the sealer, e.g. after a data key was added to the key ring: new identities
    /// are sealed with its active key, older keys still open what they sealed.
    pub fn set_sealer(&self, sealer: Sealer) {
        *self.sealer.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sealer);
    }
}
