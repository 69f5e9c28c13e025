//! The key ring: ES256/RS256 signing keys, the at-rest data key and the subject-hash key, read
//! from `keys.dir`. Signing uses ring directly (no re-parsing per token). Private material is
//! written 0600 and never leaves this module: the JWKS carries public members only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use mandate_store::{DataKey, Sealer};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde::Serialize;
use serde_json::json;

use crate::config::SigningAlg;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key ring {dir}: {problem}. Fix: run `idp-proxy keys generate`")]
    Missing { dir: String, problem: String },
    #[error("key file {file}: {problem}")]
    Bad { file: String, problem: String },
    #[error("key ring {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing failed")]
    Sign,
    #[error("key {kid} was published {age_secs} s ago: wait {wait_secs} s more before it signs (every node and client cache must have it). Fix: run `keys rotate` again later")]
    TooSoon {
        kid: String,
        age_secs: u64,
        wait_secs: u64,
    },
    #[error("RSA key generation failed: {0}")]
    Generate(String),
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

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
    fn of(name: &str) -> Option<(&str, KeyState)> {
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

pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pair: Pair,
    /// The public JWK, as published.
    public_jwk: serde_json::Value,
    /// `base64url(header) + "."`, computed once.
    header_prefix: String,
}

pub struct KeyRing {
    signing: Vec<SigningKey>,
    data: Vec<DataKey>,
    /// RSA-OAEP-256 keys that identity providers (FranceConnect v2) encrypt to; newest last.
    encryption: Vec<(String, josekit::jwe::alg::rsaes::RsaesJweDecrypter)>,
    /// Data keys announced (`.key.next`): they open, they do not seal yet.
    next_data: Vec<DataKey>,
    subject_key: [u8; 32],
    /// Derives access tokens from codes (see `access_token_for`).
    token_key: ring::hmac::Key,
    jwks_json: String,
    /// The same, parsed: what `verify_own` checks against.
    jwks: serde_json::Value,
    rng: SystemRandom,
}

const SUBJECT_KEY: &str = "subject.key";

