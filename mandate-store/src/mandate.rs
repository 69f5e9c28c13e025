//! Mandates: a usager's consent that an organisation's aidants act for them on some
//! démarches until a date. Creation and revocation are journaled in the same transaction as
//! the change; expiry is only a date, checked at every use (see `grant`).

use diesel::prelude::*;

use crate::aidant;
use crate::db::AnyConnection;
use crate::demarche::{self, Demarche};
use crate::error::StoreError;
use crate::identity::Identity;
use crate::journal::{self, JournalAction, NewJournalEntry};
use crate::schema::{mandates, organisations, usagers};
use crate::store::{Store, Timestamp};
use crate::usager::{self, Usager, UsagerRow};

/// A mandate given by a usager to an organisation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mandate {
    pub id: String,
    pub usager_id: String,
    pub organisation_id: String,
    /// The aidant who recorded it.
    pub created_by: String,
    /// Sorted, no duplicates, never empty.
    pub demarches: Vec<Demarche>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
}

impl Mandate {
    /// Usable at `at`: not revoked, not yet expired (`expires_at` is the first instant it no
    /// longer is).
    pub fn is_active(&self, at: Timestamp) -> bool {
        self.revoked_at.is_none() && at < self.expires_at
    }

    /// Usable at `at` for `d`.
    pub fn covers(&self, d: Demarche, at: Timestamp) -> bool {
        self.is_active(at) && self.demarches.contains(&d)
    }
}

/// A mandate to record. `id` is for imports: recording an id that exists returns the
/// existing mandate unchanged.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewMandate {
    pub id: Option<String>,
    pub usager_id: String,
    pub organisation_id: String,
    /// The aidant who created it with the usager.
    pub created_by: String,
    pub demarches: Vec<Demarche>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// Evidence of how and when the usager confirmed (stored as JSON, never shown in tokens).
    pub consent: serde_json::Value,
}

/// Who ends a mandate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Actor {
    /// An aidant (by id), who must be an active member of the mandate's organisation.
    Aidant(String),
    /// The usager (by id), who must be the one who gave it.
    Usager(String),
    /// An operator, through the CLI.
    Ops,
}

impl Actor {
    fn kind(&self) -> &'static str {
        match self {
            Actor::Aidant(_) => "aidant",
            Actor::Usager(_) => "usager",
            Actor::Ops => "ops",
        }
    }

    /// The journal entry of a change to `mandate` made by this actor.
    fn entry(&self, action: JournalAction, mandate: &Mandate) -> NewJournalEntry {
        NewJournalEntry {
            action: action.into(),
            aidant_id: match self {
                Actor::Aidant(aidant_id) => Some(aidant_id.clone()),
                _ => None,
            },
            organisation_id: Some(mandate.organisation_id.clone()),
            usager_id: Some(mandate.usager_id.clone()),
            mandate_id: Some(mandate.id.clone()),
            client_id: None,
            demarche: None,
            detail: Some(format!("by={}", self.kind())),
        }
    }
}

/// A mandate the interaction page may offer: active, of the aidant's organisation, with the
/// démarches the request allows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsableMandate {
    pub mandate_id: String,
    pub usager_id: String,
    pub identity: Identity,
    /// Already narrowed to the démarches the request allows; never empty.
    pub demarches: Vec<Demarche>,
    pub expires_at: Timestamp,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = mandates)]
pub(crate) struct MandateRow {
    pub id: String,
    pub usager_id: String,
    pub organisation_id: String,
    pub created_by: String,
    pub demarches: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
}

impl TryFrom<MandateRow> for Mandate {
    type Error = StoreError;

    fn try_from(row: MandateRow) -> Result<Self, StoreError> {
        Ok(Mandate {
            demarches: demarche::from_column(&row.demarches)?,
            id: row.id,
            usager_id: row.usager_id,
            organisation_id: row.organisation_id,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            revoked_reason: row.revoked_reason,
        })
    }
}

fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<Mandate>, StoreError> {
    mandates::table
        .find(id)
        .select(MandateRow::as_select())
        .first(conn)
        .optional()?
        .map(Mandate::try_from)
        .transpose()
}

fn not_found(what: &'static str, key: &str) -> StoreError {
    StoreError::NotFound {
        what,
        key: key.to_owned(),
    }
}

/// A usager giving a mandate, as confirmed on the recap page after their FranceConnect login.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GiveMandate {
    pub franceconnect_sub: String,
    pub identity: Identity,
    pub organisation_id: String,
    /// The aidant who recorded it.
    pub aidant_id: String,
    pub demarches: Vec<Demarche>,
    pub expires_at: Timestamp,
    /// Evidence of consent: when and how the usager confirmed (acr, auth_time, hashed sub).
    pub consent: serde_json::Value,
}

