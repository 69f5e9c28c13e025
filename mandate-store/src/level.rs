//! The eIDAS assurance level of a login (`acr`), named as FranceConnect v2 names them. One
//! ordered type for every place a level appears: a request's minimum, the aidant's upstream
//! login, the usager's consent recorded with a mandate, a client's `allowed_acr`, the answer.

use std::fmt;
use std::str::FromStr;

/// `eidas1` < `eidas2` < `eidas3`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Eidas1,
    Eidas2,
    Eidas3,
}

/// A string that is not an eIDAS level name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an eIDAS level (eidas1, eidas2 or eidas3)")]
pub struct UnknownLevel(pub String);

impl Level {
    /// Lowest first.
    pub const ALL: [Level; 3] = [Level::Eidas1, Level::Eidas2, Level::Eidas3];
    pub const NAMES: [&'static str; 3] = ["eidas1", "eidas2", "eidas3"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The level named `acr`, if it is one.
    pub fn named(acr: &str) -> Option<Level> {
        Self::ALL.into_iter().find(|l| l.as_str() == acr)
    }

    /// This level and those above it.
    pub fn and_above(self) -> impl Iterator<Item = Level> {
        Self::ALL.into_iter().filter(move |l| *l >= self)
    }

    /// 1 to 3: how ephemeral records written before this type stored a level.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_number(n: u8) -> Option<Level> {
        Self::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::named(s).ok_or_else(|| UnknownLevel(s.to_string()))
    }
}

/// `#[serde(with = "mandate_store::level::as_number")]`: a level kept as 1 to 3, the form
/// records already in an ephemeral store have, so nodes of two versions read each other's.
pub mod as_number {
    use super::Level;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(l: &Option<Level>, s: S) -> Result<S::Ok, S::Error> {
        l.map(Level::number).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Level>, D::Error> {
        match Option::<u8>::deserialize(d)? {
            None => Ok(None),
            Some(n) => Level::from_number(n)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("no eIDAS level {n}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_named() {
        assert!(Level::Eidas1 < Level::Eidas2 && Level::Eidas2 < Level::Eidas3);
        assert_eq!("eidas2".parse(), Ok(Level::Eidas2));
        assert!("substantial".parse::<Level>().is_err());
        assert_eq!(Level::Eidas3.to_string(), "eidas3");
        assert_eq!(
            Level::Eidas2.and_above().collect::<Vec<_>>(),
            [Level::Eidas2, Level::Eidas3]
        );
        assert_eq!(
            (
                Level::from_number(1),
                Level::from_number(0),
                Level::from_number(4)
            ),
            (Some(Level::Eidas1), None, None)
        );
        assert_eq!(Level::Eidas3.number(), 3);
    }
}
