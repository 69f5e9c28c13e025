//! JWE: the encryption keys identity providers encrypt to (RSA-OAEP-256, FranceConnect v2),
//! and encryption to a client's key (RSA-OAEP-256 or ECDH-ES), content always A256GCM.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::json;

use super::KeyError;
use crate::config::EncryptionAlg;

/// One of our RSA-OAEP-256 keys, and its public JWK as published.
pub struct DecryptionKey {
    kid: String,
    decrypter: josekit::jwe::alg::rsaes::RsaesJweDecrypter,
    pub public_jwk: serde_json::Value,
}

impl DecryptionKey {
    pub fn from_der(kid: &str, der: &[u8]) -> Result<DecryptionKey, String> {
        let mut decrypter = josekit::jwe::RSA_OAEP_256
            .decrypter_from_der(der)
            .map_err(|_| "not an RSA private key for RSA-OAEP-256")?;
        decrypter.set_key_id(kid);
        let jwk = josekit::jwk::alg::rsa::RsaKeyPair::from_der(der)
            .map_err(|_| "not an RSA private key")?
            .to_jwk_public_key();
        let (n, e) = (jwk.parameter("n").cloned(), jwk.parameter("e").cloned());
        Ok(DecryptionKey {
            kid: kid.to_string(),
            decrypter,
            public_jwk: json!({"kty": "RSA", "use": "enc", "alg": "RSA-OAEP-256",
                               "kid": kid, "n": n, "e": e}),
        })
    }
}

/// Opens a compact JWE encrypted to one of `keys` (chosen by `kid`, else the newest: last)
/// with RSA-OAEP-256 and A256GCM, and returns its payload.
pub(super) fn decrypt(keys: &[DecryptionKey], jwe: &str) -> Result<Vec<u8>, KeyError> {
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
    let key = keys
        .iter()
        .rev()
        .find(|k| kid.is_none_or(|kid| kid == k.kid))
        .ok_or_else(|| undecryptable("no key with this kid"))?;
    josekit::jwe::deserialize_compact(jwe, &key.decrypter)
        .map(|(payload, _)| payload)
        .map_err(|e| undecryptable(&e.to_string()))
}

/// Encrypts `payload` (compact JWE, `alg` with A256GCM) to the client's encryption key: the
/// one of its JWKS with `use: enc` (or no `use`) of the right type and, if stated, `alg`.
/// `cty: "JWT"` marks a signed JWT inside (nested JWT).
pub fn encrypt_to(
    jwks: &serde_json::Value,
    alg: EncryptionAlg,
    payload: &[u8],
    nested_jwt: bool,
) -> Result<String, KeyError> {
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
