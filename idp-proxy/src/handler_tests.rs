//! Handler tests in process (`App::for_tests`, see `testing.rs`): the choice page, the
//! refusals, code replay and `prompt=none`, through the real routes, without network. Each
//! asserts what the client or the aidant would see. The behaviours are the standard ones:
//! OpenID Connect Core §3.1.2 (authorization code flow, `prompt=none` → `login_required`),
//! RFC 6749 §4.1.2/§10.6 (codes single use, redirect URI compared exactly, no redirect to an
//! unregistered one), RFC 6749 §10.5 and the OAuth Security BCP (RFC 9700) §4.2.4 (a replayed
//! code revokes the tokens it gave), RFC 9207 (`iss` in the response), RFC 8693 §4.1 (`act`).

use actix_web::http::StatusCode;
use mandate_store::{Actor, JournalFilter};

use crate::provider::App;
use crate::testing::*;

fn mandate_uses(t: &TestApp) -> usize {
    let filter = JournalFilter {
        mandate_id: Some(MICHEL_MANDATE.into()),
        ..Default::default()
    };
    let entries = t.app.store.journal_entries(&filter).unwrap();
    entries
        .iter()
        .filter(|e| e.action == "mandate_used")
        .count()
}

#[actix_web::test]
async fn the_choice_page_offers_the_usagers_and_demarches_this_client_allows() {
    let t = App::for_tests();
    let mut b = browser(&t).await;
    let (_, challenge) = pkce();
    let (page, _) = b.at_choice(&t, &challenge).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Abdel KARIM"), "the aidant is named");
    assert!(page.body.contains("Michel DUPONT"), "the usager is offered");
    // The mandate covers argent and social; the client serves argent and logement.
    let argent = format!("value=\"{MICHEL_MANDATE}:argent\"");
    let social = format!("value=\"{MICHEL_MANDATE}:social\"");
    assert!(page.body.contains(&argent), "{}", page.body);
    assert!(
        !page.body.contains(&social),
        "a démarche the client does not serve"
    );
    assert!(page.field("csrf").is_some_and(|c| !c.is_empty()));
}

#[actix_web::test]
async fn a_code_redeems_once_and_a_replay_revokes_its_tokens() {
    let t = App::for_tests();
    let mut b = browser(&t).await;
    let (verifier, challenge) = pkce();
    let sent = b.chooses_michel_argent(&t, &challenge).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert!(sent.location.as_deref().unwrap().starts_with(REDIRECT));
    assert_eq!(sent.param("state").as_deref(), Some("st-1"));
    assert_eq!(sent.param("iss").as_deref(), Some(ISSUER));
    assert_eq!(mandate_uses(&t), 1, "journaled before the code is shown");
    let code = sent.param("code").unwrap();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens = b.token(&redeem).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let tokens: serde_json::Value = serde_json::from_str(&tokens.body).unwrap();
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["iss"], ISSUER);
    assert_eq!(id_token["aud"], CLIENT);
    assert_eq!(id_token["nonce"], "n-1");
    assert_eq!(id_token["acr"], "eidas1");
    assert!(id_token["act"]["sub"].is_string(), "the aidant who acted");
    assert_ne!(id_token["act"]["sub"], id_token["sub"]);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let userinfo = |token: String| {
        actix_web::test::TestRequest::get()
            .uri("/userinfo")
            .insert_header(("Authorization", format!("Bearer {token}")))
    };
    assert_eq!(
        b.send(userinfo(access.clone())).await.status,
        StatusCode::OK
    );

    let replay = b.token(&redeem).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("invalid_grant"), "{}", replay.body);
    assert_eq!(
        b.send(userinfo(access)).await.status,
        StatusCode::UNAUTHORIZED,
        "the replay revoked the access token"
    );
    assert_eq!(mandate_uses(&t), 1);
}

