//! Retention: journal entries older than the cutoff, mandates that ended before it and the
//! identities of usagers left without any mandate are deleted, in bounded transactions. Each
//! transaction appends a `journal_purged` entry (chained like any other) naming the last
//! deleted entry's `seq` and hash, so `verify_journal` still verifies what remains from its
//! new start, and a deletion without such a record is still reported as a gap.

use diesel::dsl::{exists, max, min, not};
use diesel::prelude::*;

use crate::error::StoreError;
use crate::journal::{self, JournalAction, NewJournalEntry};
use crate::schema::{journal as journal_table, mandates, usagers};
use crate::store::{Store, Timestamp};

/// What a purge deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub journal_entries: i64,
    pub mandates: i64,
    pub usagers: i64,
}

impl Purged {
    fn is_empty(&self) -> bool {
        self.journal_entries == 0 && self.mandates == 0 && self.usagers == 0
    }
}

/// The start of a `journal_purged` entry's detail: the last deleted entry.
pub(crate) fn purge_record(through_seq: i64, through_hash: &str) -> String {
    format!("through_seq={through_seq} through_hash={through_hash}")
}

impl Store {
    /// Deletes what is older than `cutoff` (see the module), `batch` rows of each kind per
    /// transaction, so writers wait one short transaction at most. Returns the totals.
    pub fn purge_before(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        batch: i64,
    ) -> Result<Purged, StoreError> {
        let batch = batch.max(1);
        let mut total = Purged::default();
        loop {
            let step = self.purge_step(cutoff, now, batch)?;
            if step.is_empty() {
                return Ok(total);
            }
            total.journal_entries += step.journal_entries;
            total.mandates += step.mandates;
            total.usagers += step.usagers;
        }
    }

    fn purge_step(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        batch: i64,
    ) -> Result<Purged, StoreError> {
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| {
            // Mandates that ended (expired or revoked) before the cutoff.
            let mut ended: Vec<String> = mandates::table
                .filter(mandates::expires_at.lt(cutoff))
                .select(mandates::id)
                .limit(batch)
                .load(conn)?;
            if (ended.len() as i64) < batch {
                let revoked: Vec<String> = mandates::table
                    .filter(mandates::revoked_at.lt(cutoff))
                    .filter(mandates::expires_at.ge(cutoff))
                    .select(mandates::id)
                    .limit(batch - ended.len() as i64)
                    .load(conn)?;
                ended.extend(revoked);
            }
            let mandates_deleted =
                diesel::delete(mandates::table.filter(mandates::id.eq_any(&ended)))
                    .execute(conn)?;

            // Usagers left without any mandate: their sealed identity goes too.
            let orphans: Vec<String> = usagers::table
                .filter(usagers::updated_at.lt(cutoff))
                .filter(not(exists(
                    mandates::table.filter(mandates::usager_id.eq(usagers::id)),
                )))
                .select(usagers::id)
                .limit(batch)
                .load(conn)?;
            let usagers_deleted =
                diesel::delete(usagers::table.filter(usagers::id.eq_any(&orphans)))
                    .execute(conn)?;

            // A prefix of the journal: entries before the first one at or after the cutoff,
            // never the newest (the purge record must chain onto a kept entry).
            let first: Option<i64> = journal_table::table
                .select(min(journal_table::seq))
                .first(conn)?;
            let last: Option<i64> = journal_table::table
                .select(max(journal_table::seq))
                .first(conn)?;
            let first_kept: Option<i64> = journal_table::table
                .filter(journal_table::at.ge(cutoff))
                .select(min(journal_table::seq))
                .first(conn)?;
            let mut record = None;
            let mut journal_deleted = 0;
            if let (Some(first), Some(last)) = (first, last) {
                let through = (first_kept.unwrap_or(last).min(last) - 1).min(first + batch - 1);
                if through >= first {
                    let hash: String = journal_table::table
                        .find(through)
                        .select(journal_table::hash)
                        .first(conn)?;
                    journal_deleted =
                        diesel::delete(journal_table::table.filter(journal_table::seq.le(through)))
                            .execute(conn)?;
                    record = Some(purge_record(through, &hash));
                }
            }

            let purged = Purged {
                journal_entries: journal_deleted as i64,
                mandates: mandates_deleted as i64,
                usagers: usagers_deleted as i64,
            };
            if !purged.is_empty() {
                let counts = format!("mandates={} usagers={}", purged.mandates, purged.usagers);
                journal::append(
                    conn,
                    &NewJournalEntry {
                        action: JournalAction::JournalPurged.into(),
                        detail: Some(match record {
                            Some(r) => format!("{r} {counts}"),
                            None => counts,
                        }),
                        ..Default::default()
                    },
                    now,
                )?;
            }
            Ok(purged)
        })
    }
}
