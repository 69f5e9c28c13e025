//! Opening a store: URL schemes, precise connection errors, the in-memory database.

mod common;

use mandate_store::{Demarche, Store, StoreError};

#[test]
fn unsupported_scheme_is_named_without_the_rest_of_the_url() {
    let err = Store::open("mysql://root:hunter2@db/x", 2, common::sealer()).unwrap_err();
    assert!(matches!(&err, StoreError::UnsupportedUrl { scheme } if scheme == "mysql"));
    let message = err.to_string();
    assert!(message.contains("mysql"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let err = Store::open("/var/lib/store.db", 2, common::sealer()).unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
}

#[test]
fn unreachable_postgres_is_reported_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = Store::open(
        "postgres://idp:s3cret-pw@127.0.0.1:1/mandates",
        2,
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
        2,
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
    let store = Store::open("sqlite::memory:", 8, common::sealer()).unwrap();
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
        2,
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
