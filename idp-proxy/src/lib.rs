//! idp-proxy: an OpenID Provider that lets an aidant carry out a démarche for a usager who
//! gave the aidant's organisation a mandate. The token names the usager (`sub`) and the
//! aidant who acted (`act`). No credential of anyone is stored.

pub mod clock;
pub mod config;
pub mod ephemeral;
#[cfg(test)]
mod handler_tests;
pub mod import;
pub mod interaction;
pub mod journal;
pub mod keys;
pub mod metrics;
pub mod observe;
pub mod provider;
pub mod tasks;
#[cfg(test)]
pub mod testing;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{middleware, web, HttpResponse, HttpServer};
use mandate_store::Store;

use crate::config::{Config, EphemeralBackend};
use crate::ephemeral::{EphemeralStore, MemoryStore, RedisStore};
use crate::keys::KeyRing;
use crate::provider::App;
use crate::upstream::{OidcUpstream, Upstream};

/// Largest request body any endpoint reads.
const MAX_BODY: usize = 64 * 1024;

/// Opens the mandate store with the key ring's sealer.
pub fn open_store(config: &Config, keys: &KeyRing) -> anyhow::Result<Store> {
    Ok(Store::open(
        &config.database.url,
        &config.database.pool_options(),
        keys.sealer(),
    )?)
}

pub async fn build_app(config: Config) -> anyhow::Result<App> {
    let keys = KeyRing::load(&config.keys.dir)?;
    let store = open_store(&config, &keys)?;
    if config.database.migrate_at_start {
        store.migrate()?;
    }
    let e = &config.ephemeral;
    let timeout = e.timeout;
    let url = e.url.as_deref().unwrap_or_default();
    let ephemeral: Arc<dyn EphemeralStore> = match e.backend {
        EphemeralBackend::Memory => Arc::new(MemoryStore::default()),
        EphemeralBackend::Redis => Arc::new(RedisStore::connect(url, &e.prefix, timeout).await?),
        EphemeralBackend::RedisCluster => {
            let nodes: Vec<&str> = url.split(',').map(str::trim).collect();
            Arc::new(RedisStore::connect_cluster(&nodes, &e.prefix, timeout).await?)
        }
    };
    let upstream = Arc::new(OidcUpstream::new(
        config.upstream.aidant.clone(),
        format!("{}/login/callback", config.server.issuer),
    )?);
    let franceconnect = config
        .upstream
        .franceconnect
        .clone()
        .map(|fc| {
            let back = format!("{}/franceconnect/callback", config.server.issuer);
            OidcUpstream::new(fc, back).map(|u| Arc::new(u) as Arc<dyn Upstream>)
        })
        .transpose()?;
    let parts = Parts {
        keys,
        store,
        ephemeral,
        upstream,
        franceconnect,
        clock: Arc::new(clock::SystemClock),
    };
    assemble(config, parts)
}

/// What an App is made of besides its config: the real ones (`build_app`) or the test seam's.
pub struct Parts {
    pub keys: KeyRing,
    pub store: Store,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub upstream: Arc<dyn Upstream>,
    pub franceconnect: Option<Arc<dyn Upstream>>,
    pub clock: Arc<dyn clock::Clock>,
}

