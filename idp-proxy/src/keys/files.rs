//! The key ring on disk, in `keys.dir`: one file per key, its kind and state in its name
//! (`es256-….p8`, `….p8.next`, `….p8.retired-until-T`, `enc-….p8`, `data-….key`,
//! `data-….key.next`, `subject.key`), written 0600 and never rewritten; `generate` creates
//! what is missing, `load` reads each kind with its own loader, the data-key announcement and
//! activation are two renames.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mandate_store::DataKey;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair};

use super::jwe::DecryptionKey;
use super::jws::{jwks, SigningKey};
use super::{hex, KeyError, KeyRing};
use crate::config::SigningAlg;

pub(super) const SUBJECT_KEY: &str = "subject.key";

/// Where a signing key is in its life (DESIGN.md §7), from its file name: `<kid>.p8.next`
/// (published, never signs), `<kid>.p8` (the newest of its algorithm signs),
/// `<kid>.p8.retired-until-<unix time>` (published until then, for the tokens it signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired { until: i64 },
}

impl KeyState {
    /// The state a key file's name gives, and its kid; `None` for other files.
    pub(super) fn of(name: &str) -> Option<(&str, KeyState)> {
        if let Some(kid) = name.strip_suffix(".p8.next") {
            return Some((kid, KeyState::Next));
        }
        if let Some((kid, until)) = name.split_once(".p8.retired-until-") {
            return Some((
                kid,
                KeyState::Retired {
                    until: until.parse().ok()?,
                },
            ));
        }
        name.strip_suffix(".p8").map(|kid| (kid, KeyState::Active))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired { .. } => "retired",
        }
    }
}

/// What a file of the ring holds, from its name.
enum KeyFile<'a> {
    Encryption {
        kid: &'a str,
    },
    Signing {
        kid: &'a str,
        alg: SigningAlg,
        state: KeyState,
    },
    Subject,
    /// `announced`: readable by this node, not yet used to seal.
    Data {
        kid: &'a str,
        announced: bool,
    },
}

impl<'a> KeyFile<'a> {
    fn of(name: &'a str) -> Option<KeyFile<'a>> {
        if let Some(kid) = name.strip_suffix(".p8").filter(|k| k.starts_with("enc-")) {
            return Some(KeyFile::Encryption { kid });
        }
        if let Some((kid, state)) = KeyState::of(name) {
            let alg = SigningAlg::ALL
                .into_iter()
                .find(|a| kid.starts_with(a.prefix()))?;
            return Some(KeyFile::Signing { kid, alg, state });
        }
        if name == SUBJECT_KEY {
            return Some(KeyFile::Subject);
        }
        let data = |suffix| name.strip_suffix(suffix).filter(|k| k.starts_with("data-"));
        if let Some(kid) = data(".key") {
            return Some(KeyFile::Data {
                kid,
                announced: false,
            });
        }
        data(".key.next").map(|kid| KeyFile::Data {
            kid,
            announced: true,
        })
    }
}

/// The keys read so far.
#[derive(Default)]
struct Loaded {
    signing: Vec<SigningKey>,
    data: Vec<DataKey>,
    next_data: Vec<DataKey>,
    encryption: Vec<DecryptionKey>,
    subject_key: Option<[u8; 32]>,
}

impl Loaded {
    fn add(&mut self, kind: KeyFile, bytes: Vec<u8>, rng: &SystemRandom) -> Result<(), String> {
        let key32 = |b: &[u8]| <[u8; 32]>::try_from(b).map_err(|_| "must be 32 bytes");
        match kind {
            KeyFile::Encryption { kid } => {
                self.encryption.push(DecryptionKey::from_der(kid, &bytes)?);
            }
            KeyFile::Signing { kid, alg, state } => {
                self.signing
                    .push(SigningKey::from_der(kid, alg, state, &bytes, rng)?);
            }
            KeyFile::Subject => self.subject_key = Some(key32(&bytes)?),
            KeyFile::Data { kid, announced } => {
                let key = DataKey {
                    kid: kid.to_string(),
                    key: key32(&bytes)?,
                };
                match announced {
                    false => self.data.push(key),
                    true => self.next_data.push(key),
                }
            }
        }
        Ok(())
    }

    /// The ring, if nothing it needs is missing.
    fn ring(self, dir: &Path, rng: SystemRandom) -> Result<KeyRing, KeyError> {
        let missing = |problem: &str| KeyError::Missing {
            dir: dir.display().to_string(),
            problem: problem.into(),
        };
        for alg in SigningAlg::ALL {
            if !self
                .signing
                .iter()
                .any(|k| k.alg == alg && k.state == KeyState::Active)
            {
                return Err(missing(&format!("no {} signing key", alg.as_str())));
            }
        }
        if self.data.is_empty() {
            return Err(missing("no data key"));
        }
        if self.encryption.is_empty() {
            return Err(missing("no encryption key"));
        }
        let subject_key = self.subject_key.ok_or_else(|| missing("no subject key"))?;
        let encryption_jwks: Vec<serde_json::Value> = self
            .encryption
            .iter()
            .map(|k| k.public_jwk.clone())
            .collect();
        let published = jwks(&self.signing, &encryption_jwks);
        Ok(KeyRing {
            signing: self.signing,
            data: self.data,
            encryption: self.encryption,
            next_data: self.next_data,
            subject_key,
            token_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &subject_key),
            jwks_json: published.to_string(),
            jwks: published,
            rng,
        })
    }
}

