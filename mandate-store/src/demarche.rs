//! The ten démarche categories a mandate can cover (Aidants Connect's list): their keys as
//! stored and sent in `rep_scope`, FranceConnect's names for them (its `DelegationScope`
//! strings, also sent in `rep_scope`), and their French labels. Both vocabularies, and the
//! stored form of a mandate's démarches (comma-separated keys), are read and written only here.

use std::fmt;
use std::str::FromStr;

use crate::error::StoreError;

/// A category of administrative procedure.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Demarche {
    Papiers,
    Famille,
    Social,
    Travail,
    Logement,
    Transports,
    Argent,
    Justice,
    Etranger,
    Loisirs,
}

/// A string that is not one of the ten démarche keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown démarche `{0}`")]
pub struct UnknownDemarche(pub String);

/// The vocabulary a démarche is named in on the wire (`rep_scope`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vocabulary {
    /// Our keys (`argent`): what the database stores.
    #[default]
    Keys,
    /// FranceConnect's `DelegationScope` strings (`Argent-Impots-Consommation`).
    FranceConnect,
}

impl Demarche {
    /// Every category, in display order.
    pub const ALL: [Demarche; 10] = [
        Demarche::Papiers,
        Demarche::Famille,
        Demarche::Social,
        Demarche::Travail,
        Demarche::Logement,
        Demarche::Transports,
        Demarche::Argent,
        Demarche::Justice,
        Demarche::Etranger,
        Demarche::Loisirs,
    ];

    /// The key: stored in the database, sent in `rep_scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            Demarche::Papiers => "papiers",
            Demarche::Famille => "famille",
            Demarche::Social => "social",
            Demarche::Travail => "travail",
            Demarche::Logement => "logement",
            Demarche::Transports => "transports",
            Demarche::Argent => "argent",
            Demarche::Justice => "justice",
            Demarche::Etranger => "etranger",
            Demarche::Loisirs => "loisirs",
        }
    }

    /// FranceConnect's name for it: the `DelegationScope` enum of FranceConnect's core
    /// (france-connect/sources, `back/apps/core-fcp/src/enums/delegation-scope.enum.ts`),
    /// which FranceConnect sends in its `rep_scope` claims request and expects back.
    pub fn franceconnect(self) -> &'static str {
        match self {
            Demarche::Papiers => "Papier-Citoyenneté-Elections",
            Demarche::Famille => "Famille-Scolarité",
            Demarche::Social => "Social-Santé",
            Demarche::Travail => "Travail-Formation",
            Demarche::Logement => "Logement",
            Demarche::Transports => "Transports-Mobilité",
            Demarche::Argent => "Argent-Impots-Consommation",
            Demarche::Justice => "Justice",
            Demarche::Etranger => "Etranger-Europe",
            Demarche::Loisirs => "Loisirs-Sport-Culture",
        }
    }

    /// Its name in `vocabulary`.
    pub fn name_in(self, vocabulary: Vocabulary) -> &'static str {
        match vocabulary {
            Vocabulary::Keys => self.as_str(),
            Vocabulary::FranceConnect => self.franceconnect(),
        }
    }

    /// A démarche named in either vocabulary, and which one named it. The two never overlap
    /// (keys are lower case, FranceConnect's names capitalised), so the answer is unambiguous.
    pub fn from_either(name: &str) -> Result<(Demarche, Vocabulary), UnknownDemarche> {
        if let Ok(d) = name.parse() {
            return Ok((d, Vocabulary::Keys));
        }
        Demarche::ALL
            .into_iter()
            .find(|d| d.franceconnect() == name)
            .map(|d| (d, Vocabulary::FranceConnect))
            .ok_or_else(|| UnknownDemarche(name.to_owned()))
    }

    /// The title shown to aidants and usagers.
    pub fn title_fr(self) -> &'static str {
        match self {
            Demarche::Papiers => "Papiers - Citoyenneté",
            Demarche::Famille => "Famille",
            Demarche::Social => "Social - Santé",
            Demarche::Travail => "Travail",
            Demarche::Logement => "Logement",
            Demarche::Transports => "Transports",
            Demarche::Argent => "Argent",
            Demarche::Justice => "Justice",
            Demarche::Etranger => "Étranger",
            Demarche::Loisirs => "Loisirs",
        }
    }

    /// A few examples, so the usager knows what they hand over.
    pub fn examples_fr(self) -> &'static str {
        match self {
            Demarche::Papiers => {
                "État-civil, passeport, élections, papiers à conserver, carte d'identité…"
            }
            Demarche::Famille => "Allocations familiales, naissance, mariage, Pacs, scolarité…",
            Demarche::Social => "Carte vitale, chômage, handicap, RSA, personnes âgées…",
            Demarche::Travail => "CDD, concours, retraite, démission, période d'essai…",
            Demarche::Logement => {
                "Allocations logement, permis de construire, logement social, fin de bail…"
            }
            Demarche::Transports => {
                "Carte grise, permis de conduire, contrôle technique, infractions…"
            }
            Demarche::Argent => "Impôts, consommation, banque, retraite…",
            Demarche::Justice => "Casier judiciaire, plainte, aide juridictionnelle, saisie…",
            Demarche::Etranger => "Titres de séjour, attestation d'accueil, regroupement familial…",
            Demarche::Loisirs => "Animaux, permis bateau, tourisme, permis de chasser…",
        }
    }
}

