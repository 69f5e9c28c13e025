//! Test harness: a fresh, migrated [`Store`] per test on each backend, plus raw access to
//! the underlying database so tests can look at (and tamper with) what is really stored.
//!
//! PostgreSQL: a new database named `mandate_store_test_<random>` on the server of
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped when
//! the test ends. An unreachable server fails the test: it is never skipped.

// Each test binary uses its own part of the harness.
#![allow(dead_code, unused_macros)]

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sql_types::Text;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use mandate_store::PoolOptions;
use mandate_store::{
    Aidant, DataKey, Demarche, Identity, Mandate, NewAidant, NewMandate, Organisation, Sealer,
    Store, Usager,
};

pub const NOW: i64 = 1_750_000_000;
pub const DAY: i64 = 86_400;
pub const ISSUER: &str = "https://aidant-idp.test";

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn sealer() -> Sealer {
    Sealer::new(
        DataKey {
            kid: "data-2025".into(),
            key: [7; 32],
        },
        vec![],
        [3; 32],
    )
}

enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    Postgres {
        admin_url: String,
        url: String,
        name: String,
    },
}

pub struct TestDb {
    store: Option<Store>,
    backend: Backend,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url, &PoolOptions::sized(4), sealer()).expect("open sqlite store");
        store.migrate().expect("migrate sqlite");
        TestDb {
            store: Some(store),
            backend: Backend::Sqlite { _dir: dir, path },
        }
    }

    pub fn postgres() -> TestDb {
        let admin_url =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let name = format!("mandate_store_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!("PostgreSQL at TEST_DATABASE_URL is required for these tests: {e}")
        });
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        let backend = Backend::Postgres {
            admin_url,
            url: url.clone(),
            name,
        };
        // Built before the store so the database is dropped even if opening fails.
        let mut db = TestDb {
            store: None,
            backend,
        };
        let store =
            Store::open(&url, &PoolOptions::sized(4), sealer()).expect("open postgres store");
        store.migrate().expect("migrate postgres");
        db.store = Some(store);
        db
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    /// Runs SQL straight on the database, around the store.
    pub fn raw_execute(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut conn =
                    SqliteConnection::establish(&path.display().to_string()).expect("raw sqlite");
                conn.batch_execute("PRAGMA busy_timeout = 5000;")
                    .expect("busy timeout");
                conn.batch_execute(sql).expect("raw sql");
            }
            Backend::Postgres { url, .. } => {
                let mut conn = PgConnection::establish(url).expect("raw postgres");
                conn.batch_execute(sql).expect("raw sql");
            }
        }
    }

    /// PostgreSQL only: makes the database read-only for new sessions and ends the current
    /// ones (a primary demoted to a standby), or writable again.
    #[allow(dead_code)] // used by some test crates only
    pub fn set_read_only(&self, read_only: bool) {
        let Backend::Postgres {
            admin_url, name, ..
        } = &self.backend
        else {
            panic!("PostgreSQL only");
        };
        let mut admin = PgConnection::establish(admin_url).expect("admin connection");
        let sql = if read_only {
            format!(
                "ALTER DATABASE {name} SET default_transaction_read_only = on; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
        } else {
            format!("ALTER DATABASE {name} RESET default_transaction_read_only")
        };
        admin.batch_execute(&sql).expect("alter database");
    }

    /// Everything stored, as text: the SQLite files' bytes, or every row of every table.
    pub fn raw_dump(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut bytes = std::fs::read(path).expect("read sqlite file");
                let wal = path.with_extension("sqlite-wal");
                if let Ok(more) = std::fs::read(&wal) {
                    bytes.extend(more);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Backend::Postgres { url, .. } => {
                #[derive(QueryableByName)]
                struct Row {
                    #[diesel(sql_type = Text)]
                    row: String,
                }
                let mut conn = PgConnection::establish(url).expect("raw postgres");
                let mut out = String::new();
                for table in [
                    "organisations",
                    "aidants",
                    "memberships",
                    "usagers",
                    "mandates",
                    "journal",
                ] {
                    let rows: Vec<Row> =
                        diesel::sql_query(format!("SELECT CAST(t AS TEXT) AS row FROM {table} t"))
                            .load(&mut conn)
                            .expect("dump table");
                    for r in rows {
                        out.push_str(&r.row);
                        out.push('\n');
                    }
                }
                out
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.store.take());
        if let Backend::Postgres {
            admin_url, name, ..
        } = &self.backend
        {
            match PgConnection::establish(admin_url) {
                Ok(mut admin) => {
                    if let Err(e) =
                        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("could not drop test database {name}: {e}"),
            }
        }
    }
}

/// Generates one `#[test]` per backend for each behaviour `fn name(db: &TestDb)`:
/// `sqlite::name` and `postgres::name`.
macro_rules! behaviours {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = crate::common::TestDb::sqlite();
                    super::$name(&db);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let db = crate::common::TestDb::postgres();
                    super::$name(&db);
                }
            )*
        }
    };
}

