//! Rule: `client_id` names a registered client. Until it does, nothing can be redirected.

use crate::config::{Client, Config};
use crate::provider::page::ErrorPage;
use crate::provider::params::Params;

pub fn client<'a>(config: &'a Config, params: &Params) -> Result<&'a Client, ErrorPage> {
    let id = params.get("client_id").ok_or_else(|| {
        ErrorPage::bad_request("Le service demandeur ne s'est pas identifié (client_id manquant).")
    })?;
    config.client(id).ok_or_else(|| {
        ErrorPage::bad_request("Le service demandeur est inconnu (client_id non enregistré).")
    })
}
