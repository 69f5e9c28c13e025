//! `idp-proxy mandates import FILE`: organisations, aidants, usagers and mandates from a TOML
//! file, for ops (until mandates are created through FranceConnect), the demo and the tests.
//! Idempotent: natural keys (SIRET, issuer+subject, FranceConnect subject, mandate id) are
//! upserted.

use std::collections::BTreeMap;
use std::path::Path;

use mandate_store::{Demarche, Identity, NewAidant, NewMandate, Store};
use serde::{Deserialize, Serialize};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Parse {
        file: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{file}: {what} `{name}` is not declared in this file or the database")]
    Unknown {
        file: String,
        what: &'static str,
        name: String,
    },
    #[error("{file}: usager `{usager}`: {problem}, as FranceConnect requires of an identity")]
    Identity {
        file: String,
        usager: String,
        problem: mandate_store::IdentityProblem,
    },
    #[error("{file}: mandate for `{usager}`: {problem}")]
    Mandate {
        file: String,
        usager: String,
        problem: String,
    },
    #[error(transparent)]
    Store(#[from] mandate_store::StoreError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    organisations: Vec<Organisation>,
    #[serde(default)]
    aidants: Vec<Aidant>,
    #[serde(default)]
    usagers: Vec<Usager>,
    #[serde(default)]
    mandates: Vec<Mandate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Organisation {
    siret: String,
    name: String,
    #[serde(default = "yes")]
    active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Aidant {
    #[serde(default)]
    issuer: Option<String>,
    subject: String,
    email: String,
    given_name: String,
    family_name: String,
    organisations: Vec<String>,
    #[serde(default = "yes")]
    active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Usager {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    id: Option<String>,
    franceconnect_sub: String,
    #[serde(flatten)]
    identity: Identity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mandate {
    #[serde(default)]
    id: Option<String>,
    usager: String,
    organisation: String,
    created_by: String,
    demarches: Vec<Demarche>,
    #[serde(default)]
    days: Option<i64>,
    #[serde(default)]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    revoked: bool,
    /// The eIDAS level (`eidas1`…) the usager logged in with when giving it, if known; unset
    /// counts as eidas1 (a mandate is always given after a FranceConnect login).
    #[serde(default)]
    consent_acr: Option<mandate_store::Level>,
}

fn yes() -> bool {
    true
}

/// What was loaded, by the names the file used: the ids the service gives out.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub organisations: BTreeMap<String, String>,
    pub aidants: BTreeMap<String, String>,
    pub usagers: BTreeMap<String, String>,
    pub mandates: Vec<String>,
}

pub fn import(
    store: &Store,
    config: &Config,
    path: &Path,
    now: i64,
) -> Result<Summary, ImportError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        file: file.clone(),
        source,
    })?;
    let data: File = toml::from_str(&text).map_err(|source| ImportError::Parse {
        file: file.clone(),
        source,
    })?;
    let mut summary = Summary::default();
    let unknown = |what: &'static str, name: &str| ImportError::Unknown {
        file: file.clone(),
        what,
        name: name.to_string(),
    };

    for o in &data.organisations {
        let org = store.upsert_organisation(&o.siret, &o.name, o.active, now)?;
        summary.organisations.insert(o.siret.clone(), org.id);
    }
    let default_issuer = &config.upstream.aidant.issuer;
    for a in &data.aidants {
        let aidant = store.upsert_aidant(
            &NewAidant {
                issuer: a
                    .issuer
                    .clone()
                    .unwrap_or_else(|| default_issuer.to_string()),
                subject: a.subject.clone(),
                email: a.email.clone(),
                given_name: a.given_name.clone(),
                family_name: a.family_name.clone(),
                active: a.active,
                organisation_sirets: a.organisations.clone(),
            },
            now,
        )?;
        summary.aidants.insert(a.subject.clone(), aidant.id);
    }
    for u in &data.usagers {
        // FranceConnect's identity DTO, but for the email, which older records may lack
        // (answers to FranceConnect need one: docs/FRANCECONNECT.md).
        match u.identity.check() {
            Ok(()) | Err(mandate_store::IdentityProblem::Email) => {}
            Err(problem) => {
                return Err(ImportError::Identity {
                    file: file.clone(),
                    usager: u.reference.clone(),
                    problem,
                })
            }
        }
        let usager =
            store.upsert_usager(u.id.as_deref(), &u.franceconnect_sub, &u.identity, now)?;
        summary.usagers.insert(u.reference.clone(), usager.id);
    }
    for m in &data.mandates {
        let usager_id = summary
            .usagers
            .get(&m.usager)
            .cloned()
            .ok_or_else(|| unknown("usager", &m.usager))?;
        let organisation_id = match summary.organisations.get(&m.organisation) {
            Some(id) => id.clone(),
            None => store
                .organisation_by_siret(&m.organisation)?
                .map(|o| o.id)
                .ok_or_else(|| unknown("organisation", &m.organisation))?,
        };
        let created_by = store
            .aidant_by_subject(default_issuer, &m.created_by)?
            .map(|a| a.id)
            .ok_or_else(|| unknown("aidant", &m.created_by))?;
        let problem = |p: &str| ImportError::Mandate {
            file: file.clone(),
            usager: m.usager.clone(),
            problem: p.into(),
        };
        let expires_at = match (m.days, m.expires_at) {
            (Some(d), None) if (1..=366).contains(&d) => now + d * 86_400,
            (None, Some(t)) => t.timestamp(),
            _ => return Err(problem("give either `days` (1 to 366) or `expires_at`")),
        };
        if m.demarches.is_empty() {
            return Err(problem("`demarches` is empty"));
        }
        let mandate = store.create_mandate(
            &NewMandate {
                id: m.id.clone(),
                usager_id,
                organisation_id,
                created_by,
                demarches: m.demarches.clone(),
                // An already expired mandate (tests, history) was created a day before it ended.
                created_at: if expires_at > now {
                    now
                } else {
                    expires_at - 86_400
                },
                expires_at,
                revoked_at: m.revoked.then_some(now),
                consent: serde_json::json!({"method": "import", "acr": m.consent_acr}),
            },
            None,
            now,
        )?;
        summary.mandates.push(mandate.id);
    }
    Ok(summary)
}
