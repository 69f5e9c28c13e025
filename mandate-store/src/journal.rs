//! The journal: who (aidant, organisation) did what (action, démarche, client) for whom
//! (usager, mandate) and when. Append-only and hash-chained: each entry's hash covers its
//! predecessor's, so editing or deleting a row breaks [`verify_chain`]. Appends are
//! serialised (see `db::write_transaction`) so `seq` has no gaps. `detail` must never hold
//! personal data: the journal outlives the usager rows it refers to.

use std::fmt;

use diesel::prelude::*;
use ring::digest;

use crate::db::AnyConnection;
use crate::demarche::Demarche;
use crate::error::StoreError;
use crate::identity::hex;
use crate::schema::journal;
use crate::store::{Store, Timestamp};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The actions the proxy journals. `NewJournalEntry::action` is a plain string so that new
/// actions need no schema or type change; these are the ones in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalAction {
    AidantLogin,
    UsagerLogin,
    MandateCreated,
    MandateUsed,
    MandateRevoked,
    /// The usager read the recap and did not give the mandate: nothing was stored but this.
    MandateRefused,
    /// One démarche of a running mandate ended; the rest runs on.
    DemarcheEnded,
    /// An authorization request ended without a code: the aidant went back to the client
    /// (cancelled, nobody to act for, unknown aidant, identity provider refusal or outage,
    /// expired request). `detail` names the reason; the aidant is set when known.
    AuthorizationAbandoned,
    /// Entries, mandates and identities past retention were deleted (see `retention`).
    JournalPurged,
}

impl JournalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalAction::AidantLogin => "aidant_login",
            JournalAction::UsagerLogin => "usager_login",
            JournalAction::MandateCreated => "mandate_created",
            JournalAction::MandateUsed => "mandate_used",
            JournalAction::MandateRevoked => "mandate_revoked",
            JournalAction::MandateRefused => "mandate_refused",
            JournalAction::DemarcheEnded => "demarche_ended",
            JournalAction::AuthorizationAbandoned => "authorization_abandoned",
            JournalAction::JournalPurged => "journal_purged",
        }
    }
}

impl fmt::Display for JournalAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<JournalAction> for String {
    fn from(action: JournalAction) -> String {
        action.as_str().to_owned()
    }
}

/// An entry to append. Ids only, never names; `detail` is free text without personal data.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewJournalEntry {
    pub action: String,
    pub aidant_id: Option<String>,
    pub organisation_id: Option<String>,
    pub usager_id: Option<String>,
    pub mandate_id: Option<String>,
    pub client_id: Option<String>,
    pub demarche: Option<Demarche>,
    pub detail: Option<String>,
}

/// A stored entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JournalEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub action: String,
    pub aidant_id: Option<String>,
    pub organisation_id: Option<String>,
    pub usager_id: Option<String>,
    pub mandate_id: Option<String>,
    pub client_id: Option<String>,
    pub demarche: Option<Demarche>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Which entries to read; every set field must match. Newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JournalFilter {
    pub organisation_id: Option<String>,
    pub aidant_id: Option<String>,
    pub usager_id: Option<String>,
    pub mandate_id: Option<String>,
    /// Inclusive.
    pub since: Option<Timestamp>,
    /// Inclusive.
    pub until: Option<Timestamp>,
    pub limit: Option<i64>,
}

/// What `verify_journal` checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct JournalReport {
    /// Where the journal starts: 1, or the entry after the last retention purge.
    pub first_seq: i64,
    pub entries: i64,
    pub last_seq: i64,
    /// Keep it elsewhere (a log, a ticket): it lets a later check see a truncated tail.
    pub last_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Break(ChainBreak),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where and how a chain stops verifying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("journal entry {seq}: {kind}")]
pub struct ChainBreak {
    pub seq: i64,
    pub kind: ChainBreakKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreakKind {
    /// The entry's content no longer matches its hash: it was edited.
    #[error("content does not match its hash (edited)")]
    HashMismatch,
    /// The entry does not point at its predecessor's hash: one was replaced or reordered.
    #[error("prev_hash does not match the previous entry's hash")]
    PrevHashMismatch,
    /// Sequence numbers jump: entries were deleted.
    #[error("sequence gap, expected {expected}")]
    Gap { expected: i64 },
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = journal)]
struct JournalRow {
    seq: i64,
    at: i64,
    action: String,
    aidant_id: Option<String>,
    organisation_id: Option<String>,
    usager_id: Option<String>,
    mandate_id: Option<String>,
    client_id: Option<String>,
    demarche: Option<String>,
    detail: Option<String>,
    prev_hash: String,
    hash: String,
}

