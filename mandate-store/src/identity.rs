//! The usager's identity (FranceConnect's "identité pivot" + email) and its protection at
//! rest. The identity is only ever written sealed with AES-256-GCM, bound to the usager's id;
//! the FranceConnect subject is only kept as a keyed hash. Nothing here logs or prints a key
//! or a clear identity.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::StoreError;

/// FranceConnect "identité pivot" and email, as handed to service providers. Its shape is
/// the one FranceConnect's core accepts from an identity provider (`Identity::check`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub given_name: String,
    pub family_name: String,
    /// `YYYY-MM-DD`, or a presumed date `YYYY-MM-00` / `YYYY-00-00` (day, or day and month,
    /// unknown): the identity provider's own birthdate (`idp_birthdate` at FranceConnect).
    pub birthdate: String,
    /// `female`, `male` or `unspecified`
    pub gender: String,
    /// INSEE commune code; absent when born abroad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthplace: Option<String>,
    /// INSEE country code, `99100` = France.
    pub birthcountry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

impl Identity {
    /// "Michel DUPONT", as pages and the journal show a person.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    /// The identity as FranceConnect's core validates what an identity provider returns
    /// (france-connect/sources `back/apps/core-fcp/src/dto/oidc-identity.dto.ts`): names of 1
    /// to 256 characters, `birthdate` a real `YYYY-MM-DD` or a presumed `YYYY-MM-00` /
    /// `YYYY-00-00` (`is-idp-birthdate.validator.ts`), `gender` one of FranceConnect's
    /// (`genders.enum.ts`), `birthcountry` a COG code, `birthplace` a COG code required only
    /// for people born in France (`99100`), and an email. Identities that fail are never
    /// stored: FranceConnect would refuse every answer built from them.
    pub fn check(&self) -> Result<(), IdentityProblem> {
        let name_ok = |n: &str| (1..=256).contains(&n.chars().count());
        if !name_ok(&self.given_name) {
            return Err(IdentityProblem::GivenName);
        }
        if !name_ok(&self.family_name) {
            return Err(IdentityProblem::FamilyName);
        }
        if !is_birthdate(&self.birthdate) {
            return Err(IdentityProblem::Birthdate);
        }
        if !GENDERS.contains(&self.gender.as_str()) {
            return Err(IdentityProblem::Gender);
        }
        if !is_cog(&self.birthcountry) {
            return Err(IdentityProblem::Birthcountry);
        }
        if self.birthcountry == COG_FRANCE && !self.birthplace.as_deref().is_some_and(is_cog) {
            return Err(IdentityProblem::Birthplace);
        }
        match &self.email {
            Some(email) if is_email(email) => {}
            _ => return Err(IdentityProblem::Email),
        }
        Ok(())
    }
}

/// Which part of an identity FranceConnect would refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityProblem {
    #[error("given_name must have 1 to 256 characters")]
    GivenName,
    #[error("family_name must have 1 to 256 characters")]
    FamilyName,
    #[error("birthdate must be YYYY-MM-DD, YYYY-MM-00 or YYYY-00-00")]
    Birthdate,
    #[error("gender must be female, male or unspecified")]
    Gender,
    #[error("birthcountry must be a COG code (99100: France)")]
    Birthcountry,
    #[error("birthplace must be a COG code when birthcountry is 99100")]
    Birthplace,
    #[error("email is missing or not an email address")]
    Email,
}

/// FranceConnect's genders (`back/libs/rnipp/src/enums/genders.enum.ts`).
pub const GENDERS: [&str; 3] = ["female", "male", "unspecified"];

/// The COG code of France (`back/libs/cog/src/constants/france.constant.ts`).
pub const COG_FRANCE: &str = "99100";

/// A COG code: `^(?:2[AB]|[0-9]{2})[0-9]{3}$` (`back/libs/cog/src/validators`).
pub fn is_cog(code: &str) -> bool {
    let b = code.as_bytes();
    let head = matches!(b, [b'2', b'A' | b'B', ..])
        || b.get(..2).is_some_and(|h| h.iter().all(u8::is_ascii_digit));
    b.len() == 5 && head && b[2..].iter().all(u8::is_ascii_digit)
}

/// A real date, or a presumed one with the day (`YYYY-MM-00`) or day and month
/// (`YYYY-00-00`) unknown.
pub fn is_birthdate(date: &str) -> bool {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let number = |r: std::ops::Range<usize>| date[r].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    match (month, day) {
        (0, 0) => true,
        (0, _) => false,
        (1..=12, 0) => true,
        (1..=12, d) => d <= days,
        _ => false,
    }
}

