//! Usagers: the people aidants act for. Found again by a keyed hash of their FranceConnect
//! subject; their identity is stored only sealed (see `identity`). No credential, no
//! FranceConnect token, no clear name anywhere in the database.

use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::error::StoreError;
use crate::identity::{Identity, Sealer};
use crate::schema::usagers;
use crate::store::{Store, Timestamp};

/// A person who can give mandates.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usager {
    pub id: String,
    pub identity: Identity,
    pub created_at: Timestamp,
}

/// The stored row: identity still sealed.
#[derive(Queryable, Selectable)]
#[diesel(table_name = usagers)]
pub(crate) struct UsagerRow {
    pub id: String,
    pub identity_kid: String,
    pub identity_sealed: String,
    pub created_at: Timestamp,
}

impl UsagerRow {
    pub(crate) fn open(self, sealer: &Sealer) -> Result<Usager, StoreError> {
        let identity = sealer.open(&self.id, &self.identity_kid, &self.identity_sealed)?;
        Ok(Usager {
            id: self.id,
            identity,
            created_at: self.created_at,
        })
    }
}

fn by_subject_hash(
    conn: &mut AnyConnection,
    subject_hash: &str,
) -> Result<Option<UsagerRow>, diesel::result::Error> {
    usagers::table
        .filter(usagers::subject_hash.eq(subject_hash))
        .select(UsagerRow::as_select())
        .first(conn)
        .optional()
}

pub(crate) fn by_id(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<UsagerRow>, diesel::result::Error> {
    usagers::table
        .find(id)
        .select(UsagerRow::as_select())
        .first(conn)
        .optional()
}

/// Finds the usager by subject hash (updating and re-sealing their identity) or creates
/// them; runs inside the caller's write transaction.
pub(crate) fn upsert_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: Option<&str>,
    subject_hash: &str,
    identity: &Identity,
    now: Timestamp,
) -> Result<Usager, StoreError> {
    if let Some(existing) = by_subject_hash(conn, subject_hash)? {
        let (kid, sealed) = sealer.seal(&existing.id, identity)?;
        diesel::update(usagers::table.find(&existing.id))
            .set((
                usagers::identity_kid.eq(&kid),
                usagers::identity_sealed.eq(&sealed),
                usagers::updated_at.eq(now),
            ))
            .execute(conn)?;
        return Ok(Usager {
            id: existing.id,
            identity: identity.clone(),
            created_at: existing.created_at,
        });
    }
    let id = match id {
        Some(given) => {
            if given.is_empty() {
                return Err(StoreError::Invalid("empty usager id".to_owned()));
            }
            if by_id(conn, given)?.is_some() {
                return Err(StoreError::Invalid(format!(
                    "usager id {given} already belongs to another FranceConnect subject"
                )));
            }
            given.to_owned()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let (kid, sealed) = sealer.seal(&id, identity)?;
    diesel::insert_into(usagers::table)
        .values((
            usagers::id.eq(&id),
            usagers::subject_hash.eq(subject_hash),
            usagers::identity_kid.eq(&kid),
            usagers::identity_sealed.eq(&sealed),
            usagers::created_at.eq(now),
            usagers::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(Usager {
        id,
        identity: identity.clone(),
        created_at: now,
    })
}

impl Store {
    /// Records the identity FranceConnect returned. The same FranceConnect subject is always
    /// the same usager (its identity is updated and re-sealed with the active key); a new one
    /// gets `id` if given (imports) or a fresh UUID.
    pub fn upsert_usager(
        &self,
        id: Option<&str>,
        franceconnect_sub: &str,
        identity: &Identity,
        now: Timestamp,
    ) -> Result<Usager, StoreError> {
        if franceconnect_sub.is_empty() {
            return Err(StoreError::Invalid(
                "a usager needs a FranceConnect subject".to_owned(),
            ));
        }
        let sealer = self.sealer();
        let sealer = &*sealer;
        let subject_hash = sealer.subject_hash(franceconnect_sub);
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            upsert_in(conn, sealer, id, &subject_hash, identity, now)
        })
    }

    pub fn usager(&self, id: &str) -> Result<Option<Usager>, StoreError> {
        let mut conn = self.conn()?;
        by_id(&mut conn, id)?
            .map(|row| row.open(&self.sealer()))
            .transpose()
    }

    /// The usager behind a FranceConnect login, if they ever gave a mandate.
    pub fn usager_by_franceconnect_sub(
        &self,
        franceconnect_sub: &str,
    ) -> Result<Option<Usager>, StoreError> {
        let subject_hash = self.sealer().subject_hash(franceconnect_sub);
        let mut conn = self.conn()?;
        by_subject_hash(&mut conn, &subject_hash)?
            .map(|row| row.open(&self.sealer()))
            .transpose()
    }

    /// Re-seals up to `batch` usager identities still sealed with an older data key, each
    /// under the active key, and returns how many it did (0: all are on the active key).
    /// Rows change one by one in short transactions, so nodes keep serving meanwhile; every
    /// node must already know the active key (see `idp-proxy keys rotate-data-key`).
    pub fn reseal_usagers(&self, batch: i64) -> Result<usize, StoreError> {
        let sealer = self.sealer();
        let active = sealer.active_kid().to_owned();
        let mut conn = self.conn()?;
        let stale: Vec<UsagerRow> = usagers::table
            .filter(usagers::identity_kid.ne(&active))
            .select(UsagerRow::as_select())
            .order(usagers::id.asc())
            .limit(batch.max(1))
            .load(&mut conn)?;
        let count = stale.len();
        for row in stale {
            let identity = sealer.open(&row.id, &row.identity_kid, &row.identity_sealed)?;
            let (kid, sealed) = sealer.seal(&row.id, &identity)?;
            self.write_transaction(&mut conn, |conn| {
                // Only if nobody re-sealed it meanwhile (an identity update by a login).
                diesel::update(
                    usagers::table
                        .find(&row.id)
                        .filter(usagers::identity_kid.eq(&row.identity_kid)),
                )
                .set((
                    usagers::identity_kid.eq(&kid),
                    usagers::identity_sealed.eq(&sealed),
                ))
                .execute(conn)
                .map_err(StoreError::from)
            })?;
        }
        Ok(count)
    }

    /// How many identities each data key seals: what a rotation has left to do.
    pub fn data_key_usage(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(usagers::table
            .group_by(usagers::identity_kid)
            .select((usagers::identity_kid, diesel::dsl::count_star()))
            .order(usagers::identity_kid.asc())
            .load(&mut conn)?)
    }
}
