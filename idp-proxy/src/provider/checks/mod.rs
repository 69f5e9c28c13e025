//! The rules of the authorization endpoint, one per file, in the order `authorize` runs them.
//! The first two answer with a local page (no redirect is safe yet); the others return an
//! `OAuthError` that is sent back to the client.

pub mod acr;
mod client;
mod pkce;
mod prompt;
mod redirect_uri;
mod rep_scope;
mod response_type;
mod scope;

pub use acr::acr;
pub use client::client;
pub use pkce::{pkce, verify_pkce};
pub use prompt::{prompt, Prompt};
pub use redirect_uri::redirect_uri;
pub use rep_scope::rep_scope;
pub use response_type::response_type;
pub use scope::scope;
