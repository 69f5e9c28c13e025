//! The people and places: `organisations …`, `aidants …`, `mandates …`.

use std::path::PathBuf;

use clap::Subcommand;
use mandate_store::{Actor, NewAidant};

use super::Context;

#[derive(Subcommand)]
pub enum MandatesCommand {
    /// Load organisations, aidants, usagers and mandates from a TOML file (idempotent).
    Import { file: PathBuf },
    /// End a mandate now.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum OrganisationsCommand {
    /// Create an organisation, or rename it.
    Add {
        #[arg(long)]
        siret: String,
        #[arg(long)]
        name: String,
    },
    /// List organisations (tab-separated: siret, active, name, who may use mandates).
    List,
    /// Disable an organisation: none of its aidants can use a mandate.
    Disable { siret: String },
    /// Enable it again.
    Enable { siret: String },
    /// Choose who may use the organisation's mandates: any of its aidants (default) or only
    /// the aidant who created each mandate.
    MandateUse {
        siret: String,
        #[arg(value_enum)]
        by: MandateUse,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MandateUse {
    /// Any aidant of the organisation.
    AnyAidant,
    /// Only the aidant who created the mandate.
    Creator,
}

#[derive(Subcommand)]
pub enum AidantsCommand {
    /// Create an aidant, or update them (memberships replaced by the --organisation list).
    Add {
        /// The identifier the aidants' IdP gives (see upstream.aidant.subject_claim).
        #[arg(long)]
        subject: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        /// SIRET of an organisation (repeat for several).
        #[arg(long = "organisation", required = true)]
        organisations: Vec<String>,
    },
    /// List aidants (tab-separated: subject, active, name, sirets).
    List,
    /// Disable an aidant: they can neither log in nor use a mandate.
    Disable { subject: String },
    /// Enable them again.
    Enable { subject: String },
}

fn state(active: bool) -> &'static str {
    if active {
        "active"
    } else {
        "disabled"
    }
}

pub fn mandates(cmd: MandatesCommand, cx: &Context) -> anyhow::Result<()> {
    let (store, config, now) = (cx.store()?, &cx.config, cx.now);
    match cmd {
        MandatesCommand::Import { file } => {
            let summary = idp_proxy::import::import(&store, config, &file, now)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        MandatesCommand::Revoke { id, reason } => {
            let m = store.revoke_mandate(&id, &reason, Actor::Ops, now)?;
            eprintln!("mandate {} revoked", m.id);
        }
    }
    Ok(())
}

pub fn organisations(cmd: OrganisationsCommand, cx: &Context) -> anyhow::Result<()> {
    let (store, now) = (cx.store()?, cx.now);
    match cmd {
        OrganisationsCommand::Add { siret, name } => {
            let o = store.upsert_organisation(&siret, &name, true, now)?;
            eprintln!("organisation {} ({}) saved", o.siret, o.name);
        }
        OrganisationsCommand::List => {
            for o in store.organisations()? {
                let by = if o.mandates_bound_to_creator {
                    "creator"
                } else {
                    "any-aidant"
                };
                println!("{}\t{}\t{}\t{by}", o.siret, state(o.active), o.name);
            }
        }
        OrganisationsCommand::MandateUse { siret, by } => {
            let bound = matches!(by, MandateUse::Creator);
            store.set_mandates_bound_to_creator(&siret, bound, now)?;
            eprintln!(
                "organisation {siret}: mandates usable by {}",
                if bound {
                    "their creator only"
                } else {
                    "any of its aidants"
                }
            );
        }
        OrganisationsCommand::Disable { siret } => {
            store.set_organisation_active(&siret, false, now)?;
            eprintln!("organisation {siret} disabled");
        }
        OrganisationsCommand::Enable { siret } => {
            store.set_organisation_active(&siret, true, now)?;
            eprintln!("organisation {siret} enabled");
        }
    }
    Ok(())
}

pub fn aidants(cmd: AidantsCommand, cx: &Context) -> anyhow::Result<()> {
    let (store, now) = (cx.store()?, cx.now);
    let issuer = cx.config.upstream.aidant.issuer.to_string();
    match cmd {
        AidantsCommand::Add {
            subject,
            email,
            given_name,
            family_name,
            organisations,
        } => {
            let a = store.upsert_aidant(
                &NewAidant {
                    issuer,
                    subject,
                    email,
                    given_name,
                    family_name,
                    active: true,
                    organisation_sirets: organisations,
                },
                now,
            )?;
            eprintln!("aidant {} saved (id {})", a.subject, a.id);
        }
        AidantsCommand::List => {
            for (a, sirets) in store.aidants()? {
                println!(
                    "{}\t{}\t{} {}\t{}",
                    a.subject,
                    state(a.active),
                    a.given_name,
                    a.family_name,
                    sirets.join(",")
                );
            }
        }
        AidantsCommand::Disable { subject } => {
            store.set_aidant_active(&issuer, &subject, false, now)?;
            eprintln!("aidant {subject} disabled");
        }
        AidantsCommand::Enable { subject } => {
            store.set_aidant_active(&issuer, &subject, true, now)?;
            eprintln!("aidant {subject} enabled");
        }
    }
    Ok(())
}