/// What `give_mandate` did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GivenMandate {
    pub usager: Usager,
    pub mandate: Mandate,
    /// The usager's earlier mandates to the same organisation, ended by this one.
    pub replaced: Vec<String>,
}

/// Inserts a mandate and journals `mandate_created`; runs inside the caller's write
/// transaction. Idempotent on `m.id`.
fn insert_in(
    conn: &mut AnyConnection,
    m: &NewMandate,
    by: Option<&str>,
    consent: &str,
    demarches_column: &str,
    now: Timestamp,
) -> Result<Mandate, StoreError> {
    if let Some(id) = &m.id {
        if let Some(existing) = by_id(conn, id)? {
            return Ok(existing);
        }
    }
    if usager::by_id(conn, &m.usager_id)?.is_none() {
        return Err(not_found("usager", &m.usager_id));
    }
    let organisation_known = organisations::table
        .find(&m.organisation_id)
        .select(organisations::id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if !organisation_known {
        return Err(not_found("organisation", &m.organisation_id));
    }
    if aidant::by_id(conn, &m.created_by)?.is_none() {
        return Err(not_found("aidant", &m.created_by));
    }

    let id =
        m.id.clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let revoked_reason = m.revoked_at.map(|_| "revoked before import".to_owned());
    diesel::insert_into(mandates::table)
        .values((
            mandates::id.eq(&id),
            mandates::usager_id.eq(&m.usager_id),
            mandates::organisation_id.eq(&m.organisation_id),
            mandates::created_by.eq(&m.created_by),
            mandates::demarches.eq(&demarches_column),
            mandates::created_at.eq(m.created_at),
            mandates::expires_at.eq(m.expires_at),
            mandates::revoked_at.eq(m.revoked_at),
            mandates::revoked_reason.eq(&revoked_reason),
            mandates::consent.eq(&consent),
        ))
        .execute(conn)?;

    journal::append(
        conn,
        &NewJournalEntry {
            action: JournalAction::MandateCreated.into(),
            aidant_id: by.map(str::to_owned),
            organisation_id: Some(m.organisation_id.clone()),
            usager_id: Some(m.usager_id.clone()),
            mandate_id: Some(id.clone()),
            client_id: None,
            demarche: None,
            detail: Some(format!(
                "by={} demarches={} expires_at={}",
                if by.is_some() { "aidant" } else { "ops" },
                demarches_column,
                m.expires_at
            )),
        },
        now,
    )?;

    Ok(Mandate {
        id,
        usager_id: m.usager_id.clone(),
        organisation_id: m.organisation_id.clone(),
        created_by: m.created_by.clone(),
        demarches: demarche::normalise(&m.demarches),
        created_at: m.created_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        revoked_reason,
    })
}

/// Ends a mandate and journals `mandate_revoked`, inside the caller's write transaction.
/// Whether `by` may end the mandate, or part of it: an active aidant of its organisation,
/// the usager who gave it, or ops.
fn may_change(conn: &mut AnyConnection, mandate: &Mandate, by: &Actor) -> Result<(), StoreError> {
    match by {
        Actor::Aidant(aidant_id) => {
            let active = aidant::by_id(conn, aidant_id)?.is_some_and(|a| a.active);
            if !active || !aidant::is_member(conn, aidant_id, &mandate.organisation_id)? {
                return Err(StoreError::NotAllowed(
                    "only an active aidant of the mandate's organisation can revoke it".to_owned(),
                ));
            }
        }
        Actor::Usager(usager_id) => {
            if *usager_id != mandate.usager_id {
                return Err(StoreError::NotAllowed(
                    "a usager can only revoke their own mandates".to_owned(),
                ));
            }
        }
        Actor::Ops => {}
    }
    Ok(())
}

/// One démarche ends; the rest of the mandate runs on unchanged. Ending its last démarche
/// ends the mandate.
fn end_demarche_in(
    conn: &mut AnyConnection,
    id: &str,
    d: Demarche,
    by: &Actor,
    now: Timestamp,
) -> Result<Mandate, StoreError> {
    let mandate = by_id(conn, id)?.ok_or_else(|| not_found("mandate", id))?;
    may_change(conn, &mandate, by)?;
    if !mandate.is_active(now) {
        return Err(StoreError::Invalid("the mandate has ended".to_owned()));
    }
    if !mandate.demarches.contains(&d) {
        return Err(StoreError::Invalid(format!(
            "the mandate does not cover {}",
            d.as_str()
        )));
    }
    let rest: Vec<Demarche> = mandate
        .demarches
        .iter()
        .copied()
        .filter(|x| *x != d)
        .collect();
    if rest.is_empty() {
        return revoke_in(conn, id, "its last démarche ended", by, now);
    }
    diesel::update(mandates::table.find(id))
        .set(mandates::demarches.eq(demarche::to_column(&rest)))
        .execute(conn)?;
    journal::append(
        conn,
        &NewJournalEntry {
            demarche: Some(d),
            ..by.entry(JournalAction::DemarcheEnded, &mandate)
        },
        now,
    )?;
    Ok(Mandate {
        demarches: rest,
        ..mandate
    })
}

fn revoke_in(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<Mandate, StoreError> {
    let mandate = by_id(conn, id)?.ok_or_else(|| not_found("mandate", id))?;
    may_change(conn, &mandate, by)?;
    if mandate.revoked_at.is_some() {
        return Ok(mandate);
    }

    diesel::update(mandates::table.find(id))
        .set((
            mandates::revoked_at.eq(Some(now)),
            mandates::revoked_reason.eq(Some(reason)),
        ))
        .execute(conn)?;
    // The free-text reason stays on the mandate row: it may name people, and the
    // journal must not hold personal data.
    journal::append(
        conn,
        &by.entry(JournalAction::MandateRevoked, &mandate),
        now,
    )?;

    Ok(Mandate {
        revoked_at: Some(now),
        revoked_reason: Some(reason.to_owned()),
        ..mandate
    })
}

impl Store {
    /// Records a mandate and, in the same transaction, journals `mandate_created`. `by` is
    /// the aidant recording it (`None` for an ops import). Idempotent on `m.id`.
    pub fn create_mandate(
        &self,
        m: &NewMandate,
        by: Option<&str>,
        now: Timestamp,
    ) -> Result<Mandate, StoreError> {
        if m.demarches.is_empty() {
            return Err(StoreError::Invalid(
                "a mandate covers at least one démarche".to_owned(),
            ));
        }
        if m.expires_at <= m.created_at {
            return Err(StoreError::Invalid(
                "a mandate must expire after it is created".to_owned(),
            ));
        }
        if m.id.as_deref() == Some("") {
            return Err(StoreError::Invalid("empty mandate id".to_owned()));
        }
        let consent = serde_json::to_string(&m.consent)
            .map_err(|e| StoreError::Invalid(format!("consent is not JSON: {e}")))?;
        let demarches_column = demarche::to_column(&m.demarches);

        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            insert_in(conn, m, by, &consent, &demarches_column, now)
        })
    }

    /// Ends a mandate now and journals `mandate_revoked` in the same transaction. An aidant
    /// must be an active member of the mandate's organisation, a usager its giver. Revoking
    /// an already revoked mandate returns it unchanged and journals nothing.
    pub fn revoke_mandate(
        &self,
        id: &str,
        reason: &str,
        by: Actor,
        now: Timestamp,
    ) -> Result<Mandate, StoreError> {
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| revoke_in(conn, id, reason, &by, now))
    }

    /// Ends one démarche of a running mandate and journals `demarche_ended` in the same
    /// transaction (the last one: the mandate ends, `mandate_revoked`). Who may: as
    /// `revoke_mandate`.
    pub fn end_demarche(
        &self,
        id: &str,
        demarche: Demarche,
        by: Actor,
        now: Timestamp,
    ) -> Result<Mandate, StoreError> {
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            end_demarche_in(conn, id, demarche, &by, now)
        })
    }

    /// The usager gives a mandate, in one transaction: the usager is found by FranceConnect
    /// subject or created (identity sealed), their active mandates to the same organisation
    /// end (a new mandate replaces them explicitly, each end journaled), the new mandate is
    /// stored with its consent evidence and journaled. The recording aidant must be an
    /// active member of an active organisation.
    pub fn give_mandate(
        &self,
        g: &GiveMandate,
        now: Timestamp,
    ) -> Result<GivenMandate, StoreError> {
        if g.demarches.is_empty() {
            return Err(StoreError::Invalid(
                "a mandate covers at least one démarche".to_owned(),
            ));
        }
        if g.expires_at <= now {
            return Err(StoreError::Invalid(
                "a mandate must expire after it is given".to_owned(),
            ));
        }
        let sealer = self.sealer();
        let subject_hash = sealer.subject_hash(&g.franceconnect_sub);
        let consent = serde_json::to_string(&g.consent)
            .map_err(|e| StoreError::Invalid(format!("consent is not JSON: {e}")))?;
        let demarches_column = demarche::to_column(&g.demarches);
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            let allowed = aidant::by_id(conn, &g.aidant_id)?.is_some_and(|a| a.active)
                && aidant::is_member(conn, &g.aidant_id, &g.organisation_id)?
                && organisations::table
                    .find(&g.organisation_id)
                    .select(organisations::active)
                    .first::<bool>(conn)
                    .optional()?
                    .unwrap_or(false);
            if !allowed {
                return Err(StoreError::NotAllowed(
                    "only an active aidant of an active organisation records a mandate".to_owned(),
                ));
            }
            let usager = usager::upsert_in(conn, &sealer, None, &subject_hash, &g.identity, now)?;
            let previous: Vec<String> = mandates::table
                .filter(mandates::usager_id.eq(&usager.id))
                .filter(mandates::organisation_id.eq(&g.organisation_id))
                .filter(mandates::revoked_at.is_null())
                .filter(mandates::expires_at.gt(now))
                .select(mandates::id)
                .load(conn)?;
            let by = Actor::Aidant(g.aidant_id.clone());
            for id in &previous {
                revoke_in(conn, id, "replaced by a new mandate", &by, now)?;
            }
            let mandate = insert_in(
                conn,
                &NewMandate {
                    id: None,
                    usager_id: usager.id.clone(),
                    organisation_id: g.organisation_id.clone(),
                    created_by: g.aidant_id.clone(),
                    demarches: g.demarches.clone(),
                    created_at: now,
                    expires_at: g.expires_at,
                    revoked_at: None,
                    consent: g.consent.clone(),
                },
                Some(&g.aidant_id),
                &consent,
                &demarches_column,
                now,
            )?;
            Ok(GivenMandate {
                usager,
                mandate,
                replaced: previous,
            })
        })
    }

    pub fn mandate(&self, id: &str) -> Result<Option<Mandate>, StoreError> {
        let mut conn = self.conn()?;
        by_id(&mut conn, id)
    }

    /// Every mandate a usager gave, newest first (the usager's own space).
    pub fn mandates_of_usager(&self, usager_id: &str) -> Result<Vec<Mandate>, StoreError> {
        let mut conn = self.conn()?;
        mandates::table
            .filter(mandates::usager_id.eq(usager_id))
            .order((mandates::created_at.desc(), mandates::id.asc()))
            .select(MandateRow::as_select())
            .load(&mut conn)?
            .into_iter()
            .map(Mandate::try_from)
            .collect()
    }

    /// The interaction page's list, in one query: the organisation's mandates active at
    /// `now` that cover at least one démarche of `allowed`, with the usager's identity,
    /// ordered by family name then given name. Nothing is listed for an inactive
    /// organisation.
    pub fn usable_mandates(
        &self,
        organisation_id: &str,
        aidant_id: &str,
        allowed: &[Demarche],
        now: Timestamp,
    ) -> Result<Vec<UsableMandate>, StoreError> {
        if allowed.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        let rows: Vec<(MandateRow, UsagerRow, bool)> = mandates::table
            .inner_join(usagers::table)
            .inner_join(organisations::table)
            .filter(mandates::organisation_id.eq(organisation_id))
            .filter(mandates::revoked_at.is_null())
            .filter(mandates::expires_at.gt(now))
            .filter(organisations::active.eq(true))
            .select((
                MandateRow::as_select(),
                UsagerRow::as_select(),
                organisations::mandates_bound_to_creator,
            ))
            .load(&mut conn)?;

        let sealer = self.sealer();
        let sealer = &*sealer;
        let mut usable = Vec::new();
        for (mandate_row, usager_row, bound_to_creator) in rows {
            let mandate = Mandate::try_from(mandate_row)?;
            if bound_to_creator && mandate.created_by != aidant_id {
                continue;
            }
            let demarches: Vec<Demarche> = mandate
                .demarches
                .iter()
                .copied()
                .filter(|d| allowed.contains(d))
                .collect();
            if demarches.is_empty() {
                continue;
            }
            let usager = usager_row.open(sealer)?;
            usable.push(UsableMandate {
                mandate_id: mandate.id,
                usager_id: usager.id,
                identity: usager.identity,
                demarches,
                expires_at: mandate.expires_at,
            });
        }
        // Names are sealed, so the database cannot sort by them.
        usable.sort_by_cached_key(|u| {
            (
                u.identity.family_name.to_lowercase(),
                u.identity.given_name.to_lowercase(),
                u.mandate_id.clone(),
            )
        });
        Ok(usable)
    }
}
