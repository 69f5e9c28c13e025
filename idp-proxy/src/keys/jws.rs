//! JWS: our signing keys (ring, one per algorithm, header encoded once), the JWKS we publish,
//! and the verification of others' signatures against a JWKS (allowed algorithms only).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde::Serialize;
use serde_json::json;

use super::files::KeyState;
use super::KeyError;
use crate::config::SigningAlg;

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pair: Pair,
    /// The public JWK, as published.
    pub(super) public_jwk: serde_json::Value,
    /// `base64url(header) + "."`, computed once.
    pub(super) header_prefix: String,
}

impl SigningKey {
    /// The key in `der` (PKCS#8; RSA also PKCS#1), or what is wrong with it.
    pub(super) fn from_der(
        kid: &str,
        alg: SigningAlg,
        state: KeyState,
        der: &[u8],
        rng: &SystemRandom,
    ) -> Result<SigningKey, String> {
        let pair = match alg {
            SigningAlg::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, rng)
                    .map_err(|_| "not a P-256 PKCS#8 key")?,
            ),
            SigningAlg::RS256 | SigningAlg::PS256 => Pair::Rsa(
                RsaKeyPair::from_pkcs8(der)
                    .or_else(|_| RsaKeyPair::from_der(der))
                    .map_err(|_| "not an RSA private key (PKCS#8 or PKCS#1)")?,
            ),
        };
        let public_jwk = public_jwk(kid, alg, &pair, der)?;
        Ok(SigningKey {
            kid: kid.to_string(),
            alg,
            state,
            pair,
            public_jwk,
            header_prefix: header_prefix(alg, kid, "JWT"),
        })
    }

    /// `header_prefix` is `base64url(header) + "."`.
    pub(super) fn sign(
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

/// The published set: signing keys, then encryption keys newest first.
pub(super) fn jwks(keys: &[SigningKey], encryption: &[serde_json::Value]) -> serde_json::Value {
    // Encryption keys newest first: providers encrypt to the first `use: enc` key they find.
    let keys: Vec<&serde_json::Value> = keys
        .iter()
        .map(|k| &k.public_jwk)
        .chain(encryption.iter().rev())
        .collect();
    json!({ "keys": keys })
}

/// `base64url({"alg", "kid", "typ"}) + "."`.
pub(super) fn header_prefix(alg: SigningAlg, kid: &str, typ: &str) -> String {
    let header = json!({"alg": alg.as_str(), "kid": kid, "typ": typ});
    format!("{}.", B64.encode(header.to_string()))
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
