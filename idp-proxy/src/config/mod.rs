//! Typed configuration, read once at start-up from a TOML file and `IDP_PROXY_*` environment
//! variables (`__` separates levels: `IDP_PROXY_UPSTREAM__AIDANT__CLIENT_SECRET`).
//! `sections` is the file's shape, `values` its typed values (parsed, never re-validated),
//! `clients` the client registry, `checks` what the types cannot say (every problem reported
//! at once, with its key and its fix). Nothing reads the environment after this.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

mod checks;
mod clients;
mod franceconnect;
mod sections;
mod values;

pub use checks::Problem;
pub use clients::{Client, ClientAuth, SubjectType};
pub use sections::*;
pub use values::{is_loopback, Issuer, WebUrl};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not have the expected shape (a value of the wrong type, an unknown key).
    #[error("{}", parse_lines(file, error))]
    Parse {
        file: String,
        /// Rendered whole by `parse_lines`, not as a cause (its own text repeats it).
        error: Box<figment::Error>,
    },
    /// Well-formed, but wrong: every problem, one per line.
    #[error("{}", problems.iter().map(|p| format!("{file}: `{}`: {}. Fix: {}", p.key, p.problem, p.fix)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
    #[error("{file}: `{key}`: cannot read {path}")]
    SecretFile {
        file: String,
        key: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// figment's errors with the key written as in our messages (`clients[0].redirect_uris[1]`).
fn parse_lines(file: &str, e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| {
            let mut key = String::new();
            for part in &e.path {
                match part.parse::<usize>() {
                    Ok(i) => key.push_str(&format!("[{i}]")),
                    Err(_) if key.is_empty() => key.push_str(part),
                    Err(_) => key.push_str(&format!(".{part}")),
                }
            }
            if key.is_empty() {
                format!("{file}: {}", e.kind)
            } else {
                format!("{file}: `{key}`: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    #[serde(default)]
    pub ephemeral: Ephemeral,
    pub keys: Keys,
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub session: Session,
    #[serde(default)]
    pub mandates: Mandates,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Prometheus metrics on their own listener; absent: no metrics.
    #[serde(default)]
    pub metrics: Option<Metrics>,
    pub upstream: Upstreams,
    #[serde(default)]
    pub clients: Vec<Client>,
    /// The file this was read from (for messages and relative paths).
    #[serde(skip)]
    pub source: PathBuf,
}

impl Config {
    /// Reads `file`, applies `IDP_PROXY_*` overrides, resolves relative paths against the
    /// file's directory and validates everything.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let name = file.display().to_string();
        let mut config: Config = Figment::new()
            .merge(Toml::file_exact(file))
            // Only nested keys (`SECTION__KEY`): other IDP_PROXY_* variables (IDP_PROXY_CONFIG,
            // IDP_PROXY_LOG) belong to the CLI, not to this file.
            .merge(
                Env::prefixed("IDP_PROXY_")
                    .filter(|k| k.as_str().contains("__"))
                    .split("__"),
            )
            .extract()
            .map_err(|e| ConfigError::Parse {
                file: name.clone(),
                error: Box::new(e),
            })?;
        config.source = file.to_path_buf();
        if let Some(fc) = config.upstream.franceconnect.as_mut() {
            fc.apply_franceconnect_profile();
        }
        let base = file.parent().unwrap_or(Path::new("."));
        if config.keys.dir.is_relative() {
            config.keys.dir = base.join(&config.keys.dir);
        }
        if let Some(rest) = config.database.url.strip_prefix("sqlite://") {
            if !rest.starts_with('/') && !rest.starts_with(":memory:") {
                config.database.url = format!("sqlite://{}", base.join(rest).display());
            }
        }
        let mut upstreams = vec![&mut config.upstream.aidant];
        if let Some(fc) = config.upstream.franceconnect.as_mut() {
            upstreams.push(fc);
        }
        for upstream in upstreams {
            resolve_secret_file(
                &mut upstream.client_secret_file,
                &mut upstream.client_secret,
                "upstream.*.client_secret_file",
                base,
                &name,
            )?;
        }
        for client in &mut config.clients {
            resolve_secret_file(
                &mut client.client_secret_file,
                &mut client.client_secret,
                "clients[].client_secret_file",
                base,
                &name,
            )?;
        }
        let mut problems = config.problems();
        let mut seen = std::collections::HashSet::new();
        problems.retain(|p| seen.insert(p.clone()));
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                file: name,
                problems,
            });
        }
        for c in &mut config.clients {
            c.pairwise_sector = (c.subject_type == SubjectType::Pairwise)
                .then(|| c.sector())
                .flatten();
        }
        Ok(config)
    }
}