pub fn assemble(config: Config, parts: Parts) -> anyhow::Result<App> {
    let Parts {
        keys,
        store,
        ephemeral,
        upstream,
        franceconnect,
        clock,
    } = parts;
    Ok(App {
        franceconnect,
        client_keys: provider::client_keys::ClientKeys::new(std::time::Duration::from_secs(5))?,
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        deliveries: provider::backchannel::Deliveries::here()?,
        discovery_json: provider::discovery::document(&config),
        // SQLite has one writer at a time: two slots (one writing, one ready, so the hand-off
        // to the blocking pool overlaps the write) keep queued writers from holding the
        // connections that inline reads need.
        db_slots: Arc::new(tokio::sync::Semaphore::new(
            if store.backend() == "sqlite" {
                2
            } else {
                config.database.max_connections.max(1) as usize
            },
        )),
        config,
        keys: arc_swap::ArcSwap::from_pointee(keys),
        store,
        ephemeral,
        upstream,
        clock,
        draining: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Every route, and what every request reads: the app, body limits, the form error page.
pub fn services(app: web::Data<App>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(app)
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .app_data(
                web::FormConfig::default()
                    .limit(MAX_BODY)
                    .error_handler(|err, _| {
                        // Our pages' forms always carry their fields: one that lacks some is
                        // stale or forged, and gets the French page, not a parser message.
                        let page = provider::page::ErrorPage::expired().response();
                        actix_web::error::InternalError::from_response(err, page).into()
                    }),
            )
            .configure(provider::routes)
            .configure(interaction::routes);
    }
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let workers = config.server.workers;
    let shutdown = config.server.shutdown_timeout;
    let drain = config.server.drain;
    let metrics_listen = config.metrics.as_ref().map(|m| m.listen);
    for warning in config.warnings() {
        tracing::warn!(%warning, "configuration");
    }
    let app = web::Data::new(build_app(config).await?);
    let registry = web::Data::new(metrics::init()?);
    let metrics_app = app.clone();
    let stopping = app.clone();
    let finishing = app.clone();
    // Database writes are the only blocking calls, at most one per pooled connection: a small
    // fixed set of blocking threads per worker serves them without churn.
    let blocking = (app.config.database.max_connections as usize).clamp(2, 16);
    tracing::info!(%listen, issuer = app.issuer(), "idp-proxy listening");
    tasks::spawn_key_reload(app.clone());
    if app.config.retention.automatic {
        tasks::spawn_retention_purge(app.clone());
    }
    let mut server = HttpServer::new(move || {
        actix_web::App::new()
            .configure(services(app.clone()))
            .wrap(
                middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .wrap(middleware::from_fn(observe::observe))
    })
    .worker_max_blocking_threads(blocking)
    .shutdown_timeout(shutdown.as_secs())
    .disable_signals()
    .bind(listen)?;
    if let Some(w) = workers {
        server = server.workers(w);
    }
    let signals = Signals::register()?;
    let server = server.run();
    let stopped = actix_web::rt::spawn(signals.handle(server.handle(), stopping, drain, shutdown));
    let Some(addr) = metrics_listen else {
        let served = server.await;
        after_stop(stopped, &finishing).await;
        return Ok(served?);
    };
    tracing::info!(listen = %addr, "metrics listening");
    // Signals are the main server's: the metrics listener stops once it has drained.
    let metrics = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(metrics_app.clone())
            .app_data(registry.clone())
            .route("/metrics", web::get().to(serve_metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?
    .run();
    let metrics_handle = metrics.handle();
    let metrics = actix_web::rt::spawn(metrics);
    let served = server.await;
    after_stop(stopped, &finishing).await;
    metrics_handle.stop(true).await;
    let _ = metrics.await;
    Ok(served?)
}

/// After the server has stopped: on a graceful stop, waits for the signal handler to have
/// finished the back-channel deliveries; otherwise leaves at once.
async fn after_stop(stopped: actix_web::rt::task::JoinHandle<()>, app: &App) {
    if app.is_draining() {
        let _ = stopped.await;
    } else {
        stopped.abort();
    }
}

/// The signals a node answers, registered before it serves: a node that could not hear
/// SIGTERM would not start.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// SIGTERM: drain (not ready, still serving) for `drain`, then stop accepting and let
    /// in-flight requests, then back-channel logout deliveries, finish within `shutdown`
    /// (`server.shutdown_timeout_secs`). SIGINT, SIGQUIT, or a second SIGTERM at any point:
    /// stop at once.
    async fn handle(
        mut self,
        server: actix_web::dev::ServerHandle,
        app: web::Data<App>,
        drain: Duration,
        shutdown: Duration,
    ) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => return server.stop(false).await,
            _ = self.quit.recv() => return server.stop(false).await,
        }
        tracing::info!(drain_secs = drain.as_secs(), "SIGTERM received; draining");
        app.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = self.term.recv() => return server.stop(false).await,
            _ = self.int.recv() => return server.stop(false).await,
            _ = self.quit.recv() => return server.stop(false).await,
        }
        tracing::info!("drained; finishing in-flight requests");
        // In-flight requests first (a logout among them may start a delivery), then the
        // deliveries, both within one deadline; a signal meanwhile stops at once.
        let deadline = tokio::time::Instant::now() + shutdown;
        let graceful = async {
            server.stop(true).await;
            let left = app
                .deliveries
                .finish(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await;
            if left > 0 {
                tracing::warn!(left, "back-channel logouts still undelivered at exit");
            }
        };
        tokio::select! {
            () = graceful => {}
            _ = self.term.recv() => server.stop(false).await,
            _ = self.int.recv() => server.stop(false).await,
            _ = self.quit.recv() => server.stop(false).await,
        }
    }
}

async fn serve_metrics(
    app: web::Data<App>,
    registry: web::Data<&'static metrics::Metrics>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(registry.render(app.store.failures()))
}