pub(super) fn io(dir: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        dir: dir.display().to_string(),
        source,
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub(super) fn new_kid(prefix: &str, rng: &SystemRandom) -> Result<String, KeyError> {
    let mut r = [0u8; 4];
    rng.fill(&mut r).map_err(|_| KeyError::Sign)?;
    // Milliseconds: the newest key is the one whose kid sorts last.
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%3f");
    Ok(format!("{prefix}-{stamp}-{}", hex(&r)))
}

pub(super) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Writes a new signing key for `alg` as `<kid><suffix>` and returns its path.
pub(super) fn new_signing_key(
    dir: &Path,
    alg: SigningAlg,
    suffix: &str,
    rng: &SystemRandom,
) -> Result<PathBuf, KeyError> {
    let der = match alg {
        SigningAlg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, rng)
                .map_err(|_| KeyError::Generate("ES256".into()))?
                .as_ref()
                .to_vec()
        }
        // ring cannot generate RSA keys: OpenSSL (through josekit) does, ring signs. One key
        // per algorithm: a key is never used with two paddings.
        SigningAlg::RS256 | SigningAlg::PS256 => josekit::jwk::alg::rsa::RsaKeyPair::generate(2048)
            .map_err(|e| KeyError::Generate(e.to_string()))?
            .to_der_private_key(),
    };
    let kid = new_kid(alg.prefix().trim_end_matches('-'), rng)?;
    let path = dir.join(format!("{kid}{suffix}"));
    write_private(&path, &der).map_err(io(dir))?;
    Ok(path)
}

impl KeyRing {
    /// Creates whatever the ring lacks (ES256, RS256 and PS256 signing keys, an encryption
    /// key, a data key, the subject key) and returns the files written. Existing keys are never touched.
    pub fn generate(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
        let rng = SystemRandom::new();
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io(dir))?;
            // Only the service's user may even list the ring.
            fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(io(dir))?;
        }
        let existing: Vec<String> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let has = |prefix: &str| existing.iter().any(|f| f.starts_with(prefix));
        let has_state = |alg: SigningAlg, state: &str| {
            existing.iter().any(|f| {
                KeyState::of(f)
                    .is_some_and(|(kid, s)| kid.starts_with(alg.prefix()) && s.as_str() == state)
            })
        };
        let mut written = Vec::new();
        for alg in SigningAlg::ALL {
            // An active key signs now; a next one is published now, to sign after `keys rotate`.
            for (state, suffix) in [("active", ".p8"), ("next", ".p8.next")] {
                if !has_state(alg, state) {
                    written.push(new_signing_key(dir, alg, suffix, &rng)?);
                }
            }
        }
        if !has("enc-") {
            // What FranceConnect v2 encrypts ID tokens and userinfo to (RSA-OAEP-256).
            let pair = josekit::jwk::alg::rsa::RsaKeyPair::generate(2048)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            let path = dir.join(format!("{}.p8", new_kid("enc", &rng)?));
            write_private(&path, &pair.to_der_private_key()).map_err(io(dir))?;
            written.push(path);
        }
        for (prefix, name) in [("data-", None), (SUBJECT_KEY, Some(SUBJECT_KEY))] {
            if !has(prefix) {
                let mut key = [0u8; 32];
                rng.fill(&mut key).map_err(|_| KeyError::Sign)?;
                let file = match name {
                    Some(n) => n.to_string(),
                    None => format!("{}.key", new_kid("data", &rng)?),
                };
                let path = dir.join(file);
                write_private(&path, &key).map_err(io(dir))?;
                written.push(path);
            }
        }
        Ok(written)
    }

    pub fn load(dir: &Path) -> Result<KeyRing, KeyError> {
        let rng = SystemRandom::new();
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        // Newest kid last: kids embed their creation time.
        paths.sort();
        let mut loaded = Loaded::default();
        for path in &paths {
            let Some(kind) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(KeyFile::of)
            else {
                continue;
            };
            if let KeyFile::Signing {
                state: KeyState::Retired { until },
                ..
            } = kind
            {
                if until <= unix_now() {
                    // Its tokens have expired: no longer published, no longer verified.
                    continue;
                }
            }
            let bytes = fs::read(path).map_err(io(dir))?;
            loaded
                .add(kind, bytes, &rng)
                .map_err(|problem| KeyError::Bad {
                    file: path.display().to_string(),
                    problem,
                })?;
        }
        loaded.ring(dir, rng)
    }

    /// Announces a new data key (`data-….key.next`): nodes that reload the ring can open what
    /// it will seal before anyone seals with it. Returns its path.
    pub fn announce_data_key(dir: &Path) -> Result<PathBuf, KeyError> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| KeyError::Sign)?;
        let newest = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("data-"))
            .max()
            .unwrap_or_default();
        // The new key must sort after every existing one, or it would not become active.
        let mut kid = new_kid("data", &rng)?;
        while kid <= newest {
            std::thread::sleep(std::time::Duration::from_millis(2));
            kid = new_kid("data", &rng)?;
        }
        let path = dir.join(format!("{kid}.key.next"));
        write_private(&path, &key).map_err(io(dir))?;
        Ok(path)
    }

    /// Makes an announced data key the one that seals (the newest `.key`).
    pub fn activate_data_key(announced: &Path) -> Result<PathBuf, KeyError> {
        let active = announced.with_extension("");
        fs::rename(announced, &active).map_err(|source| KeyError::Io {
            dir: announced.display().to_string(),
            source,
        })?;
        Ok(active)
    }
}
