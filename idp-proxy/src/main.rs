//! The `idp-proxy` command: serve, and the operator's tools (keys, mandates, config).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use idp_proxy::config::Config;
use idp_proxy::keys::{hex, KeyRing};
use mandate_store::{Actor, Demarche, JournalFilter, NewAidant};

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
    Organisations(OrganisationsCommand),
    #[command(subcommand)]
    Aidants(AidantsCommand),
    #[command(subcommand)]
    Journal(JournalCommand),
    #[command(subcommand)]
    Retention(RetentionCommand),
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(subcommand)]
    Clients(ClientsCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create the keys the ring lacks (ES256, RS256 and PS256 signing keys, active and next;
    /// encryption, data and subject keys); never overwrites.
    Generate,
    /// Rotate the signing keys without downtime: each next key (published since the last
    /// rotation) starts signing, each active key retires (still published until the tokens
    /// it signed expire), new next keys are published. Refused while a next key is younger
    /// than keys.jwks_max_age_secs plus two reloads.
    Rotate,
    /// List the signing keys: kid, algorithm, state.
    List,
    /// Add a data key and re-seal every usager identity with it, while nodes keep serving:
    /// the key is announced (readable by nodes), then activated, then identities are re-sealed
    /// in batches. Older data keys stay in the ring: remove them once backups no longer need them.
    RotateDataKey {
        /// Seconds to wait at each step for every node to reload the ring (keys.reload_secs
        /// plus a margin).
        #[arg(long, default_value_t = 30)]
        settle_secs: u64,
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
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
enum OrganisationsCommand {
    /// Create an organisation, or rename it.
    Add {
        #[arg(long)]
        siret: String,
        #[arg(long)]
        name: String,
    },
    /// List organisations (tab-separated: siret, active, name, who may use mandates).
    List,
    /// Disable an organisation: none of its aidants can use a mandate.
    Disable { siret: String },
    /// Enable it again.
    Enable { siret: String },
    /// Choose who may use the organisation's mandates: any of its aidants (default) or only
    /// the aidant who created each mandate.
    MandateUse {
        siret: String,
        #[arg(value_enum)]
        by: MandateUse,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MandateUse {
    /// Any aidant of the organisation.
    AnyAidant,
    /// Only the aidant who created the mandate.
    Creator,
}

#[derive(Subcommand)]
enum AidantsCommand {
    /// Create an aidant, or update them (memberships replaced by the --organisation list).
    Add {
        /// The identifier the aidants' IdP gives (see upstream.aidant.subject_claim).
        #[arg(long)]
        subject: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        /// SIRET of an organisation (repeat for several).
        #[arg(long = "organisation", required = true)]
        organisations: Vec<String>,
    },
    /// List aidants (tab-separated: subject, active, name, sirets).
    List,
    /// Disable an aidant: they can neither log in nor use a mandate.
    Disable { subject: String },
    /// Enable them again.
    Enable { subject: String },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Check the whole hash chain; on a break, say which entry and how, and exit 1.
    Verify,
    /// Write journal entries as CSV (names resolved) to stdout, newest first.
    Export {
        /// Only this organisation's entries (SIRET).
        #[arg(long)]
        organisation: Option<String>,
        /// Only this aidant's entries (their subject at the aidants' IdP).
        #[arg(long)]
        aidant: Option<String>,
        /// Only this démarche.
        #[arg(long)]
        demarche: Option<Demarche>,
        /// First day included (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        /// Last day included (YYYY-MM-DD, UTC).
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete what is older than `retention.days`: journal entries (the purge is journaled,
    /// so `journal verify` still verifies the rest), mandates ended before then, and the
    /// identities of usagers left without mandates. Nodes also do it when
    /// `retention.automatic` is on.
    Purge {
        #[arg(long, default_value_t = 1000)]
        batch: i64,
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

/// The mandate store with migrations applied, for the operator's commands. They may run long
/// statements (imports, purges, re-sealing): the request-sized statement timeout is off.
fn open(config: &Config) -> anyhow::Result<mandate_store::Store> {
    let keys = KeyRing::load(&config.keys.dir)?;
    let mut config = config.clone();
    config.database.statement_timeout = std::time::Duration::ZERO;
    let store = idp_proxy::open_store(&config, &keys)?;
    store.migrate()?;
    Ok(store)
}

fn state(active: bool) -> &'static str {
    if active {
        "active"
    } else {
        "disabled"
    }
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
        Command::Keys(KeysCommand::Rotate) => {
            // Retired keys stay published as long as a token they signed may be checked: an
            // ID token kept as a logout hint lives as long as the aidant's session.
            let keep = config.tokens.id_token_ttl.max(config.session.max_lifetime)
                + 2 * config.keys.reload
                + std::time::Duration::from_secs(60);
            let rotated = KeyRing::rotate(
                &config.keys.dir,
                config.keys.min_next_age(),
                now + keep.as_secs() as i64,
            )?;
            for r in rotated {
                match r.activated {
                    Some(kid) => println!(
                        "{}: {kid} now signs; retired {}; next {}",
                        r.alg.as_str(),
                        if r.retired.is_empty() {
                            "none".into()
                        } else {
                            r.retired.join(", ")
                        },
                        r.next
                    ),
                    None => println!(
                        "{}: no next key yet; published {} (run `keys rotate` again in {} s)",
                        r.alg.as_str(),
                        r.next,
                        config.keys.min_next_age().as_secs()
                    ),
                }
            }
        }
        Command::Keys(KeysCommand::List) => {
            let ring = KeyRing::load(&config.keys.dir)?;
            for k in ring.signing_keys() {
                let until = match k.state {
                    idp_proxy::keys::KeyState::Retired { until } => format!("\tuntil {until}"),
                    _ => String::new(),
                };
                println!("{}\t{}\t{}{until}", k.kid, k.alg.as_str(), k.state.as_str());
            }
        }
        Command::Keys(KeysCommand::RotateDataKey { settle_secs, batch }) => {
            let store = open(&config)?;
            let settle = std::time::Duration::from_secs(settle_secs);
            let announced = KeyRing::announce_data_key(&config.keys.dir)?;
            eprintln!(
                "announced {}; waiting {settle_secs} s for nodes to load it",
                announced.display()
            );
            std::thread::sleep(settle);
            let active = KeyRing::activate_data_key(&announced)?;
            eprintln!(
                "activated {}; waiting {settle_secs} s before re-sealing",
                active.display()
            );
            std::thread::sleep(settle);
            store.set_sealer(KeyRing::load(&config.keys.dir)?.sealer());
            let mut total = 0;
            loop {
                let n = store.reseal_usagers(batch)?;
                if n == 0 {
                    break;
                }
                total += n;
                eprintln!("re-sealed {total} identities");
            }
            for (kid, count) in store.data_key_usage()? {
                println!("{kid}\t{count}");
            }
        }
        Command::Keys(KeysCommand::Generate) => {
            for f in KeyRing::generate(&config.keys.dir)? {
                eprintln!("created {}", f.display());
            }
        }
        Command::Mandates(cmd) => {
            let store = open(&config)?;
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
        Command::Organisations(cmd) => {
            let store = open(&config)?;
            match cmd {
                OrganisationsCommand::Add { siret, name } => {
                    let o = store.upsert_organisation(&siret, &name, true, now)?;
                    eprintln!("organisation {} ({}) saved", o.siret, o.name);
                }
                OrganisationsCommand::List => {
                    for o in store.organisations()? {
                        let by = if o.mandates_bound_to_creator {
                            "creator"
                        } else {
                            "any-aidant"
                        };
                        println!("{}\t{}\t{}\t{by}", o.siret, state(o.active), o.name);
                    }
                }
                OrganisationsCommand::MandateUse { siret, by } => {
                    let bound = matches!(by, MandateUse::Creator);
                    store.set_mandates_bound_to_creator(&siret, bound, now)?;
                    eprintln!(
                        "organisation {siret}: mandates usable by {}",
                        if bound {
                            "their creator only"
                        } else {
                            "any of its aidants"
                        }
                    );
                }
                OrganisationsCommand::Disable { siret } => {
                    store.set_organisation_active(&siret, false, now)?;
                    eprintln!("organisation {siret} disabled");
                }
                OrganisationsCommand::Enable { siret } => {
                    store.set_organisation_active(&siret, true, now)?;
                    eprintln!("organisation {siret} enabled");
                }
            }
        }
        Command::Aidants(cmd) => {
            let store = open(&config)?;
            let issuer = config.upstream.aidant.issuer.to_string();
            match cmd {
                AidantsCommand::Add {
                    subject,
                    email,
                    given_name,
                    family_name,
                    organisations,
                } => {
                    let a = store.upsert_aidant(
                        &NewAidant {
                            issuer,
                            subject,
                            email,
                            given_name,
                            family_name,
                            active: true,
                            organisation_sirets: organisations,
                        },
                        now,
                    )?;
                    eprintln!("aidant {} saved (id {})", a.subject, a.id);
                }
                AidantsCommand::List => {
                    for (a, sirets) in store.aidants()? {
                        println!(
                            "{}\t{}\t{} {}\t{}",
                            a.subject,
                            state(a.active),
                            a.given_name,
                            a.family_name,
                            sirets.join(",")
                        );
                    }
                }
                AidantsCommand::Disable { subject } => {
                    store.set_aidant_active(&issuer, &subject, false, now)?;
                    eprintln!("aidant {subject} disabled");
                }
                AidantsCommand::Enable { subject } => {
                    store.set_aidant_active(&issuer, &subject, true, now)?;
                    eprintln!("aidant {subject} enabled");
                }
            }
        }
        Command::Journal(JournalCommand::Export {
            organisation,
            aidant,
            demarche,
            since,
            until,
        }) => {
            let store = open(&config)?;
            let mut filter = JournalFilter::default();
            if let Some(siret) = organisation {
                let o = store
                    .organisation_by_siret(&siret)?
                    .ok_or_else(|| anyhow::anyhow!("no organisation with SIRET {siret}"))?;
                filter.organisation_id = Some(o.id);
            }
            if let Some(subject) = aidant {
                let a = store
                    .aidant_by_subject(&config.upstream.aidant.issuer, &subject)?
                    .ok_or_else(|| anyhow::anyhow!("no aidant with subject {subject}"))?;
                filter.aidant_id = Some(a.id);
            }
            let day = |d: chrono::NaiveDate, h, m, s| {
                d.and_hms_opt(h, m, s).map(|t| t.and_utc().timestamp())
            };
            filter.since = since.and_then(|d| day(d, 0, 0, 0));
            filter.until = until.and_then(|d| day(d, 23, 59, 59));
            let lines = idp_proxy::journal::lines(&store, &filter, demarche)?;
            let stdout = std::io::stdout();
            idp_proxy::journal::write_csv(&lines, &mut stdout.lock())?;
        }
        Command::Journal(JournalCommand::Verify) => {
            let store = open(&config)?;
            let report = store.verify_journal()?;
            println!(
                "journal intact: {} entries from seq {}, last seq {}, last hash {}",
                report.entries, report.first_seq, report.last_seq, report.last_hash
            );
        }
        Command::Retention(RetentionCommand::Purge { batch }) => {
            let store = open(&config)?;
            let cutoff = now - config.retention.days as i64 * 86_400;
            let purged = store.purge_before(cutoff, now, batch)?;
            println!(
                "purged: {} journal entries, {} mandates, {} usagers (older than {} days)",
                purged.journal_entries, purged.mandates, purged.usagers, config.retention.days
            );
        }
        Command::Config(ConfigCommand::Check) => {
            KeyRing::load(&config.keys.dir)?;
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
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