#[actix_web::test]
async fn refusals_are_said_on_the_page_or_to_the_client_never_with_a_code() {
    let t = App::for_tests();
    let mut b = browser(&t).await;
    let (_, challenge) = pkce();
    let (page, interaction) = b.at_choice(&t, &challenge).await;
    let csrf = page.field("csrf").unwrap();
    let argent = format!("{MICHEL_MANDATE}:argent");
    let social = format!("{MICHEL_MANDATE}:social");
    let choose = |choice: &str, certify: &str| {
        vec![
            ("csrf".to_string(), csrf.clone()),
            ("choice".to_string(), choice.to_string()),
            ("certify".to_string(), certify.to_string()),
        ]
    };
    let post = |form: Vec<(String, String)>| {
        actix_web::test::TestRequest::post()
            .uri(&interaction)
            .set_form(form)
    };

    let unticked = b.send(post(choose(&argent, "no"))).await;
    // The page again, with what is wrong (403: the choice was not accepted).
    assert_eq!(unticked.status, StatusCode::FORBIDDEN);
    assert_eq!(unticked.location, None);
    assert!(
        unticked.body.contains("Cochez la case"),
        "{}",
        unticked.body
    );

    let not_served = b.send(post(choose(&social, "yes"))).await;
    assert!(not_served
        .body
        .contains("Ce service ne propose pas cette démarche."));

    let mut forged = choose(&argent, "yes");
    forged[0].1 = "forged".into();
    let forged = b.send(post(forged)).await;
    assert_eq!(
        forged.location, None,
        "no code without the page's CSRF token"
    );

    let store = &t.app.store;
    store
        .revoke_mandate(MICHEL_MANDATE, "test", Actor::Ops, NOW)
        .unwrap();
    let revoked = b.send(post(choose(&argent, "yes"))).await;
    assert_eq!(
        revoked.status,
        StatusCode::FORBIDDEN,
        "the page again, to choose otherwise"
    );
    assert_eq!(revoked.location, None);
    assert!(
        revoked.body.contains("Ce mandat a été révoqué"),
        "{}",
        revoked.body
    );
    assert_eq!(mandate_uses(&t), 0, "nothing journaled");

    // An unregistered redirect URI is never redirected to (RFC 6749 §4.1.2.1).
    let elsewhere = authorize_uri(&challenge, "").replace(
        &urlencode(REDIRECT),
        &urlencode("http://127.0.0.1:19200/other"),
    );
    let refused = b.get(&elsewhere).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.location, None);
}

#[actix_web::test]
async fn prompt_none_answers_silently_only_for_a_known_choice() {
    let t = App::for_tests();
    let mut b = browser(&t).await;
    let (verifier, challenge) = pkce();

    // No session: the client is told at once, no page is shown (OIDC Core §3.1.2.6).
    let none = b.get(&authorize_uri(&challenge, "&prompt=none")).await;
    assert_eq!(none.status, StatusCode::SEE_OTHER);
    assert_eq!(none.param("error").as_deref(), Some("login_required"));
    assert_eq!(none.param("state").as_deref(), Some("st-1"));

    let first = b.chooses_michel_argent(&t, &challenge).await;
    assert!(first.param("code").is_some());
    assert_eq!(mandate_uses(&t), 1);

    // The same choice again, silently: a code, journaled only when the client redeems it.
    t.clock.advance(5);
    let silent = b.get(&authorize_uri(&challenge, "&prompt=none")).await;
    assert_eq!(silent.status, StatusCode::SEE_OTHER, "{}", silent.body);
    let code = silent.param("code").expect("a silent code");
    assert_eq!(
        mandate_uses(&t),
        1,
        "a request any site can trigger journals nothing"
    );
    let redeemed = b
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ])
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    assert_eq!(mandate_uses(&t), 2);

    // The mandate ended since: the silent answer cannot choose for the aidant.
    t.app
        .store
        .revoke_mandate(MICHEL_MANDATE, "test", Actor::Ops, NOW + 6)
        .unwrap();
    let after = b.get(&authorize_uri(&challenge, "&prompt=none")).await;
    assert_eq!(
        after.param("error").as_deref(),
        Some("interaction_required")
    );
    assert_eq!(after.param("code"), None);
}
