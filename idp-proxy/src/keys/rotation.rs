//! `keys rotate`: each signing algorithm's next key signs, the active one retires (still
//! published for the tokens it signed), a new next key is published.

use std::fs;
use std::path::Path;
use std::time::Duration;

use ring::rand::SystemRandom;

use super::files::{io, new_signing_key, unix_now, KeyState};
use super::{KeyError, KeyRing};
use crate::config::SigningAlg;

/// What `keys rotate` did for one algorithm.
#[derive(Debug)]
pub struct Rotated {
    pub alg: SigningAlg,
    /// The former next key, now signing (`None`: there was no next key; one was created).
    pub activated: Option<String>,
    pub retired: Vec<String>,
    pub next: String,
}

impl KeyRing {
    /// `keys rotate`, for every signing algorithm: the next key (published since the last
    /// rotation, at least `min_next_age` ago) becomes active, the active one retires (still
    /// published until `retire_until`, for the tokens it signed), and a new next key is
    /// created; retired keys past their date are deleted. An algorithm without a next key only
    /// gets one. Nothing changes if any next key is too young. Nodes pick the change up at
    /// their next reload; a key that signs was always published long before.
    pub fn rotate(
        dir: &Path,
        min_next_age: Duration,
        retire_until: i64,
    ) -> Result<Vec<Rotated>, KeyError> {
        let rng = SystemRandom::new();
        let mut names: Vec<String> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let of = |alg: SigningAlg, state: &str| -> Vec<String> {
            names
                .iter()
                .filter(|n| {
                    KeyState::of(n).is_some_and(|(kid, s)| {
                        kid.starts_with(alg.prefix()) && s.as_str() == state
                    })
                })
                .cloned()
                .collect()
        };
        // Every next key old enough, or nothing changes.
        for alg in SigningAlg::ALL {
            if let Some(next) = of(alg, "next").last() {
                let age = fs::metadata(dir.join(next))
                    .and_then(|m| m.modified())
                    .map_err(io(dir))?
                    .elapsed()
                    .unwrap_or_default();
                if age < min_next_age {
                    return Err(KeyError::TooSoon {
                        kid: next.trim_end_matches(".p8.next").to_string(),
                        age_secs: age.as_secs(),
                        wait_secs: (min_next_age - age).as_secs() + 1,
                    });
                }
            }
        }
        let mut report = Vec::new();
        for alg in SigningAlg::ALL {
            let actives = of(alg, "active");
            let activated = match of(alg, "next").last() {
                Some(next) => {
                    // Promote first: at every instant each algorithm has an active key.
                    let kid = next.trim_end_matches(".p8.next").to_string();
                    fs::rename(dir.join(next), dir.join(format!("{kid}.p8"))).map_err(io(dir))?;
                    Some(kid)
                }
                None => None,
            };
            let mut retired = Vec::new();
            if activated.is_some() {
                for active in actives {
                    let kid = active.trim_end_matches(".p8").to_string();
                    let to = format!("{kid}.p8.retired-until-{retire_until}");
                    fs::rename(dir.join(&active), dir.join(to)).map_err(io(dir))?;
                    retired.push(kid);
                }
            }
            let next = new_signing_key(dir, alg, ".p8.next", &rng)?;
            report.push(Rotated {
                alg,
                activated,
                retired,
                next: next
                    .file_name()
                    .map(|n| n.to_string_lossy().trim_end_matches(".p8.next").to_string())
                    .unwrap_or_default(),
            });
        }
        let now = unix_now();
        for name in &names {
            if let Some((_, KeyState::Retired { until })) = KeyState::of(name) {
                if until <= now {
                    fs::remove_file(dir.join(name)).map_err(io(dir))?;
                }
            }
        }
        Ok(report)
    }
}
