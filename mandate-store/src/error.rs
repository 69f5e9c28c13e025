//! The store's error type. Messages are meant for operators: they name what failed and
//! never carry a password, a key or a usager's identity.

/// Everything that can go wrong inside the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL's scheme is not one the store speaks.
    #[error(
        "unsupported database URL scheme `{scheme}`: use sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl { scheme: String },

    /// The database could not be opened or reached. `target` is the URL with its password
    /// masked.
    #[error("cannot connect to the {backend} database {target}: {message}")]
    Connect {
        backend: &'static str,
        target: String,
        message: String,
    },

    /// No pooled connection could be had (database down, pool exhausted): fail closed.
    #[error("database unavailable: {0}")]
    Unavailable(String),

    /// Running the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),

    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),

    /// A row the operation needs does not exist.
    #[error("{what} not found: {key}")]
    NotFound { what: &'static str, key: String },

    /// The caller's input breaks a rule of the store.
    #[error("invalid input: {0}")]
    Invalid(String),

    /// The actor is not allowed to do this (e.g. revoking another organisation's mandate).
    #[error("not allowed: {0}")]
    NotAllowed(String),

    /// A stored value cannot be read back (unknown démarche key, bad JSON…).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// A sealed identity names a data key the sealer does not hold.
    #[error("unknown data key `{0}`")]
    UnknownDataKey(String),

    /// Sealing or opening an identity failed (wrong key, altered ciphertext, moved row).
    #[error("identity sealing: {0}")]
    Crypto(&'static str),
}
