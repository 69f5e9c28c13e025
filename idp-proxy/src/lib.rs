//! idp-proxy: an OpenID Provider that lets an aidant carry out a démarche for a usager who
//! gave the aidant's organisation a mandate. The token names the usager (`sub`) and the
//! aidant who acted (`act`). No credential of anyone is stored.

pub mod clock;
pub mod config;
pub mod ephemeral;
pub mod import;
pub mod interaction;
pub mod journal;
pub mod keys;
pub mod provider;
pub mod upstream;

use std::sync::Arc;

use actix_web::{middleware, web, HttpResponse, HttpServer};
use mandate_store::Store;

use crate::config::{Config, EphemeralBackend};
use crate::ephemeral::{EphemeralStore, MemoryStore, RedisStore};
use crate::keys::KeyRing;
use crate::provider::App;
use crate::upstream::Upstream;

/// Largest request body any endpoint reads.
const MAX_BODY: usize = 64 * 1024;

/// Opens the mandate store with the key ring's sealer.
pub fn open_store(config: &Config, keys: &KeyRing) -> anyhow::Result<Store> {
    Ok(Store::open(
        &config.database.url,
        config.database.max_connections,
        keys.sealer(),
    )?)
}

pub async fn build_app(config: Config) -> anyhow::Result<App> {
    let keys = KeyRing::load(&config.keys.dir)?;
    let store = open_store(&config, &keys)?;
    store.migrate()?;
    let ephemeral: Arc<dyn EphemeralStore> = match config.ephemeral.backend {
        EphemeralBackend::Memory => Arc::new(MemoryStore::default()),
        EphemeralBackend::Redis => {
            let e = &config.ephemeral;
            let timeout = std::time::Duration::from_millis(e.timeout_ms);
            Arc::new(
                RedisStore::connect(e.url.as_deref().unwrap_or_default(), &e.prefix, timeout)
                    .await?,
            )
        }
    };
    let upstream = Upstream::new(
        config.upstream.aidant.clone(),
        format!("{}/login/callback", config.server.issuer),
    )?;
    let franceconnect = config
        .upstream
        .franceconnect
        .clone()
        .map(|fc| {
            Upstream::new(
                fc,
                format!("{}/franceconnect/callback", config.server.issuer),
            )
        })
        .transpose()?;
    Ok(App {
        franceconnect,
        client_keys: provider::client_keys::ClientKeys::new(std::time::Duration::from_secs(5))?,
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        discovery_json: provider::discovery::document(&config),
        // SQLite has one writer at a time: two slots (one writing, one ready, so the hand-off
        // to the blocking pool overlaps the write) keep queued writers from holding the
        // connections that inline reads need.
        db_slots: tokio::sync::Semaphore::new(if store.backend() == "sqlite" {
            2
        } else {
            config.database.max_connections.max(1) as usize
        }),
        config,
        keys: arc_swap::ArcSwap::from_pointee(keys),
        store,
        ephemeral,
        upstream,
        clock: Arc::new(clock::SystemClock),
    })
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let workers = config.server.workers;
    let app = web::Data::new(build_app(config).await?);
    // Database writes are the only blocking calls, at most one per pooled connection: a small
    // fixed set of blocking threads per worker serves them without churn.
    let blocking = (app.config.database.max_connections as usize).clamp(2, 16);
    tracing::info!(%listen, issuer = app.issuer(), "idp-proxy listening");
    // Keys added or rotated (data keys, signing keys) reach this node without a restart.
    let reload = app.clone();
    actix_web::rt::spawn(async move {
        let every = std::time::Duration::from_secs(reload.config.keys.reload_secs.max(1));
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            match KeyRing::load(&reload.config.keys.dir) {
                Ok(ring) => {
                    reload.store.set_sealer(ring.sealer());
                    reload.keys.store(Arc::new(ring));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "key ring reload failed; keeping the loaded keys")
                }
            }
        }
    });
    if app.config.retention.automatic {
        // Nodes take turns through the store's write lock; a purge already done is a no-op.
        let purge = app.clone();
        actix_web::rt::spawn(async move {
            let every = std::time::Duration::from_secs(purge.config.retention.purge_every_secs);
            // A minute after start, then every period: a node restarted more often than the
            // period still purges.
            let first = actix_web::rt::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut tick = actix_web::rt::time::interval_at(first, every);
            loop {
                tick.tick().await;
                let now = purge.now();
                let cutoff = now - purge.config.retention.days as i64 * 86_400;
                match purge
                    .write(move |store| store.purge_before(cutoff, now, 1000))
                    .await
                {
                    Ok(Ok(p)) => tracing::info!(
                        journal_entries = p.journal_entries,
                        mandates = p.mandates,
                        usagers = p.usagers,
                        "retention purge"
                    ),
                    Ok(Err(e)) => tracing::warn!(error = %e, "retention purge failed"),
                    Err(e) => tracing::warn!(error = %e, "retention purge could not run"),
                }
            }
        });
    }
    let mut server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(app.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .app_data(
                web::FormConfig::default()
                    .limit(MAX_BODY)
                    .error_handler(|err, _| {
                        // Our pages' forms always carry their fields: one that lacks some is
                        // stale or forged, and gets the French page, not a parser message.
                        let page = interaction::page::ErrorPage::expired().response();
                        actix_web::error::InternalError::from_response(err, page).into()
                    }),
            )
            .wrap(
                middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .configure(provider::routes)
            .configure(interaction::routes)
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().body("ok") }),
            )
    })
    .worker_max_blocking_threads(blocking)
    .bind(listen)?;
    if let Some(w) = workers {
        server = server.workers(w);
    }
    server.run().await?;
    Ok(())
}
