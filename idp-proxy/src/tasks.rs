//! What a serving node does besides answering requests, as named tasks: the key-ring reload
//! (keys added or rotated reach the node without a restart) and the retention purge. Each
//! tick is a function of its own, so tests run it without a timer.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use mandate_store::{Purged, StoreError};

use crate::config::Config;
use crate::keys::{KeyError, KeyRing};
use crate::provider::App;

/// Re-reads the ring; on success the node signs, opens and seals with it from now on.
pub fn reload_keys(app: &App) -> Result<(), KeyError> {
    let ring = KeyRing::load(&app.config.keys.dir)?;
    app.store.set_sealer(ring.sealer());
    app.keys.store(Arc::new(ring));
    Ok(())
}

/// Every `keys.reload_secs`; a failed reload keeps the loaded keys.
pub fn spawn_key_reload(app: web::Data<App>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(app.config.keys.reload);
        loop {
            tick.tick().await;
            if let Err(e) = reload_keys(&app) {
                tracing::warn!(error = %e, "key ring reload failed; keeping the loaded keys");
            }
        }
    });
}

/// What is older than this goes: `retention.days` before `now`.
pub fn retention_cutoff(config: &Config, now: i64) -> i64 {
    now - config.retention.days as i64 * 86_400
}

/// One purge, `batch` rows at a time (nodes take turns through the store's write lock; a
/// purge already done is a no-op).
pub async fn purge_once(app: &App, batch: i64) -> Result<Purged, StoreError> {
    let now = app.now();
    let cutoff = retention_cutoff(&app.config, now);
    app.write(move |store| store.purge_before(cutoff, now, batch))
        .await
}

/// A minute after start, then every `retention.purge_every_secs`: a node restarted more often
/// than the period still purges.
pub fn spawn_retention_purge(app: web::Data<App>) {
    actix_web::rt::spawn(async move {
        let first = actix_web::rt::time::Instant::now() + Duration::from_secs(60);
        let mut tick = actix_web::rt::time::interval_at(first, app.config.retention.purge_every);
        loop {
            tick.tick().await;
            match purge_once(&app, 1000).await {
                Ok(p) => tracing::info!(
                    journal_entries = p.journal_entries,
                    mandates = p.mandates,
                    usagers = p.usagers,
                    "retention purge"
                ),
                Err(e) => tracing::warn!(error = %e, "retention purge failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::data_rotation;
    use crate::testing::{MICHEL_MANDATE, NOW};

    #[actix_web::test]
    async fn a_data_key_rotation_reseals_every_identity_and_they_still_open() {
        let t = App::for_tests();
        let store = &t.app.store;
        let usage = |s: &mandate_store::Store| s.data_key_usage().unwrap();
        let before = usage(store);
        assert_eq!(
            before.len(),
            1,
            "one data key seals the demo world: {before:?}"
        );
        let mut steps = Vec::new();
        let after = data_rotation::rotate(&t.app.config.keys.dir, store, 1, |s| {
            steps.push(s.to_string())
        })
        .unwrap();
        assert!(steps[0].starts_with("announced") && steps[1].starts_with("activated"));
        assert_eq!(after.len(), 1, "every identity moved: {after:?}");
        assert_ne!(after[0].0, before[0].0);
        assert_eq!(after[0].1, before[0].1);
        // A node that reloads the ring opens them all.
        reload_keys(&t.app).unwrap();
        let mandate = store.mandate(MICHEL_MANDATE).unwrap().unwrap();
        let michel = store.usager(&mandate.usager_id).unwrap().unwrap();
        assert_eq!(michel.identity.given_name, "Michel");
    }

    #[actix_web::test]
    async fn the_purge_takes_only_what_is_past_retention() {
        let t = App::for_tests();
        let kept = purge_once(&t.app, 1000).await.unwrap();
        assert_eq!(kept.journal_entries, 0, "nothing is old yet");
        t.app
            .store
            .revoke_mandate(MICHEL_MANDATE, "test", mandate_store::Actor::Ops, NOW)
            .unwrap();
        t.clock
            .advance((t.app.config.retention.days as i64 + 1) * 86_400);
        let purged = purge_once(&t.app, 1000).await.unwrap();
        assert!(purged.journal_entries > 0, "{purged:?}");
        assert!(purged.mandates >= 1, "the ended mandate: {purged:?}");
        assert!(t.app.store.mandate(MICHEL_MANDATE).unwrap().is_none());
    }
}
