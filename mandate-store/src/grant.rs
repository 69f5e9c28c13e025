//! The decision at the heart of the proxy: may this aidant, for this organisation, act for
//! this usager on this démarche now? One indexed query gathers everything the answer needs
//! (mandate, usager, organisation, aidant, membership); `record_use` makes the same check and
//! the journal append one transaction, so no token is ever minted without its entry.

use diesel::prelude::*;

use crate::aidant::Aidant;
use crate::db::AnyConnection;
use crate::demarche::Demarche;
use crate::error::StoreError;
use crate::identity::{Identity, Sealer};
use crate::journal::{self, JournalAction, NewJournalEntry};
use crate::level::Level;
use crate::mandate::{Mandate, MandateRow};
use crate::organisation::Organisation;
use crate::schema::{aidants, mandates, memberships, organisations, usagers};
use crate::store::{Store, Timestamp};
use crate::usager::UsagerRow;

/// The aidant's choice on the interaction page.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Use {
    pub mandate_id: String,
    pub aidant_id: String,
    pub organisation_id: String,
    pub demarche: Demarche,
    pub client_id: String,
    /// The lowest consent level (`acr` of the usager's login when they gave the mandate) the
    /// request accepts; `None`: any, or none recorded.
    pub consent_at_least: Option<Level>,
}

/// What a token may say: the usager acted for, by whom, on which démarche, until when.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub mandate_id: String,
    pub demarche: Demarche,
    pub mandate_expires_at: Timestamp,
    pub usager_id: String,
    pub identity: Identity,
    pub aidant: Aidant,
    pub organisation: Organisation,
    /// The `acr` the usager logged in with when giving the mandate, if recorded.
    pub consent_acr: Option<Level>,
}

/// Why the answer is no.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    #[error("the mandate does not exist")]
    UnknownMandate,
    #[error("the mandate has been revoked")]
    Revoked,
    #[error("the mandate has expired")]
    Expired,
    #[error("the mandate does not cover this démarche")]
    DemarcheNotCovered,
    #[error("the mandate belongs to another organisation")]
    OtherOrganisation,
    #[error("the aidant is not active")]
    AidantInactive,
    #[error("the aidant is not a member of the organisation")]
    AidantNotMember,
    #[error("the organisation is not active")]
    OrganisationInactive,
    #[error("the organisation binds this mandate to the aidant who created it")]
    NotCreator,
    #[error("the usager gave the mandate at a lower authentication level than required")]
    ConsentLevel,
}

impl Refusal {
    /// Stable snake_case code, for logs, metrics and error descriptions.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownMandate => "unknown_mandate",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
            Refusal::DemarcheNotCovered => "demarche_not_covered",
            Refusal::OtherOrganisation => "other_organisation",
            Refusal::AidantInactive => "aidant_inactive",
            Refusal::AidantNotMember => "aidant_not_member",
            Refusal::OrganisationInactive => "organisation_inactive",
            Refusal::NotCreator => "not_creator",
            Refusal::ConsentLevel => "consent_level",
        }
    }
}

/// A refusal (the rules said no) or a store failure (no answer: fail closed).
#[derive(Debug, thiserror::Error)]
pub enum UseError {
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for UseError {
    fn from(r: Refusal) -> Self {
        UseError::Refused(r)
    }
}

impl From<diesel::result::Error> for UseError {
    fn from(e: diesel::result::Error) -> Self {
        UseError::Store(StoreError::Database(e))
    }
}

type CheckRow = (
    MandateRow,
    UsagerRow,
    Organisation,
    Option<Aidant>,
    Option<String>,
    String,
);

impl Use {
    fn ask(&self) -> Ask<'_> {
        Ask {
            mandate_id: &self.mandate_id,
            aidant_id: &self.aidant_id,
            organisation_id: &self.organisation_id,
            demarche: self.demarche,
            consent_at_least: self.consent_at_least,
        }
    }
}

/// What `check` is asked.
struct Ask<'a> {
    mandate_id: &'a str,
    aidant_id: &'a str,
    organisation_id: &'a str,
    demarche: Demarche,
    consent_at_least: Option<Level>,
}

