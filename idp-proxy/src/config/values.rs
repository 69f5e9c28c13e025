//! The typed values of the file, parsed once: lifetimes as `Duration` (the keys keep their
//! unit in their name, `…_secs`, `…_ms`), URLs checked at load and kept exactly as written
//! (redirect URIs are compared character for character, and an issuer is a string in `iss`).

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// `#[serde(with = "secs")]`: a whole number of seconds.
pub mod secs {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// `#[serde(with = "millis")]`: a whole number of milliseconds.
pub mod millis {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// `#[serde(default, with = "opt_secs")]`: seconds, if given.
pub mod opt_secs {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// Loopback hosts may use plain http: that is how a developer machine and the tests run.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A URL a browser or this service is sent to: absolute, https (http on loopback only),
/// without fragment. Kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String")]
pub struct WebUrl(String);

impl TryFrom<String> for WebUrl {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let fix = "Fix: use an absolute https URL without fragment (http only on loopback)";
        let url = Url::parse(&s).map_err(|e| format!("{s}: {e}. {fix}"))?;
        if url.fragment().is_some() {
            return Err(format!("{s}: has a fragment. {fix}"));
        }
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
            return Err(format!("{s}: must be https. {fix}"));
        }
        Ok(WebUrl(s))
    }
}

/// An issuer: a `WebUrl` without trailing slash or query, as it appears in `iss` and
/// discovery (ours, or an upstream's as its discovery document says).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String")]
pub struct Issuer(String);

impl TryFrom<String> for Issuer {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let fix = "Fix: use the issuer's https URL as its discovery document says, without trailing slash or query";
        let url = Url::parse(&s).map_err(|e| format!("{s}: {e}. {fix}"))?;
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
            return Err(format!(
                "{s}: must be https (http is allowed on loopback only). {fix}"
            ));
        }
        if s.ends_with('/') || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{s}: must not end with '/' nor carry a query or fragment. {fix}"
            ));
        }
        Ok(Issuer(s))
    }
}

macro_rules! as_str {
    ($t:ty) => {
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}
as_str!(WebUrl);
as_str!(Issuer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_kept_as_written() {
        let web = |s: &str| WebUrl::try_from(s.to_string());
        assert_eq!(
            web("https://sp.example/cb?x=1").unwrap(),
            "https://sp.example/cb?x=1"
        );
        assert!(web("http://127.0.0.1:9/cb").is_ok());
        assert!(web("http://sp.example/cb").unwrap_err().contains("https"));
        assert!(web("https://sp.example/cb#f")
            .unwrap_err()
            .contains("fragment"));
        let issuer = |s: &str| Issuer::try_from(s.to_string());
        // Url would write `https://idp.example/`: the issuer stays as written.
        assert_eq!(
            issuer("https://idp.example").unwrap().as_str(),
            "https://idp.example"
        );
        assert!(issuer("https://idp.example/").unwrap_err().contains("'/'"));
        assert!(issuer("http://idp.example").unwrap_err().contains("Fix:"));
    }
}
