//! OpenID Connect Back-Channel Logout 1.0: when an aidant session ends, every client that
//! received tokens in it and registered a `backchannel_logout_uri` gets a logout token (a JWT
//! of type `logout+jwt` naming the session's `sid`), POSTed from the server, retried a few
//! times with backoff. Delivery runs in the background: the browser's logout never waits on
//! a client, and a client that is down cannot keep the aidant logged in anywhere else. A node
//! stopping gracefully (SIGTERM) finishes the deliveries it owes before it exits.

use std::future::Future;
use std::time::Duration;

use serde_json::json;
use tokio_util::task::TaskTracker;

use super::records::AidantSession;
use super::{tokens, App};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Attempts per client, and the wait before each retry.
const BACKOFF: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(4),
];

/// Deliveries in flight. They run on the node's main runtime, not on the worker that took the
/// logout (a worker's runtime ends with the server, dropping its tasks), and a graceful stop
/// waits for them.
pub struct Deliveries {
    runtime: tokio::runtime::Handle,
    tasks: TaskTracker,
}

impl Deliveries {
    /// Deliveries run on the runtime this is called from.
    pub fn here() -> Result<Deliveries, tokio::runtime::TryCurrentError> {
        Ok(Deliveries {
            runtime: tokio::runtime::Handle::try_current()?,
            tasks: TaskTracker::new(),
        })
    }

    fn spawn(&self, delivery: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn_on(delivery, &self.runtime);
    }

    /// Waits up to `limit` for the deliveries in flight (their retries included); says how
    /// many were still going when it gave up.
    pub async fn finish(&self, limit: Duration) -> usize {
        self.tasks.close();
        match tokio::time::timeout(limit, self.tasks.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tasks.len(),
        }
    }
}

/// Sends logout tokens for `session` to the clients it served, in the background.
pub fn notify(app: &App, session: &AidantSession) {
    if session.sid.is_empty() {
        // A session from before `sid` existed: its tokens named no session to end.
        return;
    }
    for client_id in &session.served {
        let Some(client) = app.config.client(client_id) else {
            continue;
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let now = app.now();
        let claims = json!({
            "iss": app.issuer(),
            "aud": client.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": tokens::random(),
            "sid": app.subject(client, &session.sid),
            "events": { EVENT: {} },
        });
        let token =
            match app
                .keys()
                .sign_typed(client.id_token_signed_response_alg, "logout+jwt", &claims)
            {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "logout token signing failed");
                    continue;
                }
            };
        let (http, client_id) = (app.http.clone(), client.client_id.clone());
        app.deliveries.spawn(async move {
            for (attempt, wait) in BACKOFF.iter().enumerate() {
                tokio::time::sleep(*wait).await;
                let sent = http
                    .post(uri.as_str())
                    .form(&[("logout_token", token.as_str())])
                    .send()
                    .await;
                match sent {
                    Ok(res) if res.status().is_success() => {
                        tracing::info!(client = %client_id, attempt, "back-channel logout delivered");
                        return;
                    }
                    Ok(res) => {
                        tracing::warn!(client = %client_id, attempt, status = res.status().as_u16(), "back-channel logout refused")
                    }
                    Err(e) => {
                        tracing::warn!(client = %client_id, attempt, error = %e, "back-channel logout failed")
                    }
                }
            }
            tracing::error!(client = %client_id, "back-channel logout given up");
        });
    }
}