pub fn identity(given_name: &str, family_name: &str) -> Identity {
    Identity {
        given_name: given_name.into(),
        family_name: family_name.into(),
        birthdate: "1962-08-24".into(),
        gender: "female".into(),
        birthplace: Some("75107".into()),
        birthcountry: "99100".into(),
        email: Some("usager@example.fr".into()),
        preferred_username: None,
    }
}

pub fn organisation(store: &Store, siret: &str, name: &str) -> Organisation {
    store
        .upsert_organisation(siret, name, true, NOW)
        .expect("organisation")
}

pub fn aidant(store: &Store, subject: &str, sirets: &[&str]) -> Aidant {
    store
        .upsert_aidant(&new_aidant(subject, true, sirets), NOW)
        .expect("aidant")
}

pub fn new_aidant(subject: &str, active: bool, sirets: &[&str]) -> NewAidant {
    NewAidant {
        issuer: ISSUER.into(),
        subject: subject.into(),
        email: format!("{subject}@structure.test"),
        given_name: "Abdel".into(),
        family_name: "Aidant".into(),
        active,
        organisation_sirets: sirets.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn usager(store: &Store, fc_sub: &str, given: &str, family: &str) -> Usager {
    store
        .upsert_usager(None, fc_sub, &identity(given, family), NOW)
        .expect("usager")
}

pub fn new_mandate(
    usager: &Usager,
    org: &Organisation,
    by: &Aidant,
    demarches: &[Demarche],
    days: i64,
) -> NewMandate {
    NewMandate {
        id: None,
        usager_id: usager.id.clone(),
        organisation_id: org.id.clone(),
        created_by: by.id.clone(),
        demarches: demarches.to_vec(),
        created_at: NOW,
        expires_at: NOW + days * DAY,
        revoked_at: None,
        consent: serde_json::json!({"method": "franceconnect", "confirmed_at": NOW}),
    }
}

pub fn mandate(
    store: &Store,
    usager: &Usager,
    org: &Organisation,
    by: &Aidant,
    demarches: &[Demarche],
    days: i64,
) -> Mandate {
    store
        .create_mandate(
            &new_mandate(usager, org, by, demarches, days),
            Some(&by.id),
            NOW,
        )
        .expect("mandate")
}

/// One organisation, one of its aidants, one usager and their mandate for argent + social
/// (one year).
pub struct World {
    pub org: Organisation,
    pub aidant: Aidant,
    pub usager: Usager,
    pub mandate: Mandate,
}

pub const SIRET: &str = "12345678900011";
pub const OTHER_SIRET: &str = "98765432100022";

pub fn world(store: &Store) -> World {
    let org = organisation(store, SIRET, "Centre social des Acacias");
    let aidant = aidant(store, "aidant-1", &[SIRET]);
    let usager = usager(store, "fc-sub-angela", "Angela Claire Louise", "DUBOIS");
    let mandate = mandate(
        store,
        &usager,
        &org,
        &aidant,
        &[Demarche::Argent, Demarche::Social],
        365,
    );
    World {
        org,
        aidant,
        usager,
        mandate,
    }
}
