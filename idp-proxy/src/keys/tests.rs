use super::files::unix_now;
use super::*;
use serde_json::json;
use std::fs;
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
    let err = KeyRing::rotate(dir.path(), Duration::from_secs(3600), unix_now() + 600).unwrap_err();
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
