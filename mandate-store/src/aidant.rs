//! Aidants: professionals known by their upstream identity provider's (issuer, subject), and
//! their membership of organisations. The store keeps no credential of theirs: login happens
//! at their own IdP, and this module only answers "who is this, and for which structures".

use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::error::StoreError;
use crate::organisation::{self, Organisation};
use crate::schema::{aidants, memberships, organisations};
use crate::store::{Store, Timestamp};

/// A professional acting for usagers.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Queryable, Selectable,
)]
#[diesel(table_name = aidants)]
pub struct Aidant {
    pub id: String,
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub active: bool,
}

impl Aidant {
    /// "Abdel KARIM", as pages, tokens' readers and the journal show an aidant.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// Provisioning input, keyed by (issuer, subject). `organisation_sirets` replaces the
/// aidant's memberships.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewAidant {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub active: bool,
    pub organisation_sirets: Vec<String>,
}

/// What login needs: the aidant and the active organisations they belong to, by name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AidantLogin {
    pub aidant: Aidant,
    pub organisations: Vec<Organisation>,
}

pub(crate) fn by_subject(
    conn: &mut AnyConnection,
    issuer: &str,
    subject: &str,
) -> Result<Option<Aidant>, diesel::result::Error> {
    aidants::table
        .filter(aidants::issuer.eq(issuer))
        .filter(aidants::subject.eq(subject))
        .select(Aidant::as_select())
        .first(conn)
        .optional()
}