impl FromStr for Demarche {
    type Err = UnknownDemarche;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Demarche::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownDemarche(s.to_owned()))
    }
}

impl fmt::Display for Demarche {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sorted, deduplicated list: the one canonical form, so equal sets store equal text.
pub(crate) fn normalise(demarches: &[Demarche]) -> Vec<Demarche> {
    let mut list = demarches.to_vec();
    list.sort();
    list.dedup();
    list
}

/// The stored column value: canonical keys joined by commas.
pub(crate) fn to_column(demarches: &[Demarche]) -> String {
    normalise(demarches)
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a stored column value; an unknown key means the row is corrupt, not that the
/// mandate covers less (failing loudly beats silently dropping a démarche).
pub(crate) fn from_column(column: &str) -> Result<Vec<Demarche>, StoreError> {
    let list = column
        .split(',')
        .map(|key| key.parse::<Demarche>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(format!("mandate démarches: {e}")))?;
    Ok(normalise(&list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_from_str_and_serde() {
        for d in Demarche::ALL {
            assert_eq!(d.as_str().parse::<Demarche>(), Ok(d));
            assert_eq!(d.to_string(), d.as_str());
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
            assert_eq!(serde_json::from_str::<Demarche>(&json).unwrap(), d);
            assert!(!d.title_fr().is_empty());
            assert!(!d.examples_fr().is_empty());
        }
    }

    #[test]
    fn franceconnect_names_map_both_ways_and_never_clash_with_keys() {
        // FranceConnect's DelegationScope enum, as its core sends it (FRANCECONNECT.md §6).
        let franceconnect = [
            "Papier-Citoyenneté-Elections",
            "Famille-Scolarité",
            "Social-Santé",
            "Travail-Formation",
            "Logement",
            "Transports-Mobilité",
            "Argent-Impots-Consommation",
            "Justice",
            "Etranger-Europe",
            "Loisirs-Sport-Culture",
        ];
        let mapped: Vec<&str> = Demarche::ALL.iter().map(|d| d.franceconnect()).collect();
        assert_eq!(mapped, franceconnect);
        for d in Demarche::ALL {
            assert_eq!(
                Demarche::from_either(d.franceconnect()),
                Ok((d, Vocabulary::FranceConnect))
            );
            assert_eq!(Demarche::from_either(d.as_str()), Ok((d, Vocabulary::Keys)));
            assert_eq!(d.name_in(Vocabulary::FranceConnect), d.franceconnect());
            assert_eq!(d.name_in(Vocabulary::Keys), d.as_str());
        }
        assert!(Demarche::from_either("logement ").is_err());
        assert!(Demarche::from_either("LOGEMENT").is_err());
        // Our keys are not FranceConnect's: the stored form stays the keys.
        assert!("Logement".parse::<Demarche>().is_err());
    }

    #[test]
    fn unknown_key_is_rejected() {
        assert_eq!(
            "Argent".parse::<Demarche>(),
            Err(UnknownDemarche("Argent".into()))
        );
        assert!("".parse::<Demarche>().is_err());
    }

    #[test]
    fn column_form_is_canonical() {
        let column = to_column(&[Demarche::Social, Demarche::Argent, Demarche::Social]);
        assert_eq!(column, "social,argent");
        assert_eq!(
            from_column(&column).unwrap(),
            vec![Demarche::Social, Demarche::Argent]
        );
        assert!(from_column("argent,bogus").is_err());
        assert!(from_column("").is_err());
    }
}
