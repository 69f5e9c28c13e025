//! Opening a store: URL schemes, precise connection errors, the in-memory database.

mod common;

use mandate_store::PoolOptions;
use mandate_store::{Demarche, Store, StoreError};

#[test]
fn unsupported_scheme_is_named_without_the_rest_of_the_url() {
    let err = Store::open(
        "mysql://root:hunter2@db/x",
        &PoolOptions::sized(2),
        common::sealer(),
    )
    .unwrap_err();
    assert!(matches!(&err, StoreError::UnsupportedUrl { scheme } if scheme == "mysql"));
    let message = err.to_string();
    assert!(message.contains("mysql"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let err = Store::open(
        "/var/lib/store.db",
        &PoolOptions::sized(2),
        common::sealer(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
}

#[test]
fn unreachable_postgres_is_reported_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = Store::open(
        "postgres://idp:s3cret-pw@127.0.0.1:1/mandates",
        &PoolOptions::sized(2),
        common::sealer(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            &err,
            StoreError::Connect {
                backend: "postgres",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("postgres"), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(!message.contains("s3cret-pw"), "{message}");
}

#[test]
fn sqlite_in_a_missing_directory_is_reported() {
    let err = Store::open(
        "sqlite:///nonexistent-dir-for-mandate-store/x.sqlite",
        &PoolOptions::sized(2),
        common::sealer(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            &err,
            StoreError::Connect {
                backend: "sqlite",
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("nonexistent-dir-for-mandate-store"),
        "{message}"
    );
}

#[test]
fn in_memory_sqlite_keeps_its_data_across_calls() {
    let store = Store::open("sqlite::memory:", &PoolOptions::sized(8), common::sealer()).unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.migrate().unwrap();
    let w = common::world(&store);
    let usable = store
        .usable_mandates(&w.org.id, &w.aidant.id, &[Demarche::Argent], common::NOW)
        .unwrap();
    assert_eq!(usable.len(), 1);
}

#[test]
fn backend_is_named_after_the_scheme() {
    let db = common::TestDb::sqlite();
    assert_eq!(db.store().backend(), "sqlite");
    let db = common::TestDb::postgres();
    assert_eq!(db.store().backend(), "postgres");
}

#[test]
fn malformed_postgres_url_is_reported_without_the_password() {
    let err = Store::open(
        "postgresql://idp:s3cret-pw@[::1/mandates",
        &PoolOptions::sized(2),
        common::sealer(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            &err,
            StoreError::Connect {
                backend: "postgres",
                ..
            }
        ),
        "{message}"
    );
    assert!(!message.contains("s3cret-pw"), "{message}");
}

#[test]
fn connections_the_server_closed_are_replaced_not_reused() {
    let db = common::TestDb::postgres();
    let store = db.store();
    for _ in 0..8 {
        store.ping().unwrap();
    }
    // The server ends every session of the store, as a restart or failover does.
    db.raw_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    // The first call may meet a dead connection; after it the pool checks the others and
    // opens new ones instead of failing once per dead connection, or forever.
    let failures = (0..12).filter(|_| store.ping().is_err()).count();
    assert!(failures <= 1, "{failures} calls failed after the restart");
    store.ping().unwrap();
}

#[test]
fn ping_says_whether_the_schema_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
    let store = Store::open(&url, &PoolOptions::sized(2), common::sealer()).unwrap();
    assert!(store.ping().is_err(), "no schema yet: not ready");
    store.migrate().unwrap();
    store.ping().unwrap();
    // One migration short of this build's: not ready either, and the error says what to run.
    let sql = "DELETE FROM __diesel_schema_migrations \
               WHERE version = (SELECT MAX(version) FROM __diesel_schema_migrations)";
    diesel::Connection::establish(&url.replace("sqlite://", ""))
        .and_then(|mut c: diesel::SqliteConnection| {
            diesel::RunQueryDsl::execute(diesel::sql_query(sql), &mut c)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        })
        .unwrap();
    let err = store.ping().unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
    assert!(err.to_string().contains("idp-proxy migrate"), "{err}");
}

#[test]
fn connections_never_land_on_a_server_that_only_reads() {
    let db = common::TestDb::postgres();
    let store = db.store();
    store.ping().unwrap();
    // The server turns read-only, as a primary demoted to a standby does, and its sessions
    // end: the pool must not reconnect to it and serve reads while every write fails.
    db.set_read_only(true);
    // The first call meets a connection the server closed, the second waits for a new one
    // (`acquire_timeout`) that the read-only server never gives.
    for _ in 0..2 {
        assert!(
            store.ping().is_err(),
            "a read-only server is no server here"
        );
    }
    // Writable again (a new primary at the same address): served again, same pool.
    db.set_read_only(false);
    store.ping().unwrap();
}
