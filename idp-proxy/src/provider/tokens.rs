//! Random handles (codes, access tokens, interaction and session ids) and how they are keyed
//! in the ephemeral store: by SHA-256, so a dump of the store yields nothing usable.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// 256 random bits, base64url.
pub fn random() -> String {
    let mut bytes = [0u8; 32];
    // The OS generator fails only on a broken system; minting a guessable handle there would
    // be worse than stopping.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        tracing::error!("operating system random generator failed");
        std::process::abort();
    }
    B64.encode(bytes)
}

pub fn sha256_b64(value: &str) -> String {
    B64.encode(digest(&SHA256, value.as_bytes()))
}

/// OIDC Core §3.1.3.6: left half of SHA-256 of the access token (ES256 and RS256 both use it).
pub fn at_hash(access_token: &str) -> String {
    let d = digest(&SHA256, access_token.as_bytes());
    B64.encode(&d.as_ref()[..16])
}

/// Constant-time equality of two secrets.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        // OIDC Core A.3 uses RS256 with this token; at_hash is the same for ES256.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn random_handles_differ() {
        assert_ne!(random(), random());
        assert_eq!(random().len(), 43);
    }
}