pub(crate) fn by_id(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<Aidant>, diesel::result::Error> {
    aidants::table
        .find(id)
        .select(Aidant::as_select())
        .first(conn)
        .optional()
}

pub(crate) fn is_member(
    conn: &mut AnyConnection,
    aidant_id: &str,
    organisation_id: &str,
) -> Result<bool, diesel::result::Error> {
    let found = memberships::table
        .find((aidant_id, organisation_id))
        .select(memberships::aidant_id)
        .first::<String>(conn)
        .optional()?;
    Ok(found.is_some())
}

impl Store {
    /// Creates or updates the aidant with this (issuer, subject) and replaces their
    /// memberships. An unknown SIRET fails the whole call (`NotFound`), changing nothing.
    pub fn upsert_aidant(&self, a: &NewAidant, now: Timestamp) -> Result<Aidant, StoreError> {
        if a.issuer.is_empty() || a.subject.is_empty() {
            return Err(StoreError::Invalid(
                "an aidant needs an issuer and a subject".to_owned(),
            ));
        }
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            let mut organisation_ids = Vec::with_capacity(a.organisation_sirets.len());
            for siret in &a.organisation_sirets {
                let org =
                    organisation::by_siret(conn, siret)?.ok_or_else(|| StoreError::NotFound {
                        what: "organisation",
                        key: format!("siret {siret}"),
                    })?;
                if !organisation_ids.contains(&org.id) {
                    organisation_ids.push(org.id);
                }
            }

            let id = match by_subject(conn, &a.issuer, &a.subject)? {
                Some(existing) => {
                    diesel::update(aidants::table.find(&existing.id))
                        .set((
                            aidants::email.eq(&a.email),
                            aidants::given_name.eq(&a.given_name),
                            aidants::family_name.eq(&a.family_name),
                            aidants::active.eq(a.active),
                            aidants::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    existing.id
                }
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    diesel::insert_into(aidants::table)
                        .values((
                            aidants::id.eq(&id),
                            aidants::issuer.eq(&a.issuer),
                            aidants::subject.eq(&a.subject),
                            aidants::email.eq(&a.email),
                            aidants::given_name.eq(&a.given_name),
                            aidants::family_name.eq(&a.family_name),
                            aidants::active.eq(a.active),
                            aidants::created_at.eq(now),
                            aidants::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    id
                }
            };

            diesel::delete(memberships::table.filter(memberships::aidant_id.eq(&id)))
                .execute(conn)?;
            for organisation_id in &organisation_ids {
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::aidant_id.eq(&id),
                        memberships::organisation_id.eq(organisation_id),
                        memberships::created_at.eq(now),
                    ))
                    .execute(conn)?;
            }

            Ok(Aidant {
                id,
                issuer: a.issuer.clone(),
                subject: a.subject.clone(),
                email: a.email.clone(),
                given_name: a.given_name.clone(),
                family_name: a.family_name.clone(),
                active: a.active,
            })
        })
    }

    pub fn aidant_by_subject(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<Aidant>, StoreError> {
        let mut conn = self.conn()?;
        Ok(by_subject(&mut conn, issuer, subject)?)
    }

    pub fn aidant(&self, id: &str) -> Result<Option<Aidant>, StoreError> {
        let mut conn = self.conn()?;
        Ok(by_id(&mut conn, id)?)
    }

    /// The aidant behind an upstream login, with their *active* organisations ordered by
    /// name. An inactive aidant is still returned (with `active == false`): refusing them
    /// with a clear page is the caller's job.
    pub fn find_aidant_login(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<AidantLogin>, StoreError> {
        let mut conn = self.conn()?;
        let Some(aidant) = by_subject(&mut conn, issuer, subject)? else {
            return Ok(None);
        };
        let organisations = memberships::table
            .inner_join(organisations::table)
            .filter(memberships::aidant_id.eq(&aidant.id))
            .filter(organisations::active.eq(true))
            .order((organisations::name.asc(), organisations::id.asc()))
            .select(Organisation::as_select())
            .load(&mut conn)?;
        Ok(Some(AidantLogin {
            aidant,
            organisations,
        }))
    }

    /// Whether the aidant may act for the organisation now: both active, and a member.
    pub fn aidant_may_act(
        &self,
        aidant_id: &str,
        organisation_id: &str,
    ) -> Result<bool, StoreError> {
        // One query: the membership by primary key, joined to both parties.
        let mut conn = self.conn()?;
        let found = memberships::table
            .find((aidant_id, organisation_id))
            .inner_join(organisations::table)
            .inner_join(aidants::table.on(aidants::id.eq(memberships::aidant_id)))
            .select((aidants::active, organisations::active))
            .first::<(bool, bool)>(&mut conn)
            .optional()?;
        Ok(found.is_some_and(|(aidant, organisation)| aidant && organisation))
    }

    /// The aidants of an organisation (active or not), by family name.
    pub fn aidants_of(&self, organisation_id: &str) -> Result<Vec<Aidant>, StoreError> {
        let mut conn = self.conn()?;
        Ok(aidants::table
            .inner_join(memberships::table.on(memberships::aidant_id.eq(aidants::id)))
            .filter(memberships::organisation_id.eq(organisation_id))
            .order((
                aidants::family_name.asc(),
                aidants::given_name.asc(),
                aidants::id.asc(),
            ))
            .select(Aidant::as_select())
            .load(&mut conn)?)
    }

    /// Every aidant, by family name, with the SIRETs of their organisations.
    pub fn aidants(&self) -> Result<Vec<(Aidant, Vec<String>)>, StoreError> {
        let mut conn = self.conn()?;
        let all: Vec<Aidant> = aidants::table
            .order((
                aidants::family_name.asc(),
                aidants::given_name.asc(),
                aidants::id.asc(),
            ))
            .select(Aidant::as_select())
            .load(&mut conn)?;
        let links: Vec<(String, String)> = memberships::table
            .inner_join(organisations::table)
            .select((memberships::aidant_id, organisations::siret))
            .order(organisations::siret.asc())
            .load(&mut conn)?;
        Ok(all
            .into_iter()
            .map(|a| {
                let sirets = links
                    .iter()
                    .filter(|(id, _)| *id == a.id)
                    .map(|(_, siret)| siret.clone())
                    .collect();
                (a, sirets)
            })
            .collect())
    }

    /// Enables or disables an aidant, keeping their memberships: a disabled aidant can
    /// neither log in nor use a mandate.
    pub fn set_aidant_active(
        &self,
        issuer: &str,
        subject: &str,
        active: bool,
        now: Timestamp,
    ) -> Result<Aidant, StoreError> {
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            let mut aidant =
                by_subject(conn, issuer, subject)?.ok_or_else(|| StoreError::NotFound {
                    what: "aidant",
                    key: format!("subject {subject}"),
                })?;
            diesel::update(aidants::table.find(&aidant.id))
                .set((aidants::active.eq(active), aidants::updated_at.eq(now)))
                .execute(conn)?;
            aidant.active = active;
            Ok(aidant)
        })
    }
}