/// Reads `client_secret_file` (relative to the config file) into `client_secret`, unless a
/// non-empty secret was given directly (an empty variable, as compose makes of an unset one,
/// counts as none): `IDP_PROXY_…__CLIENT_SECRET` overrides the file as the
/// environment overrides every other key, so one config serves hosts with either.
fn resolve_secret_file(
    file: &mut Option<PathBuf>,
    secret: &mut Option<String>,
    key: &str,
    base: &Path,
    name: &str,
) -> Result<(), ConfigError> {
    {
        if let Some(path) = file
            .take()
            .filter(|_| secret.as_deref().is_none_or(str::is_empty))
        {
            let path = if path.is_relative() {
                base.join(path)
            } else {
                path
            };
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                    file: name.to_string(),
                    key: key.into(),
                    path: path.display().to_string(),
                    source,
                })?;
            *secret = Some(text.trim().to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mandate_store::{Demarche, Level};

    pub(crate) fn write(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("c.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"
issuer = "http://127.0.0.1:8080"
[database]
url = "sqlite://db.sqlite"
[keys]
dir = "keys"
[upstream.aidant]
issuer = "http://127.0.0.1:9100"
client_id = "idp-proxy"
client_secret = "s"
[[clients]]
client_id = "sp"
client_secret_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
redirect_uris = ["http://127.0.0.1:9200/callback"]
demarches = ["argent"]
"#;

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(&write(dir.path(), BASE)).unwrap();
        assert_eq!(c.keys.dir, dir.path().join("keys"));
        assert_eq!(
            c.database.url,
            format!("sqlite://{}", dir.path().join("db.sqlite").display())
        );
        assert_eq!(c.clients[0].id_token_signed_response_alg, SigningAlg::ES256);
        assert!(c.clients[0].pkce_required);
    }

    #[test]
    fn a_secret_given_directly_wins_over_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "from-file\n").unwrap();
        // The aidant IdP's secret, its `client_secret = "s"` line replaced by `lines`.
        let secret = |lines: &str| {
            let body = BASE.replace("client_secret = \"s\"", lines);
            Config::load(&write(dir.path(), &body))
                .unwrap()
                .upstream
                .aidant
                .client_secret
        };
        let given = "client_secret = \"s\"\nclient_secret_file = \"/nonexistent/secret\"";
        assert_eq!(secret(given).as_deref(), Some("s"));
        let file = "client_secret_file = \"secret\"";
        assert_eq!(secret(file).as_deref(), Some("from-file"));
        let empty = "client_secret = \"\"\nclient_secret_file = \"secret\"";
        assert_eq!(secret(empty).as_deref(), Some("from-file"));
    }

    #[test]
    fn http_issuer_outside_loopback_is_refused_with_key_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE.replace(
            "issuer = \"http://127.0.0.1:8080\"",
            "issuer = \"http://idp.example\"",
        );
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.issuer"), "{err}");
        assert!(err.contains("Fix:"), "{err}");
    }

    #[test]
    fn production_sections_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &str| {
            let body = BASE.replace("[keys]", &format!("{extra}\n[keys]"));
            Config::load(&write(dir.path(), &body))
        };
        let c = with(
            "[ephemeral]\nbackend = \"redis-cluster\"\nurl = \"redis://a:6379, rediss://b:6380\"\n\
             [metrics]\nlisten = \"127.0.0.1:9464\"",
        )
        .unwrap();
        assert_eq!(c.ephemeral.backend, EphemeralBackend::RedisCluster);
        assert_eq!(c.metrics.map(|m| m.listen.port()), Some(9464));
        let pool = c.database.pool_options();
        assert_eq!(pool.acquire_timeout, std::time::Duration::from_secs(5));
        assert_eq!(
            pool.statement_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert!(c.database.migrate_at_start);

        let err = with("[ephemeral]\nbackend = \"redis-cluster\"\nurl = \"redis://a:6379,b:6379\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ephemeral.url"), "{err}");
        let err = with("[metrics]\nlisten = \"0.0.0.0:8080\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics.listen"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE
            .replace(
                "0000000000000000000000000000000000000000000000000000000000000000",
                "nothex",
            )
            .replace("demarches = [\"argent\"]", "demarches = []")
            + "[retention]\ndays = 100\n[tokens]\ncode_ttl_secs = 0\n";
        let err = Config::load(&write(dir.path(), &body)).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tokens.code_ttl_secs",
                "retention.days",
                "clients[0].demarches",
                "clients[0].client_secret_sha256"
            ]
        );
        let text = err.to_string();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.lines().all(|l| l.contains("Fix:")), "{text}");
    }

    #[test]
    fn a_value_of_the_wrong_kind_names_its_key_as_the_checks_do() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE.replace(
            "demarches = [\"argent\"]",
            "demarches = [\"argent\"]\nallowed_acr = [\"eidas1\", \"substantial\"]",
        );
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`clients[0].allowed_acr[1]`"), "{err}");
        assert!(err.contains("eidas1"), "{err}");
    }

    #[test]
    fn unknown_demarche_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE.replace("demarches = [\"argent\"]", "demarches = [\"casino\"]");
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("casino"), "{err}");
    }

    #[test]
    fn bad_secret_hash_names_the_client_key() {
        let dir = tempfile::tempdir().unwrap();
        let body = BASE.replace(
            "0000000000000000000000000000000000000000000000000000000000000000",
            "nothex",
        );
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].client_secret_sha256"), "{err}");
    }

    #[test]
    fn a_client_access_token_lifetime_stays_within_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let with = |ttl: &str| {
            BASE.replace(
                "demarches = [\"argent\"]",
                &format!("demarches = [\"argent\"]\naccess_token_ttl_secs = {ttl}"),
            )
        };
        let c = Config::load(&write(dir.path(), &with("30"))).unwrap();
        assert_eq!(
            c.clients[0].access_token_ttl(&c.tokens),
            std::time::Duration::from_secs(30)
        );
        let err = Config::load(&write(dir.path(), &with("100000")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].access_token_ttl_secs"), "{err}");
    }

    #[test]
    fn pairwise_subjects_need_one_sector() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &str| {
            BASE.replace(
                "demarches = [\"argent\"]",
                &format!("demarches = [\"argent\"]\nsubject_type = \"pairwise\"\n{extra}"),
            )
        };
        // One redirect host: that host is the sector.
        let c = Config::load(&write(dir.path(), &with(""))).unwrap();
        assert!(c.clients[0].sector().is_some());
        let c = Config::load(&write(dir.path(), &with("sector = \"impots\""))).unwrap();
        assert_eq!(c.clients[0].sector().as_deref(), Some("impots"));
        let two_hosts = with("").replace(
            "redirect_uris = [",
            "redirect_uris = [\"https://other.example/cb\", ",
        );
        let err = Config::load(&write(dir.path(), &two_hosts))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].sector"), "{err}");
    }

    #[test]
    fn retention_keeps_a_running_mandate_s_journal() {
        let dir = tempfile::tempdir().unwrap();
        let body = format!("{BASE}\n[retention]\ndays = 100\n");
        let err = Config::load(&write(dir.path(), &body))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention.days"), "{err}");
    }

    #[test]
    fn the_franceconnect_client_example_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let example = include_str!("../../../config/franceconnect.example.toml");
        let c = Config::load(&write(dir.path(), &format!("{BASE}\n{example}"))).unwrap();
        let fc = c.client("franceconnect").unwrap();
        assert_eq!(fc.token_endpoint_auth_method, ClientAuth::ClientSecretPost);
        assert_eq!(fc.userinfo_signed_response_alg, Some(SigningAlg::ES256));
        assert_eq!(fc.demarches.len(), Demarche::ALL.len());
        assert!(fc.franceconnect);
        assert_eq!(fc.acr_range(), (Level::Eidas1, Level::Eidas1));
        assert!(!fc.pkce_required);
    }
}