fn io(dir: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
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

fn new_kid(prefix: &str, rng: &SystemRandom) -> Result<String, KeyError> {
    let mut r = [0u8; 4];
    rng.fill(&mut r).map_err(|_| KeyError::Sign)?;
    // Milliseconds: the newest key is the one whose kid sorts last.
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%3f");
    Ok(format!("{prefix}-{stamp}-{}", hex(&r)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `keys rotate` did for one algorithm.
#[derive(Debug)]
pub struct Rotated {
    pub alg: SigningAlg,
    /// The former next key, now signing (`None`: there was no next key; one was created).
    pub activated: Option<String>,
    pub retired: Vec<String>,
    pub next: String,
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Writes a new signing key for `alg` as `<kid><suffix>` and returns its path.
fn new_signing_key(
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
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        // Newest kid last: kids embed their creation time.
        names.sort();
        let mut signing = Vec::new();
        let mut data = Vec::new();
        let mut next_data = Vec::new();
        let mut encryption = Vec::new();
        let mut encryption_jwks = Vec::new();
        let mut subject_key = None;
        for path in names {
            let file = path.display().to_string();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let bad = |problem: &str| KeyError::Bad {
                file: file.clone(),
                problem: problem.into(),
            };
            let bytes = || fs::read(&path).map_err(io(dir));
            if let Some(kid) = name.strip_suffix(".p8").filter(|k| k.starts_with("enc-")) {
                let der = bytes()?;
                let mut decrypter = josekit::jwe::RSA_OAEP_256
                    .decrypter_from_der(&der)
                    .map_err(|_| bad("not an RSA private key for RSA-OAEP-256"))?;
                decrypter.set_key_id(kid);
                let jwk = josekit::jwk::alg::rsa::RsaKeyPair::from_der(&der)
                    .map_err(|_| bad("not an RSA private key"))?
                    .to_jwk_public_key();
                let (n, e) = (jwk.parameter("n").cloned(), jwk.parameter("e").cloned());
                encryption_jwks.push(json!({"kty": "RSA", "use": "enc", "alg": "RSA-OAEP-256",
                                            "kid": kid, "n": n, "e": e}));
                encryption.push((kid.to_string(), decrypter));
            } else if let Some((kid, state)) = KeyState::of(name) {
                let Some(alg) = SigningAlg::ALL
                    .into_iter()
                    .find(|a| kid.starts_with(a.prefix()))
                else {
                    continue;
                };
                if matches!(state, KeyState::Retired { until } if until <= unix_now()) {
                    // Its tokens have expired: no longer published, no longer verified.
                    continue;
                }
                let der = bytes()?;
                let pair = match alg {
                    SigningAlg::ES256 => Pair::Ec(
                        EcdsaKeyPair::from_pkcs8(
                            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                            &der,
                            &rng,
                        )
                        .map_err(|_| bad("not a P-256 PKCS#8 key"))?,
                    ),
                    SigningAlg::RS256 | SigningAlg::PS256 => Pair::Rsa(
                        RsaKeyPair::from_pkcs8(&der)
                            .or_else(|_| RsaKeyPair::from_der(&der))
                            .map_err(|_| bad("not an RSA private key (PKCS#8 or PKCS#1)"))?,
                    ),
                };
                let public_jwk = public_jwk(kid, alg, &pair, &der).map_err(|p| bad(&p))?;
                let header = json!({"alg": alg.as_str(), "kid": kid, "typ": "JWT"});
                signing.push(SigningKey {
                    kid: kid.to_string(),
                    alg,
                    state,
                    pair,
                    public_jwk,
                    header_prefix: format!("{}.", B64.encode(header.to_string())),
                });
            } else if name == SUBJECT_KEY {
                subject_key = Some(
                    <[u8; 32]>::try_from(bytes()?.as_slice())
                        .map_err(|_| bad("must be 32 bytes"))?,
                );
            } else if let Some(kid) = name.strip_suffix(".key").filter(|k| k.starts_with("data-")) {
                let key = <[u8; 32]>::try_from(bytes()?.as_slice())
                    .map_err(|_| bad("must be 32 bytes"))?;
                data.push(DataKey {
                    kid: kid.to_string(),
                    key,
                });
            } else if let Some(kid) = name
                .strip_suffix(".key.next")
                .filter(|k| k.starts_with("data-"))
            {
                // Announced by a rotation: readable by this node, not yet used to seal.
                let key = <[u8; 32]>::try_from(bytes()?.as_slice())
                    .map_err(|_| bad("must be 32 bytes"))?;
                next_data.push(DataKey {
                    kid: kid.to_string(),
                    key,
                });
            }
        }
        let missing = |problem: &str| KeyError::Missing {
            dir: dir.display().to_string(),
            problem: problem.into(),
        };
        for alg in SigningAlg::ALL {
            if !signing
                .iter()
                .any(|k| k.alg == alg && k.state == KeyState::Active)
            {
                return Err(missing(&format!("no {} signing key", alg.as_str())));
            }
        }
        if data.is_empty() {
            return Err(missing("no data key"));
        }
        if encryption.is_empty() {
            return Err(missing("no encryption key"));
        }
        let subject_key = subject_key.ok_or_else(|| missing("no subject key"))?;
        let published = jwks(&signing, &encryption_jwks);
        let jwks_json = published.to_string();
        let token_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &subject_key);
        Ok(KeyRing {
            signing,
            data,
            encryption,
            next_data,
            subject_key,
            token_key,
            jwks_json,
            jwks: published,
            rng,
        })
    }

    /// `keys rotate`, for every signing algorithm: the next key (published since the last
    /// rotation, at least `min_next_age` ago) becomes active, the active one retires (still
    /// published until `retire_until`, for the tokens it signed), and a new next key is
    /// created; retired keys past their date are deleted. An algorithm without a next key only
    /// gets one. Nothing changes if any next key is too young. Nodes pick the change up at
    /// their next reload; a key that signs was always published long before.
    pub fn rotate(
        dir: &Path,
        min_next_age: std::time::Duration,
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

    /// Opens a compact JWE encrypted to one of our encryption keys (chosen by `kid`, else
    /// the newest) with RSA-OAEP-256 and A256GCM, and returns its payload: for FranceConnect
    /// v2, the signed JWT inside, which the caller still verifies.
    pub fn decrypt(&self, jwe: &str) -> Result<Vec<u8>, KeyError> {
        let header = jwe.split('.').next().unwrap_or_default();
        let header: serde_json::Value = B64
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .unwrap_or_default();
        let undecryptable = |problem: &str| KeyError::Bad {
            file: "JWE".into(),
            problem: problem.into(),
        };
        if header.get("zip").is_some() {
            // A compressed payload could inflate without bound.
            return Err(undecryptable("compressed JWE refused"));
        }
        if header.get("alg").and_then(|a| a.as_str()) != Some("RSA-OAEP-256")
            || header.get("enc").and_then(|e| e.as_str()) != Some("A256GCM")
        {
            return Err(undecryptable("only RSA-OAEP-256 with A256GCM is accepted"));
        }
        let kid = header.get("kid").and_then(|k| k.as_str());
        let (_, decrypter) = self
            .encryption
            .iter()
            .rev()
            .find(|(k, _)| kid.is_none_or(|kid| kid == k))
            .ok_or_else(|| undecryptable("no key with this kid"))?;
        josekit::jwe::deserialize_compact(jwe, decrypter)
            .map(|(payload, _)| payload)
            .map_err(|e| undecryptable(&e.to_string()))
    }

    /// The key that signs for `alg`: the newest active one (never a `next` one: it may not
    /// be in every cached JWKS yet).
    pub fn signer(&self, alg: SigningAlg) -> &SigningKey {
        // `load` guarantees an active key per algorithm; the fallback keeps this total.
        self.signing
            .iter()
            .rev()
            .find(|k| k.alg == alg && k.state == KeyState::Active)
            .unwrap_or(&self.signing[0])
    }

    /// Every signing key loaded (published), oldest first.
    pub fn signing_keys(&self) -> &[SigningKey] {
        &self.signing
    }

    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// The sealer for usager identities: the newest data key seals, older and announced
    /// ones still open.
    pub fn sealer(&self) -> Sealer {
        let copy = |k: &DataKey| DataKey {
            kid: k.kid.clone(),
            key: k.key,
        };
        let mut keys: Vec<DataKey> = self.data.iter().map(copy).collect();
        // `load` refuses an empty list, so pop always yields.
        let active = keys.pop().unwrap_or(DataKey {
            kid: String::new(),
            key: [0; 32],
        });
        keys.extend(self.next_data.iter().map(copy));
        Sealer::new(active, keys, self.subject_key)
    }

    /// A pairwise subject (OIDC Core §8.1): HMAC-SHA256 of the sector and the local id under
    /// the subject key (domain-separated), base64url. Same person and sector, same value;
    /// two sectors cannot link them. The subject key never rotates, so neither does this.
    pub fn pairwise(&self, sector: &str, local_id: &str) -> String {
        let mut msg = Vec::with_capacity(sector.len() + local_id.len() + 16);
        msg.extend_from_slice(b"pairwise\0");
        msg.extend_from_slice(sector.as_bytes());
        msg.push(0);
        msg.extend_from_slice(local_id.as_bytes());
        B64.encode(ring::hmac::sign(&self.token_key, &msg))
    }

    /// The access token a code is exchanged for: HMAC-SHA256 of the code under a key every
    /// node shares (domain-separated from the subject hashes made with the same key). Any node
    /// can thus recompute, from a replayed code, the token it produced and revoke it, without
    /// keeping a marker per redeemed code. Unguessable without both the code and the key.
    pub fn access_token_for(&self, code: &str) -> String {
        let mut msg = Vec::with_capacity(code.len() + 16);
        msg.extend_from_slice(b"access_token\0");
        msg.extend_from_slice(code.as_bytes());
        B64.encode(ring::hmac::sign(&self.token_key, &msg))
    }

    pub fn sign(&self, alg: SigningAlg, claims: &impl Serialize) -> Result<String, KeyError> {
        let key = self.signer(alg);
        key.sign(&key.header_prefix, claims, &self.rng)
    }

    /// Signs with another `typ` than `JWT` (a logout token is `logout+jwt`).
    pub fn sign_typed(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let key = self.signer(alg);
        let header = json!({"alg": alg.as_str(), "kid": key.kid, "typ": typ});
        let prefix = format!("{}.", B64.encode(header.to_string()));
        key.sign(&prefix, claims, &self.rng)
    }

    /// Verifies a JWT we signed (any published key) and returns its claims. Expiry is the
    /// caller's business: an `id_token_hint` may be expired and still name its session.
    pub fn verify_own(&self, jwt: &str) -> Option<serde_json::Value> {
        // The published set is what verifies, ours as anyone else's.
        verify_with_jwks(jwt, &self.jwks, &SigningAlg::ALL)
    }
}

/// Verifies a compact JWS against a JWKS (a provider's, or a client's), with one of the
/// `allowed` algorithms only, choosing the key by `kid` (or the only key of that type), and
/// returns its claims. Claim checks (iss, aud, exp…) are the caller's. `none` and HMAC never
/// pass here: a public key is not a shared secret.
pub fn verify_with_jwks(
    jws: &str,
    jwks: &serde_json::Value,
    allowed: &[SigningAlg],
) -> Option<serde_json::Value> {
    let mut parts = jws.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    let alg_name = header.get("alg")?.as_str()?;
    let alg = allowed.iter().copied().find(|a| a.as_str() == alg_name)?;
    let kid = header.get("kid").and_then(|k| k.as_str());
    let jwk = jwk_for(jwks, alg, kid)?;
    let field = |name: &str| -> Option<Vec<u8>> { B64.decode(jwk.get(name)?.as_str()?).ok() };
    let msg = &jws.as_bytes()[..h.len() + 1 + p.len()];
    let sig = B64.decode(s).ok()?;
    let verified = match alg {
        SigningAlg::ES256 => {
            let (x, y) = (field("x")?, field("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg, &sig)
                .is_ok()
        }
        SigningAlg::RS256 | SigningAlg::PS256 => {
            let padding = if alg == SigningAlg::PS256 {
                &signature::RSA_PSS_2048_8192_SHA256
            } else {
                &signature::RSA_PKCS1_2048_8192_SHA256
            };
            signature::RsaPublicKeyComponents {
                n: field("n")?,
                e: field("e")?,
            }
            .verify(padding, msg, &sig)
            .is_ok()
        }
    };
    if !verified {
        return None;
    }
    serde_json::from_slice(&B64.decode(p).ok()?).ok()
}

/// Whether a JWKS names a key `kid`.
pub fn jwks_has_kid(jwks: &serde_json::Value, kid: &str) -> bool {
    jwks.get("keys")
        .and_then(|k| k.as_array())
        .is_some_and(|keys| {
            keys.iter()
                .any(|k| k.get("kid").and_then(|x| x.as_str()) == Some(kid))
        })
}

/// The one signature key of a JWKS that fits `alg` (by key type, `use`, `alg` if stated) and
/// `kid` (if given).
fn jwk_for<'a>(
    jwks: &'a serde_json::Value,
    alg: SigningAlg,
    kid: Option<&str>,
) -> Option<&'a serde_json::Value> {
    let kty = match alg {
        SigningAlg::ES256 => "EC",
        SigningAlg::RS256 | SigningAlg::PS256 => "RSA",
    };
    let text = |k: &'a serde_json::Value, name: &str| k.get(name).and_then(|v| v.as_str());
    let candidates: Vec<&serde_json::Value> = jwks
        .get("keys")?
        .as_array()?
        .iter()
        .filter(|k| text(k, "kty") == Some(kty))
        .filter(|k| text(k, "use").unwrap_or("sig") == "sig")
        .filter(|k| text(k, "alg").is_none_or(|a| a == alg.as_str()))
        .filter(|k| kid.is_none() || text(k, "kid") == kid)
        .collect();
    match candidates.as_slice() {
        [jwk] => Some(jwk),
        _ => None,
    }
}

/// Encrypts `payload` (compact JWE, `alg` with A256GCM) to the client's encryption key: the
/// one of its JWKS with `use: enc` (or no `use`) of the right type and, if stated, `alg`.
/// `cty: "JWT"` marks a signed JWT inside (nested JWT).
pub fn encrypt_to(
    jwks: &serde_json::Value,
    alg: crate::config::EncryptionAlg,
    payload: &[u8],
    nested_jwt: bool,
) -> Result<String, KeyError> {
    use crate::config::EncryptionAlg;
    let bad = |problem: String| KeyError::Bad {
        file: "client JWKS".into(),
        problem,
    };
    let kty = match alg {
        EncryptionAlg::RsaOaep256 => "RSA",
        EncryptionAlg::EcdhEs => "EC",
    };
    let text = |k: &serde_json::Value, name: &str| {
        k.get(name).and_then(|v| v.as_str()).map(str::to_string)
    };
    let key = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .into_iter()
        .flatten()
        .find(|k| {
            text(k, "kty").as_deref() == Some(kty)
                && text(k, "use").is_none_or(|u| u == "enc")
                && text(k, "alg").is_none_or(|a| a == alg.as_str())
        })
        .ok_or_else(|| bad(format!("no {} key for {}", kty, alg.as_str())))?;
    let map = key
        .as_object()
        .cloned()
        .ok_or_else(|| bad("key is not an object".into()))?;
    let jwk = josekit::jwk::Jwk::from_map(map).map_err(|e| bad(e.to_string()))?;
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption(crate::config::CONTENT_ENCRYPTION);
    if nested_jwt {
        header.set_content_type("JWT");
    }
    if let Some(kid) = jwk.key_id() {
        header.set_key_id(kid);
    }
    let out = match alg {
        EncryptionAlg::RsaOaep256 => {
            let encrypter = josekit::jwe::RSA_OAEP_256
                .encrypter_from_jwk(&jwk)
                .map_err(|e| bad(e.to_string()))?;
            josekit::jwe::serialize_compact(payload, &header, &encrypter)
        }
        EncryptionAlg::EcdhEs => {
            let encrypter = josekit::jwe::ECDH_ES
                .encrypter_from_jwk(&jwk)
                .map_err(|e| bad(e.to_string()))?;
            josekit::jwe::serialize_compact(payload, &header, &encrypter)
        }
    };
    out.map_err(|e| bad(e.to_string()))
}

impl SigningKey {
    /// `header_prefix` is `base64url(header) + "."`.
    fn sign(
        &self,
        header_prefix: &str,
        claims: &impl Serialize,
        rng: &SystemRandom,
    ) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let mut jwt = String::with_capacity(header_prefix.len() + payload.len() * 2 + 400);
        jwt.push_str(header_prefix);
        B64.encode_string(&payload, &mut jwt);
        let sig = match &self.pair {
            Pair::Ec(k) => k
                .sign(rng, jwt.as_bytes())
                .map_err(|_| KeyError::Sign)?
                .as_ref()
                .to_vec(),
            Pair::Rsa(k) => {
                let padding: &dyn signature::RsaEncoding = if self.alg == SigningAlg::PS256 {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(padding, rng, jwt.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::Sign)?;
                sig
            }
        };
        jwt.push('.');
        B64.encode_string(&sig, &mut jwt);
        Ok(jwt)
    }
}

fn public_jwk(
    kid: &str,
    alg: SigningAlg,
    pair: &Pair,
    der: &[u8],
) -> Result<serde_json::Value, String> {
    Ok(match pair {
        Pair::Ec(p) => {
            // Uncompressed point: 0x04 || x || y.
            let point = p.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                   "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
        }
        Pair::Rsa(_) => {
            // ring does not expose n and e; OpenSSL (josekit) reads them from the same DER.
            let jwk = josekit::jwk::alg::rsa::RsaKeyPair::from_der(der)
                .map_err(|e| e.to_string())?
                .to_jwk_public_key();
            let n = jwk.parameter("n").cloned().ok_or("no modulus")?;
            let e = jwk.parameter("e").cloned().ok_or("no exponent")?;
            json!({"kty": "RSA", "use": "sig", "alg": alg.as_str(), "kid": kid, "n": n, "e": e})
        }
    })
}

fn jwks(keys: &[SigningKey], encryption: &[serde_json::Value]) -> serde_json::Value {
    // Encryption keys newest first: providers encrypt to the first `use: enc` key they find.
    let keys: Vec<&serde_json::Value> = keys
        .iter()
        .map(|k| &k.public_jwk)
        .chain(encryption.iter().rev())
        .collect();
    json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_ring_loads_signs_and_publishes_no_private_member() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ring");
        let written = KeyRing::generate(&dir).unwrap();
        assert_eq!(
            written.len(),
            9,
            "active and next keys for 3 algorithms, enc, data, subject"
        );
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the ring directory is private");
        for f in &written {
            let mode = fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
        // A second run adds nothing.
        assert!(KeyRing::generate(&dir).unwrap().is_empty());
        let ring = KeyRing::load(&dir).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(ring.jwks_json()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(
            keys.len(),
            7,
            "6 signing keys (active and next) and the encryption key"
        );
        let enc: Vec<_> = keys.iter().filter(|k| k["use"] == "enc").collect();
        assert_eq!(
            (enc.len(), enc[0]["alg"].as_str()),
            (1, Some("RSA-OAEP-256"))
        );
        for k in keys {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(k.get(private).is_none(), "{private} published");
            }
        }
        for alg in SigningAlg::ALL {
            let jwt = ring.sign(alg, &json!({"sub": "x"})).unwrap();
            assert_eq!(ring.verify_own(&jwt).unwrap()["sub"], "x");
            // A flipped payload byte breaks the signature.
            let mut parts: Vec<&str> = jwt.split('.').collect();
            let forged = B64.encode(br#"{"sub":"y"}"#);
            parts[1] = &forged;
            assert!(ring.verify_own(&parts.join(".")).is_none());
        }
    }

    #[test]
    fn an_announced_data_key_opens_before_it_seals() {
        let tmp = tempfile::tempdir().unwrap();
        KeyRing::generate(tmp.path()).unwrap();
        let before = KeyRing::load(tmp.path()).unwrap().sealer();
        let announced = KeyRing::announce_data_key(tmp.path()).unwrap();
        let during = KeyRing::load(tmp.path()).unwrap().sealer();
        assert_eq!(during.active_kid(), before.active_kid(), "not sealing yet");
        let active = KeyRing::activate_data_key(&announced).unwrap();
        assert!(active.to_string_lossy().ends_with(".key"));
        let after = KeyRing::load(tmp.path()).unwrap().sealer();
        assert_ne!(after.active_kid(), before.active_kid());
        // A node still on the `during` ring opens what the new key seals.
        let id = mandate_store::Identity {
            given_name: "A".into(),
            family_name: "B".into(),
            birthdate: "1970-01-01".into(),
            gender: "female".into(),
            birthplace: None,
            birthcountry: "99100".into(),
            email: None,
            preferred_username: None,
        };
        let (kid, sealed) = after.seal("u1", &id).unwrap();
        assert_eq!(during.open("u1", &kid, &sealed).unwrap(), id);
    }

    #[test]
    fn decrypts_what_is_encrypted_to_the_published_key_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        KeyRing::generate(dir.path()).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(ring.jwks_json()).unwrap();
        let public = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["use"] == "enc")
            .unwrap()
            .clone();
        let jwk = josekit::jwk::Jwk::from_bytes(public.to_string().as_bytes()).unwrap();
        let encrypter = josekit::jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk).unwrap();
        let mut header = josekit::jwe::JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_content_type("JWT");
        header.set_key_id(public["kid"].as_str().unwrap());
        let jwe = josekit::jwe::serialize_compact(b"inner.jws.here", &header, &encrypter).unwrap();
        assert_eq!(ring.decrypt(&jwe).unwrap(), b"inner.jws.here");
        // Tampered ciphertext, or another algorithm, is refused.
        let mut parts: Vec<String> = jwe.split('.').map(str::to_string).collect();
        parts[3] = B64.encode(b"tampered ciphertext");
        assert!(ring.decrypt(&parts.join(".")).is_err());
        assert!(ring
            .decrypt("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..a.b.c")
            .is_err());
    }

    #[test]
    fn rotation_signs_only_with_published_keys_and_keeps_retired_ones_for_their_tokens() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        KeyRing::generate(dir.path()).unwrap();
        let before = KeyRing::load(dir.path()).unwrap();
        let published_before: serde_json::Value = serde_json::from_str(before.jwks_json()).unwrap();
        let old_token = before
            .sign(SigningAlg::PS256, &json!({"sub": "x"}))
            .unwrap();

        // A next key younger than the minimum never signs: nothing changes.
        let err =
            KeyRing::rotate(dir.path(), Duration::from_secs(3600), unix_now() + 600).unwrap_err();
        assert!(matches!(err, KeyError::TooSoon { .. }), "{err}");
        assert_eq!(
            KeyRing::load(dir.path()).unwrap().jwks_json(),
            before.jwks_json()
        );

        let rotated = KeyRing::rotate(dir.path(), Duration::ZERO, unix_now() + 600).unwrap();
        let after = KeyRing::load(dir.path()).unwrap();
        for r in &rotated {
            let activated = r.activated.as_deref().unwrap();
            // What signs now was already in the JWKS before the rotation.
            assert!(
                jwks_has_kid(&published_before, activated),
                "{activated} was published"
            );
            assert_eq!(after.signer(r.alg).kid, activated);
            assert_eq!(r.retired, vec![before.signer(r.alg).kid.clone()]);
            let jwks: serde_json::Value = serde_json::from_str(after.jwks_json()).unwrap();
            for kid in [activated, &r.retired[0], &r.next] {
                assert!(
                    jwks_has_kid(&jwks, kid),
                    "{kid} published after the rotation"
                );
            }
        }
        assert!(
            after.verify_own(&old_token).is_some(),
            "a retired key still verifies its tokens"
        );

        // Once its tokens have expired, a retired key is no longer published, then deleted.
        KeyRing::rotate(dir.path(), Duration::ZERO, unix_now() - 1).unwrap();
        let later = KeyRing::load(dir.path()).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(later.jwks_json()).unwrap();
        let first = &rotated[0].activated.clone().unwrap();
        assert!(!jwks_has_kid(&jwks, first), "expired retired key dropped");
        KeyRing::rotate(dir.path(), Duration::ZERO, unix_now() + 600).unwrap();
        let expired: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                matches!(KeyState::of(n), Some((_, KeyState::Retired { until })) if until <= unix_now())
            })
            .collect();
        assert!(
            expired.is_empty(),
            "expired retired keys deleted: {expired:?}"
        );
    }

    #[test]
    fn encrypts_to_the_enc_key_of_a_jwks() {
        use crate::config::EncryptionAlg;
        let dir = tempfile::tempdir().unwrap();
        KeyRing::generate(dir.path()).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(ring.jwks_json()).unwrap();
        let jwe = encrypt_to(&jwks, EncryptionAlg::RsaOaep256, b"secret", true).unwrap();
        assert_eq!(ring.decrypt(&jwe).unwrap(), b"secret");
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(jwe.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(
            (
                header["alg"].as_str(),
                header["enc"].as_str(),
                header["cty"].as_str()
            ),
            (Some("RSA-OAEP-256"), Some("A256GCM"), Some("JWT"))
        );
        // No EC encryption key in this JWKS: nothing is sent in clear instead.
        assert!(encrypt_to(&jwks, EncryptionAlg::EcdhEs, b"secret", true).is_err());
    }

    #[test]
    fn verifies_a_jws_against_a_published_jwks_only() {
        let dir = tempfile::tempdir().unwrap();
        KeyRing::generate(dir.path()).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(ring.jwks_json()).unwrap();
        let other = tempfile::tempdir().unwrap();
        KeyRing::generate(other.path()).unwrap();
        let other: serde_json::Value =
            serde_json::from_str(KeyRing::load(other.path()).unwrap().jwks_json()).unwrap();
        for alg in SigningAlg::ALL {
            let jws = ring.sign(alg, &json!({"sub": "s"})).unwrap();
            assert_eq!(
                verify_with_jwks(&jws, &jwks, &SigningAlg::ALL).unwrap()["sub"],
                "s"
            );
            assert!(
                verify_with_jwks(&jws, &other, &SigningAlg::ALL).is_none(),
                "another provider's keys"
            );
            let others: Vec<_> = SigningAlg::ALL.into_iter().filter(|a| *a != alg).collect();
            assert!(
                verify_with_jwks(&jws, &jwks, &others).is_none(),
                "an algorithm not allowed"
            );
        }
        assert!(verify_with_jwks("a.b", &jwks, &SigningAlg::ALL).is_none());
    }

    #[test]
    fn missing_ring_says_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = KeyRing::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("idp-proxy keys generate"), "{err}");
    }
}
