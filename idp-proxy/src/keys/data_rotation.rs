//! `keys rotate-data-key`, as steps nodes can follow while they serve: a new data key is
//! announced (every node that reloads the ring can open what it will seal), then activated
//! (it seals), then every usager identity is re-sealed with it in batches. The caller waits
//! between steps (`settle`) for every node to reload the ring.

use std::fmt;
use std::path::{Path, PathBuf};

use mandate_store::Store;

use super::KeyRing;

/// Where the rotation is; reported to `settle` after each step.
#[derive(Debug)]
pub enum Step {
    /// Written as `data-….key.next`: opens, does not seal yet.
    Announced(PathBuf),
    /// Renamed `data-….key`: the newest, it seals.
    Activated(PathBuf),
    /// Identities re-sealed so far.
    Resealed(usize),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Announced(p) => write!(f, "announced {}", p.display()),
            Step::Activated(p) => write!(f, "activated {}", p.display()),
            Step::Resealed(n) => write!(f, "re-sealed {n} identities"),
        }
    }
}

/// Runs the rotation on the ring in `dir` and the identities of `store`, `batch` at a time;
/// `settle` is called after each step (the CLI waits there for the nodes). Returns how many
/// identities each data key seals at the end.
pub fn rotate(
    dir: &Path,
    store: &Store,
    batch: i64,
    mut settle: impl FnMut(&Step),
) -> anyhow::Result<Vec<(String, i64)>> {
    let announced = KeyRing::announce_data_key(dir)?;
    settle(&Step::Announced(announced.clone()));
    let active = KeyRing::activate_data_key(&announced)?;
    settle(&Step::Activated(active));
    store.set_sealer(KeyRing::load(dir)?.sealer());
    let mut total = 0;
    loop {
        let n = store.reseal_usagers(batch)?;
        if n == 0 {
            break;
        }
        total += n;
        settle(&Step::Resealed(total));
    }
    Ok(store.data_key_usage()?)
}
