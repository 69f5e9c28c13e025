//! The ephemeral store's conformance suite: one list of named cases, the concurrent ones
//! included, that every backend runs (memory, Redis, a Redis Cluster). Each case gets its own
//! key prefix; a failing case names itself.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::EphemeralStore;

type Case = for<'a> fn(&'a dyn EphemeralStore, String) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("take_is_single_use", |s, k| {
        Box::pin(take_is_single_use(s, k))
    }),
    ("put_if_absent_keeps_the_first", |s, k| {
        Box::pin(put_if_absent_keeps_the_first(s, k))
    }),
    ("delete_removes", |s, k| Box::pin(delete_removes(s, k))),
    ("entries_expire", |s, k| Box::pin(entries_expire(s, k))),
    ("take_and_put_swaps_only_a_present_key", |s, k| {
        Box::pin(take_and_put_swaps_only_a_present_key(s, k))
    }),
    ("counters_count_within_a_fixed_window", |s, k| {
        Box::pin(counters_count_within_a_fixed_window(s, k))
    }),
    ("concurrent_takes_have_one_winner", |s, k| {
        Box::pin(concurrent_takes_have_one_winner(s, k))
    }),
    ("concurrent_put_if_absent_has_one_winner", |s, k| {
        Box::pin(concurrent_put_if_absent_has_one_winner(s, k))
    }),
    ("concurrent_swaps_have_one_winner", |s, k| {
        Box::pin(concurrent_swaps_have_one_winner(s, k))
    }),
];

/// Runs every case on `store`, each under `{prefix}:{case}:`.
pub async fn run(store: &dyn EphemeralStore, prefix: &str) {
    for (name, case) in CASES {
        eprintln!("ephemeral conformance case: {name}");
        case(store, format!("{prefix}:{name}:")).await;
    }
}

const TTL: Duration = Duration::from_secs(60);

async fn take_is_single_use(s: &dyn EphemeralStore, k: String) {
    let key = format!("{k}a");
    s.put(&key, b"1".to_vec(), TTL).await.unwrap();
    assert_eq!(s.get(&key).await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.take(&key).await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.take(&key).await.unwrap(), None, "take is single use");
}

async fn put_if_absent_keeps_the_first(s: &dyn EphemeralStore, k: String) {
    let key = format!("{k}b");
    assert!(s.put_if_absent(&key, b"x".to_vec(), TTL).await.unwrap());
    assert!(!s.put_if_absent(&key, b"y".to_vec(), TTL).await.unwrap());
    assert_eq!(s.get(&key).await.unwrap(), Some(b"x".to_vec()));
}

async fn delete_removes(s: &dyn EphemeralStore, k: String) {
    let key = format!("{k}c");
    s.put(&key, b"x".to_vec(), TTL).await.unwrap();
    s.delete(&key).await.unwrap();
    assert_eq!(s.get(&key).await.unwrap(), None);
    s.delete(&key).await.unwrap();
}

async fn entries_expire(s: &dyn EphemeralStore, k: String) {
    let key = format!("{k}short");
    s.put(&key, b"s".to_vec(), Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.get(&key).await.unwrap(), None, "expired");
    assert!(
        s.put_if_absent(&key, b"t".to_vec(), TTL).await.unwrap(),
        "an expired key is absent"
    );
}

async fn take_and_put_swaps_only_a_present_key(s: &dyn EphemeralStore, k: String) {
    // One `{hash tag}`: one Redis Cluster slot, as codes and their access tokens share.
    let (from, to) = (format!("{k}{{t}}:from"), format!("{k}{{t}}:to"));
    s.put(&from, b"code".to_vec(), TTL).await.unwrap();
    assert!(s
        .take_and_put(&from, &to, b"token".to_vec(), TTL)
        .await
        .unwrap());
    assert_eq!(s.get(&from).await.unwrap(), None, "taken");
    assert_eq!(s.get(&to).await.unwrap(), Some(b"token".to_vec()));
    s.delete(&to).await.unwrap();
    assert!(!s
        .take_and_put(&from, &to, b"again".to_vec(), TTL)
        .await
        .unwrap());
    assert_eq!(s.get(&to).await.unwrap(), None, "nothing stored");
}

async fn counters_count_within_a_fixed_window(s: &dyn EphemeralStore, k: String) {
    // One more each time, within a window that later increments do not extend.
    let (key, window) = (format!("{k}n"), Duration::from_millis(800));
    assert_eq!(s.incr(&key, window).await.unwrap(), 1);
    assert_eq!(s.incr(&key, window).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.incr(&key, window).await.unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.incr(&key, window).await.unwrap(), 1, "a new window");
}

/// `rounds` races of two requests on one fresh key: exactly one may win each.
async fn races<'a, F, Fut>(rounds: usize, k: &str, mut prepare: F)
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = (bool, bool)> + 'a,
{
    for round in 0..rounds {
        let (a, b) = prepare(format!("{k}{{race-{round}}}")).await;
        assert!(
            a ^ b,
            "round {round}: exactly one of two concurrent requests wins"
        );
    }
}

async fn concurrent_takes_have_one_winner(s: &dyn EphemeralStore, k: String) {
    races(50, &k, |key| async move {
        s.put(&key, b"v".to_vec(), TTL).await.unwrap();
        let (a, b) = tokio::join!(s.take(&key), s.take(&key));
        (a.unwrap().is_some(), b.unwrap().is_some())
    })
    .await;
}

async fn concurrent_put_if_absent_has_one_winner(s: &dyn EphemeralStore, k: String) {
    races(50, &k, |key| async move {
        let (a, b) = tokio::join!(
            s.put_if_absent(&key, b"a".to_vec(), TTL),
            s.put_if_absent(&key, b"b".to_vec(), TTL)
        );
        (a.unwrap(), b.unwrap())
    })
    .await;
}

async fn concurrent_swaps_have_one_winner(s: &dyn EphemeralStore, k: String) {
    // Two redemptions of one code: one access token stored, never two.
    races(50, &k, |key| async move {
        let (to_a, to_b) = (format!("{key}:a"), format!("{key}:b"));
        s.put(&key, b"code".to_vec(), TTL).await.unwrap();
        let (a, b) = tokio::join!(
            s.take_and_put(&key, &to_a, b"a".to_vec(), TTL),
            s.take_and_put(&key, &to_b, b"b".to_vec(), TTL)
        );
        (a.unwrap(), b.unwrap())
    })
    .await;
}
