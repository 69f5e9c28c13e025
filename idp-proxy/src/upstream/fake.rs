//! An identity provider in process, for handler tests: what the real one's callback would
//! prove (who logged in, at which level), without network. It keeps the contract the
//! provider relies on: a login answers only the `state` it was started with, once; an
//! `error` in the callback is the provider's refusal.

use std::sync::Mutex;

use mandate_store::Level;

use super::{Callback, PendingLogin, Upstream, UpstreamError, VerifiedIdentity};
use crate::keys::KeyRing;

pub struct FakeUpstream {
    issuer: String,
    /// Who the next callback says logged in.
    next: Mutex<Option<VerifiedIdentity>>,
    /// `(state, force_login)` of each login started, oldest first.
    pub started: Mutex<Vec<(String, bool)>>,
}

impl FakeUpstream {
    pub fn new(issuer: &str) -> FakeUpstream {
        FakeUpstream {
            issuer: issuer.to_string(),
            next: Mutex::new(None),
            started: Mutex::new(Vec::new()),
        }
    }

    /// The next login is `subject`'s at `acr`, authenticated at `auth_time`.
    pub fn logs_in(&self, subject: &str, acr: Option<&str>, auth_time: i64) {
        *self.next.lock().unwrap() = Some(VerifiedIdentity {
            issuer: self.issuer.clone(),
            subject: subject.to_string(),
            auth_time: Some(auth_time),
            acr: acr.map(str::to_string),
            id_token: format!("id-token-of-{subject}"),
            userinfo: None,
        });
    }

    /// The `state` of the last login started.
    pub fn last_state(&self) -> String {
        let started = self.started.lock().unwrap();
        started.last().map(|(s, _)| s.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Upstream for FakeUpstream {
    async fn login_url(
        &self,
        force_login: bool,
        _login_hint: Option<&str>,
    ) -> Result<(String, String, PendingLogin), UpstreamError> {
        let mut started = self.started.lock().unwrap();
        // Unique per login, which is all the provider relies on.
        let state = format!("state-{}", started.len() + 1);
        started.push((state.clone(), force_login));
        let url = format!("{}/authorize?state={state}", self.issuer);
        let pending = PendingLogin {
            nonce: format!("nonce-{state}"),
            pkce_verifier: format!("verifier-{state}"),
        };
        Ok((url, state, pending))
    }

    async fn finish(
        &self,
        callback: &Callback,
        _pending: &PendingLogin,
        _keys: &KeyRing,
    ) -> Result<VerifiedIdentity, UpstreamError> {
        if let Some(e) = &callback.error {
            return Err(UpstreamError::Denied(e.clone()));
        }
        self.next
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| UpstreamError::Rejected("nobody logged in".into()))
    }

    async fn logout_url(&self, _hint: &str, back: &str, state: &str) -> Option<String> {
        Some(format!(
            "{}/logout?state={state}&post_logout_redirect_uri={back}",
            self.issuer
        ))
    }

    fn level_of(&self, acr: &str) -> Option<Level> {
        Level::named(acr)
    }
}