/// An email address as a person types it: one `@`, a local part (letters of any alphabet
/// allowed), a dotted domain of ASCII labels of at most 63 characters ending in an alphabetic or
/// punycode label, no space, at most 254 characters (the forms FranceConnect's `IsEmail`,
/// validator.js, accepts, without the rarities).
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    // validator.js's isFQDN: the last label alphabetic, or punycode.
    let tld_ok = |t: &str| {
        (t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic())) || t.starts_with("xn--")
    };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && domain.contains('.')
        && domain.split('.').all(label_ok)
        && domain.rsplit('.').next().is_some_and(tld_ok)
}

/// An AES-256 data key and the id it is stored under.
pub struct DataKey {
    pub kid: String,
    pub key: [u8; 32],
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Seals and opens identities. AES-256-GCM (ring) with a random 96-bit nonce per seal and the
/// usager id as associated data, so a ciphertext copied onto another row does not open.
/// Seals with the active key; opens with any key it holds, found by `kid`, so rotation only
/// needs the old key kept until every row has been re-sealed (an upsert re-seals).
pub struct Sealer {
    active_kid: String,
    keys: HashMap<String, LessSafeKey>,
    subject_key: hmac::Key,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Sealer")
            .field("active_kid", &self.active_kid)
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

// ring only refuses a key of the wrong length, which `[u8; 32]` rules out; were it ever to
// refuse, the kid is simply absent and seal/open report `UnknownDataKey` instead of panicking.
fn aes_key(key: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&aead::AES_256_GCM, key)
        .ok()
        .map(LessSafeKey::new)
}

impl Sealer {
    /// `older` keys only open; an older key with the active key's `kid` is ignored.
    pub fn new(active: DataKey, older: Vec<DataKey>, subject_key: [u8; 32]) -> Sealer {
        let mut keys = HashMap::new();
        for old in older {
            if let Some(key) = aes_key(&old.key) {
                keys.insert(old.kid, key);
            }
        }
        keys.remove(&active.kid);
        if let Some(key) = aes_key(&active.key) {
            keys.insert(active.kid.clone(), key);
        }
        Sealer {
            active_kid: active.kid,
            keys,
            subject_key: hmac::Key::new(hmac::HMAC_SHA256, &subject_key),
            rng: SystemRandom::new(),
        }
    }

