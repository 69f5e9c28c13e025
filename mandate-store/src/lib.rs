//! Durable data of idp-proxy: organisations, aidants, usagers (identity sealed at rest),
//! mandates and the hash-chained journal, on SQLite or PostgreSQL with one migration set
//! chosen by the database URL's scheme.
//!
//! Everything is synchronous (diesel): async callers run it on a blocking pool. The store
//! never reads the clock; callers pass `now`.

mod aidant;
mod db;
mod demarche;
mod error;
mod grant;
mod identity;
mod journal;
pub mod level;
mod mandate;
mod organisation;
mod retention;
mod schema;
mod store;
mod usager;

pub use aidant::{Aidant, AidantLogin, NewAidant};
pub use db::{PoolOptions, MIGRATIONS};
pub use demarche::{Demarche, UnknownDemarche, Vocabulary};
pub use error::StoreError;
pub use grant::{Grant, Refusal, Use, UseError};
pub use identity::{
    is_birthdate, is_email, DataKey, Identity, IdentityProblem, Sealer, COG_FRANCE,
};
pub use journal::{
    verify_chain, ChainBreak, ChainBreakKind, JournalAction, JournalEntry, JournalFilter,
    JournalReport, NewJournalEntry, VerifyError, GENESIS_HASH,
};
pub use level::{Level, UnknownLevel};
pub use mandate::{Actor, GiveMandate, GivenMandate, Mandate, NewMandate, UsableMandate};
pub use organisation::Organisation;
pub use retention::Purged;
pub use store::{Store, Timestamp};
pub use usager::Usager;
