//! Every key the ephemeral store holds, in one registry: each kind of record has its prefix
//! here and nowhere else. Secrets (cookies, codes, tokens, request URIs) appear only hashed;
//! a code and the access token it is redeemed for share a `{hash tag}`, one Redis Cluster
//! slot, so redeeming swaps one for the other in one atomic step.

use super::tokens::sha256_b64;

/// A kind of ephemeral record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// An authorization request waiting for the aidant (`Interaction`).
    Interaction,
    /// An aidant's session, by cookie hash.
    Session,
    /// A usager's session in their space, by cookie hash.
    UsagerSession,
    /// An authorization code, named after its access token.
    Code,
    AccessToken,
    /// Held by the request that journals a silent code's use.
    RedeemClaim,
    /// A login at the aidants' IdP under way, by `state`.
    UpstreamLogin,
    /// A login at FranceConnect under way, by `state`.
    FranceConnectLogin,
    /// A mandate being given (the recap), by its id.
    MandateCreation,
    /// A logout waiting for the upstream IdP, by `state`.
    Logout,
    /// A pushed authorization request, by `request_uri` hash.
    Pushed,
    /// A client assertion's `jti`, seen once.
    AssertionJti,
    /// A rate-limit counter.
    RateLimit,
    /// `/readyz`'s probe.
    Ready,
}

impl Space {
    pub const ALL: [Space; 14] = [
        Space::Interaction,
        Space::Session,
        Space::UsagerSession,
        Space::Code,
        Space::AccessToken,
        Space::RedeemClaim,
        Space::UpstreamLogin,
        Space::FranceConnectLogin,
        Space::MandateCreation,
        Space::Logout,
        Space::Pushed,
        Space::AssertionJti,
        Space::RateLimit,
        Space::Ready,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Space::Interaction => "ix",
            Space::Session => "sess",
            Space::UsagerSession => "usp",
            Space::Code => "code",
            Space::AccessToken => "at",
            Space::RedeemClaim => "rd",
            Space::UpstreamLogin => "up",
            Space::FranceConnectLogin => "fc",
            Space::MandateCreation => "mc",
            Space::Logout => "lo",
            Space::Pushed => "par",
            Space::AssertionJti => "jti",
            Space::RateLimit => "rl",
            Space::Ready => "ready",
        }
    }

    /// The key of a record named by a value that is not secret (a random id or `state`).
    pub fn key(self, id: &str) -> String {
        format!("{}:{id}", self.prefix())
    }

    /// The key of a record named by a secret: only its hash is stored.
    pub fn hashed(self, secret: &str) -> String {
        self.key(&sha256_b64(secret))
    }

    /// `hashed`, as a Redis Cluster hash tag: records keyed on one secret share a slot.
    fn tagged(self, secret: &str) -> String {
        format!("{}:{{{}}}", self.prefix(), sha256_b64(secret))
    }
}

pub fn interaction_key(id: &str) -> String {
    Space::Interaction.key(id)
}
pub fn session_key(cookie: &str) -> String {
    Space::Session.hashed(cookie)
}
pub fn usager_session_key(cookie: &str) -> String {
    Space::UsagerSession.hashed(cookie)
}
/// A code's key, named after the access token it will be redeemed for (derived from the code).
pub fn code_key(access_token: &str) -> String {
    Space::Code.tagged(access_token)
}
pub fn access_token_key(token: &str) -> String {
    Space::AccessToken.tagged(token)
}
/// Held by the request that journals a silent code's use (see `token::journal_once`).
pub fn redeem_claim_key(access_token: &str) -> String {
    Space::RedeemClaim.tagged(access_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_record_has_its_own_prefix() {
        let mut prefixes: Vec<&str> = Space::ALL.iter().map(|s| s.prefix()).collect();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), Space::ALL.len());
        // The code and its access token share a slot; the secret itself is not in the key.
        let (code, token) = (code_key("t0k3n"), access_token_key("t0k3n"));
        assert_eq!(
            code[code.find('{').unwrap()..],
            token[token.find('{').unwrap()..]
        );
        assert!(!code.contains("t0k3n") && !session_key("c00k1e").contains("c00k1e"));
        assert_eq!(interaction_key("abc"), "ix:abc");
    }
}