/// The check, as one query: the mandate by primary key, its usager and organisation by
/// primary key, the acting aidant by primary key and their membership of the mandate's
/// organisation by primary key. Refusals are ordered so that nothing about another
/// organisation's mandate is revealed beyond "not yours".
fn check(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    ask: Ask<'_>,
    now: Timestamp,
) -> Result<Grant, UseError> {
    let Ask {
        mandate_id,
        aidant_id,
        organisation_id,
        demarche,
        consent_at_least,
    } = ask;
    // Owned: diesel requires 'static binds inside a join's ON clause.
    let acting = aidant_id.to_owned();
    // Written once, run on the concrete connection: through the MultiConnection wrapper the
    // SQL is rebuilt and looked up by text at every call (19 µs a check on SQLite), on the
    // concrete connection the prepared statement is found by type (9 µs).
    macro_rules! query {
        ($conn:expr) => {
            mandates::table
                .inner_join(usagers::table)
                .inner_join(organisations::table)
                .left_join(aidants::table.on(aidants::id.eq(acting.clone())))
                .left_join(
                    memberships::table.on(memberships::aidant_id
                        .eq(acting.clone())
                        .and(memberships::organisation_id.eq(mandates::organisation_id))),
                )
                .filter(mandates::id.eq(mandate_id))
                .select((
                    MandateRow::as_select(),
                    UsagerRow::as_select(),
                    Organisation::as_select(),
                    Option::<Aidant>::as_select(),
                    memberships::aidant_id.nullable(),
                    mandates::consent,
                ))
                // `get_result`, not `first`: a primary-key lookup yields one row at most, and
                // diesel's SQLite LIMIT clause makes the statement uncacheable (74 µs).
                .get_result($conn)
                .optional()
        };
    }
    let row: Option<CheckRow> = match conn {
        AnyConnection::Sqlite(c) => query!(c)?,
        AnyConnection::Pg(c) => query!(c)?,
    };
    let Some((mandate_row, usager_row, organisation, aidant, membership, consent)) = row else {
        return Err(Refusal::UnknownMandate.into());
    };
    let mandate = Mandate::try_from(mandate_row)?;

    if mandate.organisation_id != organisation_id {
        return Err(Refusal::OtherOrganisation.into());
    }
    let Some(aidant) = aidant else {
        return Err(Refusal::AidantNotMember.into());
    };
    if !aidant.active {
        return Err(Refusal::AidantInactive.into());
    }
    if membership.is_none() {
        return Err(Refusal::AidantNotMember.into());
    }
    if !organisation.active {
        return Err(Refusal::OrganisationInactive.into());
    }
    if organisation.mandates_bound_to_creator && mandate.created_by != aidant.id {
        return Err(Refusal::NotCreator.into());
    }
    if mandate.revoked_at.is_some() {
        return Err(Refusal::Revoked.into());
    }
    if !mandate.is_active(now) {
        return Err(Refusal::Expired.into());
    }
    if !mandate.covers(demarche, now) {
        return Err(Refusal::DemarcheNotCovered.into());
    }
    let consent_acr = serde_json::from_str::<serde_json::Value>(&consent)
        .ok()
        .and_then(|c| Level::named(c.get("acr")?.as_str()?));
    if let Some(min) = consent_at_least {
        if consent_acr.is_none_or(|a| a < min) {
            return Err(Refusal::ConsentLevel.into());
        }
    }

    let usager = usager_row.open(sealer)?;
    Ok(Grant {
        mandate_id: mandate.id,
        demarche,
        mandate_expires_at: mandate.expires_at,
        usager_id: usager.id,
        identity: usager.identity,
        aidant,
        organisation,
        consent_acr,
    })
}

impl Store {
    /// The aidant's choice: checks the mandate and journals `mandate_used` in one
    /// transaction. The journal entry is committed when this returns `Ok`; on a refusal
    /// nothing is written.
    pub fn record_use(&self, u: &Use, now: Timestamp) -> Result<Grant, UseError> {
        let sealer = self.sealer();
        let sealer = &*sealer;
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            let grant = check(conn, sealer, u.ask(), now)?;
            journal::append(
                conn,
                &NewJournalEntry {
                    action: JournalAction::MandateUsed.into(),
                    aidant_id: Some(grant.aidant.id.clone()),
                    organisation_id: Some(grant.organisation.id.clone()),
                    usager_id: Some(grant.usager_id.clone()),
                    mandate_id: Some(grant.mandate_id.clone()),
                    client_id: Some(u.client_id.clone()),
                    demarche: Some(grant.demarche),
                    detail: None,
                },
                now,
            )?;
            Ok(grant)
        })
    }

    /// The check of `record_use` without journaling: for a code whose use is journaled when
    /// its client redeems it (a silent `prompt=none` answer).
    pub fn check_use(&self, u: &Use, now: Timestamp) -> Result<Grant, UseError> {
        let mut conn = self.conn()?;
        check(&mut conn, &self.sealer(), u.ask(), now)
    }

    /// The same check for the token and userinfo endpoints: one query, no write.
    pub fn check_grant(
        &self,
        mandate_id: &str,
        aidant_id: &str,
        organisation_id: &str,
        demarche: Demarche,
        now: Timestamp,
    ) -> Result<Grant, UseError> {
        let mut conn = self.conn()?;
        let ask = Ask {
            mandate_id,
            aidant_id,
            organisation_id,
            demarche,
            consent_at_least: None,
        };
        check(&mut conn, &self.sealer(), ask, now)
    }
}
