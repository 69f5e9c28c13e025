//! Organisations ("structures"): the holders of mandates, identified by SIRET. Provisioned
//! by ops; an inactive organisation's aidants can no longer act for anyone.

use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::error::StoreError;
use crate::schema::organisations;
use crate::store::{Store, Timestamp};

/// An organisation (structure) that holds mandates.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Queryable, Selectable,
)]
#[diesel(table_name = organisations)]
pub struct Organisation {
    pub id: String,
    pub siret: String,
    pub name: String,
    pub active: bool,
    /// Only the aidant who created a mandate may use it (default: any aidant of the
    /// organisation).
    pub mandates_bound_to_creator: bool,
}

pub(crate) fn by_siret(
    conn: &mut AnyConnection,
    siret: &str,
) -> Result<Option<Organisation>, diesel::result::Error> {
    organisations::table
        .filter(organisations::siret.eq(siret))
        .select(Organisation::as_select())
        .first(conn)
        .optional()
}

impl Store {
    /// Creates or updates the organisation with this SIRET (name and active flag).
    pub fn upsert_organisation(
        &self,
        siret: &str,
        name: &str,
        active: bool,
        now: Timestamp,
    ) -> Result<Organisation, StoreError> {
        if siret.trim().is_empty() || name.trim().is_empty() {
            return Err(StoreError::Invalid(
                "an organisation needs a SIRET and a name".to_owned(),
            ));
        }
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            let mut bound = false;
            let id = match by_siret(conn, siret)? {
                Some(existing) => {
                    bound = existing.mandates_bound_to_creator;
                    diesel::update(organisations::table.find(&existing.id))
                        .set((
                            organisations::name.eq(name),
                            organisations::active.eq(active),
                            organisations::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    existing.id
                }
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    diesel::insert_into(organisations::table)
                        .values((
                            organisations::id.eq(&id),
                            organisations::siret.eq(siret),
                            organisations::name.eq(name),
                            organisations::active.eq(active),
                            organisations::created_at.eq(now),
                            organisations::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    id
                }
            };
            Ok(Organisation {
                id,
                siret: siret.to_owned(),
                name: name.to_owned(),
                active,
                mandates_bound_to_creator: bound,
            })
        })
    }

    pub fn organisation_by_siret(&self, siret: &str) -> Result<Option<Organisation>, StoreError> {
        let mut conn = self.conn()?;
        Ok(by_siret(&mut conn, siret)?)
    }

    pub fn organisation(&self, id: &str) -> Result<Option<Organisation>, StoreError> {
        let mut conn = self.conn()?;
        Ok(organisations::table
            .find(id)
            .select(Organisation::as_select())
            .first(&mut conn)
            .optional()?)
    }

    /// Every organisation, by name.
    pub fn organisations(&self) -> Result<Vec<Organisation>, StoreError> {
        let mut conn = self.conn()?;
        Ok(organisations::table
            .order((organisations::name.asc(), organisations::siret.asc()))
            .select(Organisation::as_select())
            .load(&mut conn)?)
    }

    /// Enables or disables an organisation: a disabled one can use nothing.
    pub fn set_organisation_active(
        &self,
        siret: &str,
        active: bool,
        now: Timestamp,
    ) -> Result<Organisation, StoreError> {
        let existing = self
            .organisation_by_siret(siret)?
            .ok_or_else(|| StoreError::NotFound {
                what: "organisation",
                key: format!("siret {siret}"),
            })?;
        self.upsert_organisation(siret, &existing.name, active, now)
    }

    /// Binds this organisation's mandates to the aidant who created each (or unbinds them).
    pub fn set_mandates_bound_to_creator(
        &self,
        siret: &str,
        bound: bool,
        now: Timestamp,
    ) -> Result<Organisation, StoreError> {
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            let mut org = by_siret(conn, siret)?.ok_or_else(|| StoreError::NotFound {
                what: "organisation",
                key: format!("siret {siret}"),
            })?;
            diesel::update(organisations::table.find(&org.id))
                .set((
                    organisations::mandates_bound_to_creator.eq(bound),
                    organisations::updated_at.eq(now),
                ))
                .execute(conn)?;
            org.mandates_bound_to_creator = bound;
            Ok(org)
        })
    }
}
