//! Request parameters of the protocol endpoints: form-urlencoded, each name at most once
//! (RFC 6749 §3.1), each value bounded. Anything else is refused before it reaches a check.

use std::collections::HashMap;

/// Longest value accepted for one parameter; longer is an attack or a bug, not a login.
pub const MAX_VALUE: usize = 2048;
/// A signed request object (`request`) is longer than any other parameter.
const MAX_REQUEST_OBJECT: usize = 8192;
/// Most parameters accepted in one request.
const MAX_PARAMS: usize = 40;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("parameter `{0}` is repeated")]
    Duplicate(String),
    #[error("parameter `{0}` is too long")]
    TooLong(String),
    #[error("too many parameters")]
    TooMany,
    #[error("parameter `{0}` is not valid UTF-8")]
    NotUtf8(String),
}

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Params, ParamError> {
        let mut map = HashMap::new();
        for pair in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let k = decode(k).map_err(|_| ParamError::NotUtf8("?".into()))?;
            let v = decode(v).map_err(|_| ParamError::NotUtf8(short(&k)))?;
            if map.len() >= MAX_PARAMS {
                return Err(ParamError::TooMany);
            }
            let max = if k == "request" {
                MAX_REQUEST_OBJECT
            } else {
                MAX_VALUE
            };
            if v.len() > max {
                return Err(ParamError::TooLong(short(&k)));
            }
            // An empty value counts as absent (RFC 6749 §3.1).
            if v.is_empty() {
                continue;
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(ParamError::Duplicate(short(&k)));
            }
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Parameters from another source (a request object, a pushed request), bounded alike.
    pub fn from_map(map: HashMap<String, String>) -> Result<Params, ParamError> {
        if map.len() > MAX_PARAMS {
            return Err(ParamError::TooMany);
        }
        if let Some((k, _)) = map.iter().find(|(_, v)| v.len() > MAX_VALUE) {
            return Err(ParamError::TooLong(short(k)));
        }
        Ok(Params(
            map.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        ))
    }

    pub fn into_map(self) -> HashMap<String, String> {
        self.0
    }
}

/// application/x-www-form-urlencoded decoding that refuses invalid UTF-8 instead of
/// replacing it: a mangled value must not pass for another one.
fn decode(raw: &[u8]) -> Result<String, std::string::FromUtf8Error> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    String::from_utf8(percent_encoding::percent_decode(&plus).collect())
}

/// Parameter names are echoed in errors: keep them short and printable.
fn short(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_parameter_is_refused() {
        assert_eq!(
            Params::parse(b"client_id=a&client_id=b").unwrap_err(),
            ParamError::Duplicate("client_id".into())
        );
    }

    #[test]
    fn oversized_value_is_refused() {
        let raw = format!("state={}", "a".repeat(MAX_VALUE + 1));
        assert!(matches!(
            Params::parse(raw.as_bytes()),
            Err(ParamError::TooLong(_))
        ));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(
            Params::parse(b"client_id=%FF%FE").unwrap_err(),
            ParamError::NotUtf8("client_id".into())
        );
        let p = Params::parse(b"scope=openid+email&x=%C3%A9").unwrap();
        assert_eq!(p.get("scope"), Some("openid email"));
        assert_eq!(p.get("x"), Some("é"));
    }

    #[test]
    fn empty_value_is_absent() {
        assert_eq!(Params::parse(b"state=").unwrap().get("state"), None);
    }
}
