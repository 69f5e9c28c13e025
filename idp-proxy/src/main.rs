//! The `idp-proxy` command: serve, and the operator's tools (keys, mandates, config).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use idp_proxy::config::Config;
use idp_proxy::keys::{hex, KeyRing};
use mandate_store::Actor;

// Many small short-lived allocations across worker and blocking threads: mimalloc avoids the
// arena lock contention glibc's allocator showed under load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "OpenID Provider for aidants acting under a usager's mandate"
)]
struct Cli {
    /// Configuration file (TOML); IDP_PROXY_SECTION__KEY variables override it.
    #[arg(
        long,
        short,
        env = "IDP_PROXY_CONFIG",
        default_value = "config/dev.toml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    #[command(subcommand)]
    Keys(KeysCommand),
    #[command(subcommand)]
    Mandates(MandatesCommand),
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(subcommand)]
    Clients(ClientsCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create the keys the ring lacks (ES256, RS256, data key, subject key); never overwrites.
    Generate,
}

#[derive(Subcommand)]
enum MandatesCommand {
    /// Load organisations, aidants, usagers and mandates from a TOML file (idempotent).
    Import { file: PathBuf },
    /// End a mandate now.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and say what to fix.
    Check,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Print the SHA-256 to put in `client_secret_sha256` (secret read from stdin).
    HashSecret,
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

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Clients(ClientsCommand::HashSecret) = cli.command {
        let mut secret = String::new();
        std::io::stdin().read_to_string(&mut secret)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, secret.trim_end().as_bytes());
        println!("{}", hex(digest.as_ref()));
        return Ok(());
    }
    let config = Config::load(&cli.config)?;
    let now = chrono::Utc::now().timestamp();
    match cli.command {
        Command::Serve => {
            init_logs();
            actix_web::rt::System::new().block_on(idp_proxy::serve(config))?;
        }
        Command::Migrate => {
            let keys = KeyRing::load(&config.keys.dir)?;
            idp_proxy::open_store(&config, &keys)?.migrate()?;
            eprintln!("migrations applied");
        }
        Command::Keys(KeysCommand::Generate) => {
            for f in KeyRing::generate(&config.keys.dir)? {
                eprintln!("created {}", f.display());
            }
        }
        Command::Mandates(cmd) => {
            let keys = KeyRing::load(&config.keys.dir)?;
            let store = idp_proxy::open_store(&config, &keys)?;
            store.migrate()?;
            match cmd {
                MandatesCommand::Import { file } => {
                    let summary = idp_proxy::import::import(&store, &config, &file, now)?;
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                }
                MandatesCommand::Revoke { id, reason } => {
                    let m = store.revoke_mandate(&id, &reason, Actor::Ops, now)?;
                    eprintln!("mandate {} revoked", m.id);
                }
            }
        }
        Command::Config(ConfigCommand::Check) => {
            KeyRing::load(&config.keys.dir)?;
            eprintln!("{}: configuration is valid", cli.config.display());
        }
        Command::Clients(_) => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
