//! The [`Store`] handle: a bounded connection pool plus the identity sealer. Its methods live
//! in the domain modules (`organisation`, `aidant`, `usager`, `mandate`, `grant`, `journal`);
//! this module only opens, migrates and hands out connections. No clock is read in the store:
//! callers pass the time in.

use std::fmt;
use std::sync::Arc;

use crate::db::{self, DbConn, DbPool};
use crate::error::StoreError;
use crate::identity::Sealer;

/// Unix time in seconds.
pub type Timestamp = i64;

/// The durable store. Cheap to clone; all clones share one pool. Every call blocks on the
/// database: async callers run it on a blocking pool.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    sealer: Arc<Sealer>,
    backend: &'static str,
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
    pub fn open(url: &str, max_connections: u32, sealer: Sealer) -> Result<Store, StoreError> {
        let backend = db::Target::parse(url)?.backend();
        let pool = db::open_pool(url, max_connections)?;
        Ok(Store {
            pool,
            sealer: Arc::new(sealer),
            backend,
        })
    }

    /// Applies the embedded migrations that have not run yet; running it again is a no-op.
    pub fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        db::run_migrations(&mut conn)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub(crate) fn conn(&self) -> Result<DbConn, StoreError> {
        db::checkout(&self.pool)
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.sealer
    }
}
