//! The journal as people read it: entries with names resolved (aidant, organisation, usager
//! decrypted), filtered by period, démarche and aidant, and written as CSV for operators and
//! organisations. The journal itself stores ids only; names appear only in what is read.

use std::collections::HashMap;
use std::io::Write;

use mandate_store::{Demarche, JournalFilter, Store, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct JournalLine {
    pub seq: i64,
    pub at: i64,
    pub action: String,
    pub demarche: Option<Demarche>,
    pub client_id: Option<String>,
    pub aidant_id: Option<String>,
    pub aidant: Option<String>,
    pub organisation: Option<String>,
    pub usager_id: Option<String>,
    pub usager: Option<String>,
    pub mandate_id: Option<String>,
}

/// Entries matching `filter` (and `demarche`), newest first, with names.
pub fn lines(
    store: &Store,
    filter: &JournalFilter,
    demarche: Option<Demarche>,
) -> Result<Vec<JournalLine>, StoreError> {
    let entries = store.journal_entries(filter)?;
    // Each name is looked up (and each identity decrypted) once per export.
    let mut aidants: HashMap<String, Option<String>> = HashMap::new();
    let mut organisations: HashMap<String, Option<String>> = HashMap::new();
    let mut usagers: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if demarche.is_some() && e.demarche != demarche {
            continue;
        }
        let aidant = match &e.aidant_id {
            Some(id) => cached(&mut aidants, id, |id| {
                Ok(store.aidant(id)?.map(|a| a.full_name()))
            })?,
            None => None,
        };
        let organisation = match &e.organisation_id {
            Some(id) => cached(&mut organisations, id, |id| {
                Ok(store.organisation(id)?.map(|o| o.name))
            })?,
            None => None,
        };
        let usager = match &e.usager_id {
            Some(id) => cached(&mut usagers, id, |id| {
                Ok(store.usager(id)?.map(|u| u.identity.full_name()))
            })?,
            None => None,
        };
        out.push(JournalLine {
            seq: e.seq,
            at: e.at,
            action: e.action,
            demarche: e.demarche,
            client_id: e.client_id,
            aidant_id: e.aidant_id,
            aidant,
            organisation,
            usager_id: e.usager_id,
            usager,
            mandate_id: e.mandate_id,
        });
    }
    Ok(out)
}

fn cached(
    cache: &mut HashMap<String, Option<String>>,
    id: &str,
    load: impl FnOnce(&str) -> Result<Option<String>, StoreError>,
) -> Result<Option<String>, StoreError> {
    if let Some(v) = cache.get(id) {
        return Ok(v.clone());
    }
    let v = load(id)?;
    cache.insert(id.to_string(), v.clone());
    Ok(v)
}

/// RFC 4180 field: quoted when it holds a comma, a quote or a line break. A leading `=`, `+`,
/// `-` or `@` is prefixed with `'` so a spreadsheet never runs it as a formula.
fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

pub fn write_csv(lines: &[JournalLine], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "seq,date,action,demarche,service,aidant,organisation,usager,mandat"
    )?;
    for l in lines {
        let date = chrono::DateTime::from_timestamp(l.at, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        let cells = [
            l.seq.to_string(),
            date,
            l.action.clone(),
            l.demarche
                .map(|d| d.as_str().to_string())
                .unwrap_or_default(),
            l.client_id.clone().unwrap_or_default(),
            l.aidant.clone().unwrap_or_default(),
            l.organisation.clone().unwrap_or_default(),
            l.usager.clone().unwrap_or_default(),
            l.mandate_id.clone().unwrap_or_default(),
        ];
        let row: Vec<String> = cells.iter().map(|c| field(c)).collect();
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
    }
}