impl TryFrom<JournalRow> for JournalEntry {
    type Error = StoreError;

    fn try_from(row: JournalRow) -> Result<Self, StoreError> {
        let demarche = row
            .demarche
            .map(|d| d.parse::<Demarche>())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("journal entry {}: {e}", row.seq)))?;
        Ok(JournalEntry {
            seq: row.seq,
            at: row.at,
            action: row.action,
            aidant_id: row.aidant_id,
            organisation_id: row.organisation_id,
            usager_id: row.usager_id,
            mandate_id: row.mandate_id,
            client_id: row.client_id,
            demarche,
            detail: row.detail,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }
}

/// The entry's hash: SHA-256 (lowercase hex) over `prev_hash`, a newline and a canonical
/// encoding of the content. Each text field is length-prefixed (`len:value`, `-` when absent)
/// so no two different entries encode alike.
fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: Timestamp,
    action: &str,
    ids: [Option<&str>; 5],
    demarche: Option<Demarche>,
    detail: Option<&str>,
) -> String {
    fn field(out: &mut String, value: Option<&str>) {
        match value {
            Some(v) => {
                out.push_str(&v.len().to_string());
                out.push(':');
                out.push_str(v);
            }
            None => out.push('-'),
        }
        out.push('|');
    }
    let mut canonical = format!("{prev_hash}\nv1|{seq}|{at}|");
    field(&mut canonical, Some(action));
    for id in ids {
        field(&mut canonical, id);
    }
    field(&mut canonical, demarche.map(Demarche::as_str));
    field(&mut canonical, detail);
    hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

impl JournalEntry {
    /// The hash this entry's content and `prev_hash` should have.
    pub fn computed_hash(&self) -> String {
        entry_hash(
            &self.prev_hash,
            self.seq,
            self.at,
            &self.action,
            [
                self.aidant_id.as_deref(),
                self.organisation_id.as_deref(),
                self.usager_id.as_deref(),
                self.mandate_id.as_deref(),
                self.client_id.as_deref(),
            ],
            self.demarche,
            self.detail.as_deref(),
        )
    }
}

/// Checks a run of consecutive entries, oldest first: each hash matches its content, each
/// entry links to the one before, no `seq` is missing. A run starting at `seq` 1 must start
/// from [`GENESIS_HASH`]; a run starting later is checked from its first entry on.
pub fn verify_chain(entries_oldest_first: &[JournalEntry]) -> Result<(), ChainBreak> {
    let mut previous: Option<&JournalEntry> = None;
    for entry in entries_oldest_first {
        let seq = entry.seq;
        match previous {
            None if seq == 1 && entry.prev_hash != GENESIS_HASH => {
                return Err(ChainBreak {
                    seq,
                    kind: ChainBreakKind::PrevHashMismatch,
                });
            }
            None => {}
            Some(prev) => {
                if seq != prev.seq + 1 {
                    return Err(ChainBreak {
                        seq,
                        kind: ChainBreakKind::Gap {
                            expected: prev.seq + 1,
                        },
                    });
                }
                if entry.prev_hash != prev.hash {
                    return Err(ChainBreak {
                        seq,
                        kind: ChainBreakKind::PrevHashMismatch,
                    });
                }
            }
        }
        if entry.computed_hash() != entry.hash {
            return Err(ChainBreak {
                seq,
                kind: ChainBreakKind::HashMismatch,
            });
        }
        previous = Some(entry);
    }
    Ok(())
}

/// Appends one entry. Must run inside `db::write_transaction`, which makes
/// "read the last entry, insert the next" atomic across writers.
pub(crate) fn append(
    conn: &mut AnyConnection,
    e: &NewJournalEntry,
    now: Timestamp,
) -> Result<JournalEntry, StoreError> {
    if e.action.is_empty() {
        return Err(StoreError::Invalid(
            "journal entry without action".to_owned(),
        ));
    }
    let last = journal::table
        .order(journal::seq.desc())
        .select((journal::seq, journal::hash))
        .first::<(i64, String)>(conn)
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let mut entry = JournalEntry {
        seq,
        at: now,
        action: e.action.clone(),
        aidant_id: e.aidant_id.clone(),
        organisation_id: e.organisation_id.clone(),
        usager_id: e.usager_id.clone(),
        mandate_id: e.mandate_id.clone(),
        client_id: e.client_id.clone(),
        demarche: e.demarche,
        detail: e.detail.clone(),
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry.computed_hash();
    diesel::insert_into(journal::table)
        .values((
            journal::seq.eq(entry.seq),
            journal::at.eq(entry.at),
            journal::action.eq(&entry.action),
            journal::aidant_id.eq(&entry.aidant_id),
            journal::organisation_id.eq(&entry.organisation_id),
            journal::usager_id.eq(&entry.usager_id),
            journal::mandate_id.eq(&entry.mandate_id),
            journal::client_id.eq(&entry.client_id),
            journal::demarche.eq(entry.demarche.map(Demarche::as_str)),
            journal::detail.eq(&entry.detail),
            journal::prev_hash.eq(&entry.prev_hash),
            journal::hash.eq(&entry.hash),
        ))
        .execute(conn)?;
    Ok(entry)
}

impl Store {
    /// Appends an entry on its own (e.g. `aidant_login`), at time `now`.
    pub fn journal_append(
        &self,
        e: &NewJournalEntry,
        now: Timestamp,
    ) -> Result<JournalEntry, StoreError> {
        let mut conn = self.conn()?;
        self.write_transaction(&mut conn, |conn| append(conn, e, now))
    }

    /// Entries matching `filter`, newest first.
    pub fn journal_entries(&self, filter: &JournalFilter) -> Result<Vec<JournalEntry>, StoreError> {
        let mut query = journal::table
            .select(JournalRow::as_select())
            .order(journal::seq.desc())
            .into_boxed();
        if let Some(id) = &filter.organisation_id {
            query = query.filter(journal::organisation_id.eq(id));
        }
        if let Some(id) = &filter.aidant_id {
            query = query.filter(journal::aidant_id.eq(id));
        }
        if let Some(id) = &filter.usager_id {
            query = query.filter(journal::usager_id.eq(id));
        }
        if let Some(id) = &filter.mandate_id {
            query = query.filter(journal::mandate_id.eq(id));
        }
        if let Some(since) = filter.since {
            query = query.filter(journal::at.ge(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(journal::at.le(until));
        }
        if let Some(limit) = filter.limit {
            query = query.limit(limit.max(0));
        }
        let mut conn = self.conn()?;
        query
            .load::<JournalRow>(&mut conn)?
            .into_iter()
            .map(JournalEntry::try_from)
            .collect()
    }

    /// Whether a `journal_purged` entry from `from_seq` on starts with `record`.
    fn journal_has_purge(&self, record: &str, from_seq: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let found = journal::table
            .filter(journal::action.eq(JournalAction::JournalPurged.as_str()))
            .filter(journal::seq.ge(from_seq))
            .filter(journal::detail.like(format!("{record} %")))
            .select(journal::seq)
            .first::<i64>(&mut conn)
            .optional()?;
        Ok(found.is_some())
    }

    /// Verifies the whole journal from its first entry, in batches: every hash matches its
    /// content, every entry links to the one before, no `seq` is missing, and the journal
    /// starts at `seq` 1 from the genesis hash, or right after a retention purge that a later
    /// (chained) `journal_purged` entry records with the last purged hash. Returns how far it verified; a truncated tail
    /// can only be seen against an anchor kept elsewhere (the returned last hash).
    pub fn verify_journal(&self) -> Result<JournalReport, VerifyError> {
        const BATCH: i64 = 10_000;
        let mut report = JournalReport {
            first_seq: 1,
            entries: 0,
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
        };
        loop {
            // Each batch after the first starts at the previous last entry, so the link
            // between two batches is verified like any other.
            let from = report.last_seq.max(1);
            let batch = self.journal_chain(from, BATCH)?;
            if report.last_seq == 0 {
                if let Some(first) = batch.first() {
                    // A journal starts at seq 1, or right after a recorded retention purge.
                    let purged = crate::retention::purge_record(first.seq - 1, &first.prev_hash);
                    if first.seq != 1 && !self.journal_has_purge(&purged, first.seq)? {
                        return Err(VerifyError::Break(ChainBreak {
                            seq: first.seq,
                            kind: ChainBreakKind::Gap { expected: 1 },
                        }));
                    }
                    report.first_seq = first.seq;
                }
            }
            verify_chain(&batch).map_err(VerifyError::Break)?;
            let new = batch.iter().filter(|e| e.seq > report.last_seq).count() as i64;
            if let Some(last) = batch.last() {
                report.last_seq = last.seq;
                report.last_hash = last.hash.clone();
            }
            report.entries += new;
            if (batch.len() as i64) < BATCH {
                return Ok(report);
            }
        }
    }

    /// Up to `limit` consecutive entries from `from_seq` on, oldest first: the input of
    /// [`verify_chain`], read in batches (start each batch at the previous batch's last
    /// `seq` so the link between batches is checked too).
    pub fn journal_chain(
        &self,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let mut conn = self.conn()?;
        journal::table
            .select(JournalRow::as_select())
            .filter(journal::seq.ge(from_seq))
            .order(journal::seq.asc())
            .limit(limit.max(0))
            .load::<JournalRow>(&mut conn)?
            .into_iter()
            .map(JournalEntry::try_from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<JournalEntry> {
        let mut out: Vec<JournalEntry> = Vec::new();
        for seq in 1..=n {
            let prev_hash = out
                .last()
                .map(|e| e.hash.clone())
                .unwrap_or_else(|| GENESIS_HASH.to_owned());
            let mut e = JournalEntry {
                seq,
                at: 1_700_000_000 + seq,
                action: "mandate_used".into(),
                aidant_id: Some("a".into()),
                organisation_id: Some("o".into()),
                usager_id: Some("u".into()),
                mandate_id: Some("m".into()),
                client_id: Some("c".into()),
                demarche: Some(Demarche::Argent),
                detail: None,
                prev_hash,
                hash: String::new(),
            };
            e.hash = e.computed_hash();
            out.push(e);
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(()));
        assert_eq!(verify_chain(&chain(5)[2..]), Ok(()));
        assert_eq!(verify_chain(&[]), Ok(()));
    }

    #[test]
    fn edited_entry_is_detected() {
        let mut entries = chain(4);
        entries[2].demarche = Some(Demarche::Social);
        let err = verify_chain(&entries).unwrap_err();
        assert_eq!(err.seq, 3);
        assert_eq!(err.kind, ChainBreakKind::HashMismatch);
    }

    #[test]
    fn rehashed_edit_breaks_the_next_link() {
        let mut entries = chain(4);
        entries[1].detail = Some("rewritten".into());
        entries[1].hash = entries[1].computed_hash();
        let err = verify_chain(&entries).unwrap_err();
        assert_eq!(
            err,
            ChainBreak {
                seq: 3,
                kind: ChainBreakKind::PrevHashMismatch
            }
        );
    }

    #[test]
    fn deleted_entry_is_a_gap() {
        let mut entries = chain(4);
        entries.remove(1);
        assert_eq!(
            verify_chain(&entries).unwrap_err().kind,
            ChainBreakKind::Gap { expected: 2 }
        );
    }

    #[test]
    fn first_entry_must_start_from_genesis() {
        let mut entries = chain(1);
        entries[0].prev_hash = "f".repeat(64);
        entries[0].hash = entries[0].computed_hash();
        assert_eq!(
            verify_chain(&entries).unwrap_err().kind,
            ChainBreakKind::PrevHashMismatch
        );
    }

    #[test]
    fn encoding_is_unambiguous() {
        let a = entry_hash(
            GENESIS_HASH,
            1,
            0,
            "x",
            [Some("a|b"), None, None, None, None],
            None,
            None,
        );
        let b = entry_hash(
            GENESIS_HASH,
            1,
            0,
            "x",
            [Some("a"), Some("b"), None, None, None],
            None,
            None,
        );
        let c = entry_hash(
            GENESIS_HASH,
            1,
            0,
            "x",
            [Some(""), None, None, None, None],
            None,
            None,
        );
        let d = entry_hash(GENESIS_HASH, 1, 0, "x", [None; 5], None, None);
        assert_ne!(a, b);
        assert_ne!(c, d);
    }

    #[test]
    fn action_names_are_snake_case() {
        assert_eq!(String::from(JournalAction::MandateUsed), "mandate_used");
        assert_eq!(
            serde_json::to_string(&JournalAction::AidantLogin).unwrap(),
            "\"aidant_login\""
        );
    }
}
