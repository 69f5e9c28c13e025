//! `keys …`: the ring's files (generate, list), signing-key rotation, data-key rotation.

use std::time::Duration;

use clap::Subcommand;
use idp_proxy::keys::data_rotation::{self, Step};
use idp_proxy::keys::{KeyRing, KeyState};

use super::Context;

#[derive(Subcommand)]
pub enum KeysCommand {
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

pub fn run(cmd: KeysCommand, cx: &Context) -> anyhow::Result<()> {
    let config = &cx.config;
    match cmd {
        KeysCommand::Generate => {
            for f in KeyRing::generate(&config.keys.dir)? {
                eprintln!("created {}", f.display());
            }
        }
        KeysCommand::Rotate => {
            // Retired keys stay published as long as a token they signed may be checked: an
            // ID token kept as a logout hint lives as long as the aidant's session.
            let keep = config.tokens.id_token_ttl.max(config.session.max_lifetime)
                + 2 * config.keys.reload
                + Duration::from_secs(60);
            let rotated = KeyRing::rotate(
                &config.keys.dir,
                config.keys.min_next_age(),
                cx.now + keep.as_secs() as i64,
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
        KeysCommand::List => {
            let ring = KeyRing::load(&config.keys.dir)?;
            for k in ring.signing_keys() {
                let until = match k.state {
                    KeyState::Retired { until } => format!("\tuntil {until}"),
                    _ => String::new(),
                };
                println!("{}\t{}\t{}{until}", k.kid, k.alg.as_str(), k.state.as_str());
            }
        }
        KeysCommand::RotateDataKey { settle_secs, batch } => {
            let store = cx.store()?;
            let settle = Duration::from_secs(settle_secs);
            let usage = data_rotation::rotate(&config.keys.dir, &store, batch, |step| {
                eprintln!("{step}");
                if let Step::Announced(_) | Step::Activated(_) = step {
                    eprintln!("waiting {settle_secs} s for every node to reload the ring");
                    std::thread::sleep(settle);
                }
            })?;
            for (kid, count) in usage {
                println!("{kid}\t{count}");
            }
        }
    }
    Ok(())
}
