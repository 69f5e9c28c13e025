//! The in-process test seam: `App::for_tests()` is the real App on embedded parts (SQLite in
//! memory, the memory ephemeral store, a manual clock, a fresh key ring) with the aidants'
//! identity provider replaced by `FakeUpstream`, loaded with the demo world
//! (`config/demo-data.toml`). `Browser` drives it through `actix_web::test` as a browser
//! would: it keeps cookies and follows nothing by itself. The e2e suites keep what needs real
//! processes (the real OpenID Providers, Redis, PostgreSQL, Chromium).

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::clock::ManualClock;
use crate::config::Config;
use crate::ephemeral::MemoryStore;
use crate::keys::KeyRing;
use crate::provider::App;
use crate::upstream::fake::FakeUpstream;

/// 2026-12-07 10:00 UTC.
pub const NOW: i64 = 1_796_637_600;
pub const ISSUER: &str = "http://127.0.0.1:18080";
pub const AIDANTS_IDP: &str = "http://127.0.0.1:19100";
pub const CLIENT: &str = "sp";
pub const SECRET: &str = "sp-secret-that-is-long-enough";
pub const REDIRECT: &str = "http://127.0.0.1:19200/callback";
/// The demo world's: Michel DUPONT's mandate at the Centre social des Acacias (argent,
/// social), and Abdel KARIM, its aidant.
pub const MICHEL_MANDATE: &str = "6f1d8e2a-9c3b-4a5d-8e7f-1a2b3c4d5e6f";
pub const ABDEL: &str = "abdel";

pub struct TestApp {
    pub app: web::Data<App>,
    pub clock: ManualClock,
    pub aidants: Arc<FakeUpstream>,
    _dir: tempfile::TempDir,
}

impl App {
    /// An App on embedded parts and a fake aidants' IdP, loaded with the demo world.
    pub fn for_tests() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        KeyRing::generate(&keys).unwrap();
        let secret_hash = crate::keys::hex(
            ring::digest::digest(&ring::digest::SHA256, SECRET.as_bytes()).as_ref(),
        );
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:18080"
issuer = "{ISSUER}"
[database]
url = "sqlite://:memory:"
[keys]
dir = "{keys}"
[upstream.aidant]
issuer = "{AIDANTS_IDP}"
client_id = "idp-proxy"
client_secret = "s"
acr_values = "eidas1"
[[clients]]
client_id = "{CLIENT}"
client_secret_sha256 = "{secret_hash}"
redirect_uris = ["{REDIRECT}"]
demarches = ["argent", "logement"]
"#,
            keys = keys.display()
        );
        let file = dir.path().join("config.toml");
        std::fs::write(&file, toml).unwrap();
        let config = Config::load(&file).unwrap();
        let ring = KeyRing::load(&keys).unwrap();
        let store = crate::open_store(&config, &ring).unwrap();
        store.migrate().unwrap();
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo-data.toml");
        crate::import::import(&store, &config, std::path::Path::new(demo), NOW).unwrap();
        let clock = ManualClock::at(NOW);
        let aidants = Arc::new(FakeUpstream::new(AIDANTS_IDP));
        let parts = crate::Parts {
            keys: ring,
            store,
            ephemeral: Arc::new(MemoryStore::default()),
            upstream: aidants.clone(),
            franceconnect: None,
            clock: Arc::new(clock.clone()),
        };
        let app = web::Data::new(crate::assemble(config, parts).unwrap());
        TestApp {
            app,
            clock,
            aidants,
            _dir: dir,
        }
    }
}

/// What the test sees of a response.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Answer {
    /// A query parameter of the redirect.
    pub fn param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(self.location.as_deref()?)
            .or_else(|_| url::Url::parse(ISSUER)?.join(self.location.as_deref().unwrap_or("")))
            .ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The value of the first hidden input `name` of the page.
    pub fn field(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &self.body[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].to_string())
    }
}

/// A browser: its cookies, sent with every request to the app.
pub struct Browser<S> {
    service: S,
    cookies: HashMap<String, String>,
}

pub async fn browser(
    t: &TestApp,
) -> Browser<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let service =
        test::init_service(actix_web::App::new().configure(crate::services(t.app.clone()))).await;
    Browser {
        service,
        cookies: HashMap::new(),
    }
}

impl<S, B> Browser<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    pub async fn send(&mut self, mut req: TestRequest) -> Answer {
        for (name, value) in &self.cookies {
            req = req.cookie(actix_web::cookie::Cookie::new(name.clone(), value.clone()));
        }
        let res = test::call_service(&self.service, req.to_request()).await;
        for c in res.response().cookies() {
            if c.value().is_empty() {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_string(), c.value().to_string());
            }
        }
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        let body = test::read_body(res).await;
        Answer {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The aidant (Abdel KARIM) logged in at the fake IdP and on the choice page: the page,
    /// and its interaction's path.
    pub async fn at_choice(&mut self, t: &TestApp, challenge: &str) -> (Answer, String) {
        let sent = self.get(&authorize_uri(challenge, "")).await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER);
        let login = sent.location.clone().unwrap();
        assert!(login.starts_with(AIDANTS_IDP), "{login}");
        t.aidants.logs_in(ABDEL, Some("eidas1"), NOW);
        let state = t.aidants.last_state();
        let back = self
            .get(&format!("/login/callback?state={state}&code=c"))
            .await;
        assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
        let interaction = back.location.unwrap();
        assert!(interaction.starts_with("/interaction/"), "{interaction}");
        (self.get(&interaction).await, interaction)
    }

    /// The whole way to a code: login, the choice page, Michel DUPONT for « Argent » certified.
    pub async fn chooses_michel_argent(&mut self, t: &TestApp, challenge: &str) -> Answer {
        let (page, interaction) = self.at_choice(t, challenge).await;
        let csrf = page.field("csrf").unwrap();
        let choice = format!("{MICHEL_MANDATE}:argent");
        let form = [
            ("csrf", csrf.as_str()),
            ("choice", &choice),
            ("certify", "yes"),
        ];
        self.post(&interaction, &form).await
    }

    pub async fn get(&mut self, uri: &str) -> Answer {
        self.send(TestRequest::get().uri(uri)).await
    }

    pub async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Answer {
        self.send(TestRequest::post().uri(uri).set_form(form)).await
    }

    /// The client's back channel: no browser cookies.
    pub async fn token(&mut self, form: &[(&str, &str)]) -> Answer {
        let cookies = std::mem::take(&mut self.cookies);
        let basic = format!("Basic {}", base64_std(&format!("{CLIENT}:{SECRET}")));
        let req = TestRequest::post()
            .uri("/token")
            .insert_header((header::AUTHORIZATION, basic))
            .set_form(form);
        let answer = self.send(req).await;
        self.cookies = cookies;
        answer
    }
}

fn base64_std(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = crate::provider::tokens::random();
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

/// `/authorize` for the test client, with `extra` parameters (`&prompt=none`…).
pub fn authorize_uri(challenge: &str, extra: &str) -> String {
    format!(
        "/authorize?client_id={CLIENT}&redirect_uri={}&response_type=code&scope=openid&state=st-1&nonce=n-1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        urlencode(REDIRECT)
    )
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The claims of a JWT, unverified (the signature is the e2e suites' business).
pub fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}
