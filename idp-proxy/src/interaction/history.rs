//! The journal as the people it concerns read it: one row per entry, in French, Paris time,
//! with each service's name instead of its client id.

use super::french::french_datetime;
use crate::journal::JournalLine;
use crate::provider::App;

pub struct HistoryRow {
    pub date: String,
    pub action: &'static str,
    pub demarche: &'static str,
    pub service: String,
    pub aidant: String,
    pub organisation: String,
    pub usager: String,
}

/// What an action means to a reader.
pub fn action_fr(action: &str) -> &'static str {
    match action {
        "mandate_used" => "Démarche effectuée",
        "mandate_created" => "Mandat donné",
        "mandate_revoked" => "Fin du mandat",
        "mandate_refused" => "Mandat refusé par la personne",
        "demarche_ended" => "Fin d'une démarche du mandat",
        "authorization_abandoned" => "Connexion abandonnée",
        "aidant_login" => "Connexion de l'aidant",
        "usager_login" => "Consultation de l'espace personnel",
        "journal_purged" => "Effacement des entrées anciennes",
        _ => "Autre action",
    }
}

/// The registered name of a client, or its id.
pub fn service_name(app: &App, client_id: &str) -> String {
    app.config
        .client(client_id)
        .and_then(|c| c.name.clone())
        .unwrap_or_else(|| client_id.to_string())
}

pub fn rows(app: &App, lines: &[JournalLine]) -> Vec<HistoryRow> {
    lines
        .iter()
        .map(|l| HistoryRow {
            date: french_datetime(l.at),
            action: action_fr(&l.action),
            demarche: l.demarche.map(|d| d.title_fr()).unwrap_or_default(),
            service: l
                .client_id
                .as_deref()
                .map(|c| service_name(app, c))
                .unwrap_or_default(),
            aidant: l.aidant.clone().unwrap_or_default(),
            organisation: l.organisation.clone().unwrap_or_default(),
            usager: l.usager.clone().unwrap_or_default(),
        })
        .collect()
}
