//! The key ring: ES256/RS256/PS256 signing keys, RSA-OAEP-256 encryption keys, the at-rest
//! data keys and the subject-hash key, read from `keys.dir`. `files` is the ring on disk
//! (one loader per file kind), `rotation` the signing keys' life, `jws` signatures and JWKS,
//! `jwe` encryption. Signing uses ring directly (no re-parsing per token). Private material is
//! written 0600 and never leaves this module: the JWKS carries public members only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use mandate_store::{DataKey, Sealer};
use ring::rand::SystemRandom;
use serde::Serialize;

use crate::config::SigningAlg;

pub mod data_rotation;
mod files;
mod jwe;
mod jws;
mod rotation;

pub use files::KeyState;
pub use jwe::encrypt_to;
use jwe::DecryptionKey;
pub use jws::{jwks_has_kid, verify_with_jwks, SigningKey};
pub use rotation::Rotated;

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

pub struct KeyRing {
    signing: Vec<SigningKey>,
    data: Vec<DataKey>,
    /// RSA-OAEP-256 keys that identity providers (FranceConnect v2) encrypt to; newest last.
    encryption: Vec<DecryptionKey>,
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyRing {
    /// Opens a compact JWE encrypted to one of our encryption keys (chosen by `kid`, else
    /// the newest) with RSA-OAEP-256 and A256GCM, and returns its payload: for FranceConnect
    /// v2, the signed JWT inside, which the caller still verifies.
    pub fn decrypt(&self, jwe: &str) -> Result<Vec<u8>, KeyError> {
        jwe::decrypt(&self.encryption, jwe)
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
        key.sign(&jws::header_prefix(alg, &key.kid, typ), claims, &self.rng)
    }

    /// Verifies a JWT we signed (any published key) and returns its claims. Expiry is the
    /// caller's business: an `id_token_hint` may be expired and still name its session.
    pub fn verify_own(&self, jwt: &str) -> Option<serde_json::Value> {
        // The published set is what verifies, ours as anyone else's.
        verify_with_jwks(jwt, &self.jwks, &SigningAlg::ALL)
    }
}

#[cfg(test)]
mod tests;
