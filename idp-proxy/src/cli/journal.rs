//! The journal and what is kept: `journal verify|export`, `retention purge`.

use clap::Subcommand;
use mandate_store::{Demarche, JournalFilter};

use super::Context;

#[derive(Subcommand)]
pub enum JournalCommand {
    /// Check the whole hash chain; on a break, say which entry and how, and exit 1.
    Verify,
    /// Write journal entries as CSV (names resolved) to stdout, newest first.
    Export {
        /// Only this organisation's entries (SIRET).
        #[arg(long)]
        organisation: Option<String>,
        /// Only this aidant's entries (their subject at the aidants' IdP).
        #[arg(long)]
        aidant: Option<String>,
        /// Only this démarche.
        #[arg(long)]
        demarche: Option<Demarche>,
        /// First day included (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        /// Last day included (YYYY-MM-DD, UTC).
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Delete what is older than `retention.days`: journal entries (the purge is journaled,
    /// so `journal verify` still verifies the rest), mandates ended before then, and the
    /// identities of usagers left without mandates. Nodes also do it when
    /// `retention.automatic` is on.
    Purge {
        #[arg(long, default_value_t = 1000)]
        batch: i64,
    },
}

pub fn journal(cmd: JournalCommand, cx: &Context) -> anyhow::Result<()> {
    let (store, config) = (cx.store()?, &cx.config);
    match cmd {
        JournalCommand::Export {
            organisation,
            aidant,
            demarche,
            since,
            until,
        } => {
            let mut filter = JournalFilter::default();
            if let Some(siret) = organisation {
                let o = store
                    .organisation_by_siret(&siret)?
                    .ok_or_else(|| anyhow::anyhow!("no organisation with SIRET {siret}"))?;
                filter.organisation_id = Some(o.id);
            }
            if let Some(subject) = aidant {
                let a = store
                    .aidant_by_subject(&config.upstream.aidant.issuer, &subject)?
                    .ok_or_else(|| anyhow::anyhow!("no aidant with subject {subject}"))?;
                filter.aidant_id = Some(a.id);
            }
            let day = |d: chrono::NaiveDate, h, m, s| {
                d.and_hms_opt(h, m, s).map(|t| t.and_utc().timestamp())
            };
            filter.since = since.and_then(|d| day(d, 0, 0, 0));
            filter.until = until.and_then(|d| day(d, 23, 59, 59));
            let lines = idp_proxy::journal::lines(&store, &filter, demarche)?;
            let stdout = std::io::stdout();
            idp_proxy::journal::write_csv(&lines, &mut stdout.lock())?;
        }
        JournalCommand::Verify => {
            let report = store.verify_journal()?;
            println!(
                "journal intact: {} entries from seq {}, last seq {}, last hash {}",
                report.entries, report.first_seq, report.last_seq, report.last_hash
            );
        }
    }
    Ok(())
}

pub fn retention(cmd: RetentionCommand, cx: &Context) -> anyhow::Result<()> {
    let RetentionCommand::Purge { batch } = cmd;
    let (store, config, now) = (cx.store()?, &cx.config, cx.now);
    let cutoff = idp_proxy::tasks::retention_cutoff(config, now);
    let purged = store.purge_before(cutoff, now, batch)?;
    println!(
        "purged: {} journal entries, {} mandates, {} usagers (older than {} days)",
        purged.journal_entries, purged.mandates, purged.usagers, config.retention.days
    );
    Ok(())
}
