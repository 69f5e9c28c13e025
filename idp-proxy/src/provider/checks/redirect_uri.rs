//! Rule: `redirect_uri` is one of the client's registered URIs, compared exactly (RFC 9700
//! §4.1.3: no normalisation, no prefix, no port or case leniency). Until it is, errors are
//! shown here and never redirected.

use crate::config::Client;
use crate::provider::error::ReturnTo;
use crate::provider::page::ErrorPage;
use crate::provider::params::Params;

pub fn redirect_uri(client: &Client, params: &Params, issuer: &str) -> Result<ReturnTo, ErrorPage> {
    let uri = params.get("redirect_uri").ok_or_else(|| {
        ErrorPage::bad_request("L'adresse de retour du service (redirect_uri) est manquante.")
    })?;
    if !client.redirect_uris.iter().any(|r| r == uri) {
        return Err(ErrorPage::bad_request(
            "L'adresse de retour du service (redirect_uri) n'est pas enregistrée pour ce service.",
        ));
    }
    Ok(ReturnTo {
        redirect_uri: uri.to_string(),
        state: params.get("state").map(str::to_string),
        issuer: issuer.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        serde_json::from_value(serde_json::json!({
            "client_id": "c",
            "redirect_uris": ["https://sp.example/cb"],
            "demarches": [],
        }))
        .unwrap()
    }

    #[test]
    fn only_the_exact_registered_uri_passes() {
        let c = client();
        let ok = Params::parse(b"redirect_uri=https%3A%2F%2Fsp.example%2Fcb").unwrap();
        assert!(redirect_uri(&c, &ok, "i").is_ok());
        for variant in [
            "https://sp.example/cb/",
            "https://sp.example/cb?x=1",
            "https://sp.example:444/cb",
            "http://sp.example/cb",
            "https://SP.example/cb",
            "https://sp.example/CB",
            "https://sp.example/cb#f",
        ] {
            let raw = format!(
                "redirect_uri={}",
                url::form_urlencoded::byte_serialize(variant.as_bytes()).collect::<String>()
            );
            let p = Params::parse(raw.as_bytes()).unwrap();
            assert!(redirect_uri(&c, &p, "i").is_err(), "{variant} accepted");
        }
    }
}