    /// The kid new seals are made with.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// Seals `identity` for the row `usager_id`: returns `(kid, base64url(nonce ‖ ciphertext ‖ tag))`.
    pub fn seal(
        &self,
        usager_id: &str,
        identity: &Identity,
    ) -> Result<(String, String), StoreError> {
        let key = self
            .keys
            .get(&self.active_kid)
            .ok_or_else(|| StoreError::UnknownDataKey(self.active_kid.clone()))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| StoreError::Crypto("no randomness for the nonce"))?;
        let mut buffer = serde_json::to_vec(identity)
            .map_err(|_| StoreError::Crypto("identity does not serialise"))?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(usager_id.as_bytes()),
            &mut buffer,
        )
        .map_err(|_| StoreError::Crypto("sealing failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        Ok((self.active_kid.clone(), URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens what [`Sealer::seal`] produced for the same `usager_id`.
    pub fn open(&self, usager_id: &str, kid: &str, sealed: &str) -> Result<Identity, StoreError> {
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| StoreError::UnknownDataKey(kid.to_owned()))?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| StoreError::Crypto("sealed identity is not base64url"))?;
        if bytes.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Err(StoreError::Crypto("sealed identity is too short"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(usager_id.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| {
                StoreError::Crypto("sealed identity does not open (wrong key, row or data)")
            })?;
        serde_json::from_slice(plain)
            .map_err(|_| StoreError::Crypto("opened identity is not valid"))
    }

    /// HMAC-SHA256 of the FranceConnect subject, lowercase hex: a stable lookup key that
    /// cannot be reversed without the subject key.
    pub fn subject_hash(&self, franceconnect_sub: &str) -> String {
        hex(hmac::sign(&self.subject_key, franceconnect_sub.as_bytes()).as_ref())
    }
}

/// Lowercase hex, used for the subject hash and the journal's hashes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            given_name: "Angela Claire Louise".into(),
            family_name: "DUBOIS".into(),
            birthdate: "1962-08-24".into(),
            gender: "female".into(),
            birthplace: Some("75107".into()),
            birthcountry: "99100".into(),
            email: Some("angela@example.fr".into()),
            preferred_username: None,
        }
    }

    fn sealer(kid: &str, byte: u8, older: Vec<DataKey>) -> Sealer {
        Sealer::new(
            DataKey {
                kid: kid.into(),
                key: [byte; 32],
            },
            older,
            [9; 32],
        )
    }

    #[test]
    fn sealed_identity_opens_for_the_same_row_only() {
        let s = sealer("k1", 1, vec![]);
        let (kid, sealed) = s.seal("usager-1", &identity()).unwrap();
        assert_eq!(kid, "k1");
        assert!(!sealed.contains("DUBOIS"));
        assert_eq!(s.open("usager-1", &kid, &sealed).unwrap(), identity());
        assert!(matches!(
            s.open("usager-2", &kid, &sealed),
            Err(StoreError::Crypto(_))
        ));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let s = sealer("k1", 1, vec![]);
        let (_, a) = s.seal("u", &identity()).unwrap();
        let (_, b) = s.seal("u", &identity()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn older_keys_still_open_after_rotation() {
        let old = sealer("k1", 1, vec![]);
        let (kid, sealed) = old.seal("u", &identity()).unwrap();
        let rotated = sealer(
            "k2",
            2,
            vec![DataKey {
                kid: "k1".into(),
                key: [1; 32],
            }],
        );
        assert_eq!(rotated.open("u", &kid, &sealed).unwrap(), identity());
        assert_eq!(rotated.seal("u", &identity()).unwrap().0, "k2");
        let forgotten = sealer("k2", 2, vec![]);
        assert!(matches!(
            forgotten.open("u", &kid, &sealed),
            Err(StoreError::UnknownDataKey(k)) if k == "k1"
        ));
    }

    #[test]
    fn tampered_ciphertext_does_not_open() {
        let s = sealer("k1", 1, vec![]);
        let (kid, sealed) = s.seal("u", &identity()).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert!(s.open("u", &kid, &tampered).is_err());
        assert!(s.open("u", &kid, "!!").is_err());
        assert!(s.open("u", &kid, "AAAA").is_err());
    }

    #[test]
    fn subject_hash_is_stable_keyed_hex() {
        let s = sealer("k1", 1, vec![]);
        let h = s.subject_hash("fc-sub-1");
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(h, s.subject_hash("fc-sub-1"));
        assert_ne!(h, s.subject_hash("fc-sub-2"));
        let other_key = Sealer::new(
            DataKey {
                kid: "k1".into(),
                key: [1; 32],
            },
            vec![],
            [8; 32],
        );
        assert_ne!(h, other_key.subject_hash("fc-sub-1"));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let s = sealer("k1", 0xab, vec![]);
        let shown = format!("{s:?}");
        assert!(shown.contains("k1"));
        assert!(!shown.contains("171"));
    }

    #[test]
    fn identities_are_checked_as_franceconnect_checks_them() {
        assert_eq!(identity().check(), Ok(()));
        let with = |f: &dyn Fn(&mut Identity)| {
            let mut i = identity();
            f(&mut i);
            i.check()
        };
        // Presumed dates (is-idp-birthdate.validator.ts) are real answers.
        assert_eq!(with(&|i| i.birthdate = "1962-08-00".into()), Ok(()));
        assert_eq!(with(&|i| i.birthdate = "1962-00-00".into()), Ok(()));
        for bad in [
            "1962-13-00",
            "1962-00-05",
            "1962-02-30",
            "62-08-24",
            "1962/08/24",
            "",
        ] {
            assert_eq!(
                with(&|i| i.birthdate = bad.into()),
                Err(IdentityProblem::Birthdate),
                "{bad}"
            );
        }
        assert_eq!(with(&|i| i.gender = "unspecified".into()), Ok(()));
        assert_eq!(
            with(&|i| i.gender = "M".into()),
            Err(IdentityProblem::Gender)
        );
        // Born abroad: no birthplace needed; born in France: a COG code.
        assert_eq!(
            with(&|i| {
                i.birthcountry = "99134".into();
                i.birthplace = None;
            }),
            Ok(())
        );
        assert_eq!(
            with(&|i| i.birthplace = None),
            Err(IdentityProblem::Birthplace)
        );
        assert_eq!(with(&|i| i.birthplace = Some("2A004".into())), Ok(()));
        assert_eq!(
            with(&|i| i.birthplace = Some("2C004".into())),
            Err(IdentityProblem::Birthplace)
        );
        assert_eq!(
            with(&|i| i.birthcountry = "France".into()),
            Err(IdentityProblem::Birthcountry)
        );
        assert_eq!(with(&|i| i.email = None), Err(IdentityProblem::Email));
        for bad in [
            "michel",
            "michel@",
            "@example.org",
            "mi chel@example.org",
            "m@example",
        ] {
            assert_eq!(
                with(&|i| i.email = Some(bad.into())),
                Err(IdentityProblem::Email),
                "{bad}"
            );
        }
        assert_eq!(
            with(&|i| i.given_name = String::new()),
            Err(IdentityProblem::GivenName)
        );
    }

    #[test]
    fn absent_birthplace_is_omitted_from_json() {
        let mut id = identity();
        id.birthplace = None;
        let json = serde_json::to_value(&id).unwrap();
        assert!(json.get("birthplace").is_none());
        assert!(json.get("preferred_username").is_none());
    }
}
