//! The `idp-proxy` command line: one module per command group (`keys`, `directory` for
//! organisations, aidants and mandates, `journal` for the journal and retention); `serve`,
//! `migrate`, `config check` and `clients hash-secret` here.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use idp_proxy::config::Config;
use idp_proxy::keys::{hex, KeyRing};

mod directory;
mod journal;
mod keys;

#[derive(Parser)]
#[command(
    version,
    about = "OpenID Provider for aidants acting under a usager's mandate"
)]
pub struct Cli {
    /// Configuration file (TOML); IDP_PROXY_SECTION__KEY variables override it.
    #[arg(
        long,
        short,
        env = "IDP_PROXY_CONFIG",
        default_value = "config/dev.toml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the provider.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    #[command(subcommand)]
    Mandates(directory::MandatesCommand),
    #[command(subcommand)]
    Organisations(directory::OrganisationsCommand),
    #[command(subcommand)]
    Aidants(directory::AidantsCommand),
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    #[command(subcommand)]
    Retention(journal::RetentionCommand),
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(subcommand)]
    Clients(ClientsCommand),
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and say what to fix.
    Check,
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Print the SHA-256 to put in `client_secret_sha256` (secret read from stdin).
    HashSecret,
}

/// What every command reads: the config, the time it started.
pub struct Context {
    pub config: Config,
    pub now: i64,
}

impl Context {
    /// The mandate store with migrations applied, for the operator's commands. They may run
    /// long statements (imports, purges, re-sealing): the request-sized statement timeout is
    /// off.
    pub fn store(&self) -> anyhow::Result<mandate_store::Store> {
        let keys = KeyRing::load(&self.config.keys.dir)?;
        let mut config = self.config.clone();
        config.database.statement_timeout = std::time::Duration::ZERO;
        // One command, one connection, none opened ahead in the pool's background threads: a
        // connection still being opened (libpq, GSSAPI included) when the process exits can
        // abort it in libkrb5's exit handlers (seen in CI: `journal export` ending in SIGABRT
        // after its output was complete).
        config.database.max_connections = 1;
        config.database.min_idle = Some(0);
        let store = idp_proxy::open_store(&config, &keys)?;
        store.migrate()?;
        Ok(store)
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Clients(ClientsCommand::HashSecret) = cli.command {
        let mut secret = String::new();
        std::io::stdin().read_to_string(&mut secret)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, secret.trim_end().as_bytes());
        println!("{}", hex(digest.as_ref()));
        return Ok(());
    }
    let cx = Context {
        config: Config::load(&cli.config)?,
        now: chrono::Utc::now().timestamp(),
    };
    match cli.command {
        Command::Serve => {
            init_logs();
            actix_web::rt::System::new().block_on(idp_proxy::serve(cx.config))?;
        }
        Command::Migrate => {
            let keys = KeyRing::load(&cx.config.keys.dir)?;
            idp_proxy::open_store(&cx.config, &keys)?.migrate()?;
            eprintln!("migrations applied");
        }
        Command::Keys(cmd) => keys::run(cmd, &cx)?,
        Command::Mandates(cmd) => directory::mandates(cmd, &cx)?,
        Command::Organisations(cmd) => directory::organisations(cmd, &cx)?,
        Command::Aidants(cmd) => directory::aidants(cmd, &cx)?,
        Command::Journal(cmd) => journal::journal(cmd, &cx)?,
        Command::Retention(cmd) => journal::retention(cmd, &cx)?,
        Command::Config(ConfigCommand::Check) => {
            KeyRing::load(&cx.config.keys.dir)?;
            for warning in cx.config.warnings() {
                eprintln!("warning: {warning}");
            }
            eprintln!("{}: configuration is valid", cli.config.display());
        }
        Command::Clients(_) => {}
    }
    Ok(())
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IDP_PROXY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
