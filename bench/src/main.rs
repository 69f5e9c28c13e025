//! Load generator behind BENCHMARKS.md. Virtual browsers log in once (at the upstream IdP for
//! idp-proxy, at the provider itself for a plain OpenID Provider), then the run measures
//! (1) full démarche flows — authorize → [choice page → choice] → token → userinfo — and
//! (2) the token endpoint alone, with codes minted beforehand. It drives any code-flow OP that
//! answers with redirects and simple forms: idp-proxy's choice form and dev/upstream.mjs's login
//! form are recognised. Not part of the service.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use clap::Parser;
use url::Url;

#[derive(Parser, Clone)]
struct Args {
    /// Issuer of the provider under test.
    #[arg(long)]
    issuer: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    #[arg(long)]
    redirect_uri: String,
    #[arg(long, default_value = "openid profile email")]
    scope: String,
    /// Account to log in with at the development IdP.
    #[arg(long, default_value = "abdel")]
    login: String,
    /// Virtual browsers (concurrent connections).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of full flows.
    #[arg(long, default_value_t = 10)]
    flow_seconds: u64,
    /// Codes minted, then redeemed as fast as possible at the token endpoint.
    #[arg(long, default_value_t = 40000)]
    token_requests: usize,
    /// Mint and redeem in batches of this many codes (an OP whose code store is an LRU of a
    /// few thousand entries, like oidc-provider's in-memory adapter, needs small batches).
    #[arg(long)]
    token_batch: Option<usize>,
    /// Only mint `token_requests` codes and write them to this file ("code verifier" lines)
    /// for an external load generator (bench/token.lua with wrk).
    #[arg(long)]
    codes_out: Option<std::path::PathBuf>,
    /// Optional target rate (flows per second) for a latency run at a fixed load.
    #[arg(long)]
    flow_rate: Option<u64>,
    /// PID of the server, to report its peak resident memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Label printed with the results.
    #[arg(long, default_value = "provider")]
    label: String,
    /// Nodes serving the issuer (host:port, comma-separated): requests to the issuer's origin
    /// go to each in turn, as behind a round-robin load balancer without its cost.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// PIDs of further server processes (other nodes), for their peak memory.
    #[arg(long, value_delimiter = ',')]
    more_pids: Vec<u32>,
}

/// Client-side round robin over the nodes serving the issuer's origin.
struct Front {
    origin: String,
    nodes: Vec<String>,
    next: AtomicUsize,
}

impl Front {
    fn route(&self, url: &Url) -> Result<Url> {
        if self.nodes.is_empty() || origin(url) != self.origin {
            return Ok(url.clone());
        }
        let node = &self.nodes[self.next.fetch_add(1, Ordering::Relaxed) % self.nodes.len()];
        let mut to = url.clone();
        let (host, port) = node
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("node {node}: expected host:port"))?;
        to.set_host(Some(host))?;
        to.set_port(Some(port.parse()?))
            .map_err(|()| anyhow!("node {node}: bad port"))?;
        Ok(to)
    }
}

struct Browser {
    http: reqwest::Client,
    front: Arc<Front>,
    cookies: Mutex<HashMap<String, HashMap<String, String>>>,
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

fn origin(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl Browser {
    fn new(front: Arc<Front>) -> Result<Browser> {
        Ok(Browser {
            front,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(4)
                .build()?,
            cookies: Mutex::new(HashMap::new()),
        })
    }

    async fn send(&self, url: &Url, form: Option<String>, auth: Option<String>) -> Result<Reply> {
        let to = self.front.route(url)?;
        let mut req = match &form {
            Some(body) => self
                .http
                .post(to)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone()),
            None => self.http.get(to),
        };
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let jar = {
            let cookies = self.cookies.lock().map_err(|_| anyhow!("poisoned"))?;
            cookies.get(&origin(url)).map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        };
        if let Some(c) = jar.filter(|c| !c.is_empty()) {
            req = req.header("cookie", c);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        {
            let mut cookies = self.cookies.lock().map_err(|_| anyhow!("poisoned"))?;
            let host = cookies.entry(origin(url)).or_default();
            for sc in res.headers().get_all("set-cookie") {
                let sc = sc.to_str().unwrap_or("");
                let pair = sc.split(';').next().unwrap_or("");
                if let Some((k, v)) = pair.split_once('=') {
                    let expired =
                        sc.to_ascii_lowercase().contains("max-age=0") || sc.contains("1970");
                    if v.is_empty() || expired {
                        host.remove(k.trim());
                    } else {
                        host.insert(k.trim().to_string(), v.to_string());
                    }
                }
            }
        }
        let location = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let body = res.text().await?;
        Ok(Reply {
            status,
            location,
            body,
        })
    }
}

fn attr<'a>(html: &'a str, before: &str, attr: &str) -> Option<&'a str> {
    let at = html.find(before)?;
    let rest = &html[at..];
    let start = rest.find(&format!("{attr}=\""))? + attr.len() + 2;
    let end = rest[start..].find('"')?;
    Some(&rest[start..start + end])
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

struct Code {
    code: String,
    verifier: String,
}

fn pkce() -> (String, String) {
    let mut v = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut v).ok();
    let verifier = URL_SAFE_NO_PAD.encode(v);
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    (verifier, challenge)
}

/// Runs an authorization request to its code, answering the pages on the way.
async fn to_code(b: &Browser, a: &Args, authorize: &Url) -> Result<Code> {
    let (verifier, challenge) = pkce();
    let mut url = authorize.clone();
    url.query_pairs_mut()
        .append_pair("client_id", &a.client_id)
        .append_pair("redirect_uri", &a.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", &a.scope)
        .append_pair("state", "bench-state")
        .append_pair("nonce", "bench-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut form: Option<String> = None;
    for _ in 0..16 {
        let r = b.send(&url, form.take(), None).await?;
        if let Some(loc) = r.location {
            let next = url.join(&loc)?;
            if next.as_str().starts_with(&a.redirect_uri) {
                let code = next
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
                    .ok_or_else(|| anyhow!("redirect without code: {next}"))?;
                return Ok(Code { code, verifier });
            }
            url = next;
            continue;
        }
        if r.status != 200 {
            bail!(
                "{} at {}: {}",
                r.status,
                url,
                &r.body[..r.body.len().min(300)]
            );
        }
        if let Some(csrf) = attr(&r.body, "name=\"csrf\"", "value") {
            // idp-proxy's choice page: the first usager and démarche offered.
            let choice = attr(&r.body, "name=\"choice\"", "value")
                .ok_or_else(|| anyhow!("no usager to choose"))?;
            let action = attr(&r.body, "<form method=\"post\"", "action")
                .ok_or_else(|| anyhow!("no form"))?;
            form = Some(format!(
                "csrf={}&choice={}&certify=yes",
                enc(csrf),
                enc(choice)
            ));
            url = url.join(action)?;
        } else if let Some(action) = attr(&r.body, "<form method=\"post\"", "action") {
            // The development IdP's login page.
            form = Some(format!("sub={}", enc(&a.login)));
            url = url.join(action)?;
        } else {
            bail!("unexpected page at {url}");
        }
    }
    bail!("too many steps")
}

async fn redeem(b: &Browser, a: &Args, token_url: &Url, c: &Code) -> Result<String> {
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        enc(&c.code),
        enc(&a.redirect_uri),
        enc(&c.verifier)
    );
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(&a.client_id), enc(&a.client_secret)))
    );
    let r = b.send(token_url, Some(body), Some(basic)).await?;
    if r.status != 200 {
        bail!("token {}: {}", r.status, r.body);
    }
    let v: serde_json::Value = serde_json::from_str(&r.body)?;
    if v.get("id_token").is_none() {
        bail!("no id_token");
    }
    v.get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no access_token"))
}

async fn userinfo(b: &Browser, url: &Url, at: &str) -> Result<()> {
    let r = b.send(url, None, Some(format!("Bearer {at}"))).await?;
    if r.status != 200 {
        bail!("userinfo {}: {}", r.status, r.body);
    }
    Ok(())
}

struct Endpoints {
    authorize: Url,
    token: Url,
    userinfo: Url,
}

fn report(label: &str, what: &str, mut lat: Vec<u32>, elapsed: Duration, errors: usize) {
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| {
        lat.get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{label} | {what} | {n} ok, {errors} errors | {:.0}/s | p50 {:.2} ms | p99 {:.2} ms",
        n as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}

/// Peak RSS of each server process given (`--pid`, then `--more-pids`).
fn peaks(a: &Args) -> Vec<String> {
    a.pid
        .into_iter()
        .chain(a.more_pids.iter().copied())
        .filter_map(|pid| peak_rss(Some(pid)).map(|m| format!("{m} (pid {pid})")))
        .collect()
}

fn peak_rss(pid: Option<u32>) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Arc::new(Args::parse());
    let front = Arc::new(Front {
        origin: origin(&Url::parse(&a.issuer)?),
        nodes: a.nodes.clone(),
        next: AtomicUsize::new(0),
    });
    let discovery_url = Url::parse(&format!("{}/.well-known/openid-configuration", a.issuer))?;
    let discovery: serde_json::Value = reqwest::get(front.route(&discovery_url)?)
        .await?
        .json()
        .await
        .context("discovery")?;
    let ep = |k: &str| -> Result<Url> {
        Ok(Url::parse(
            discovery[k].as_str().ok_or_else(|| anyhow!("no {k}"))?,
        )?)
    };
    let e = Arc::new(Endpoints {
        authorize: ep("authorization_endpoint")?,
        token: ep("token_endpoint")?,
        userinfo: ep("userinfo_endpoint")?,
    });

    // Log every virtual browser in once.
    let mut browsers = Vec::new();
    for _ in 0..a.concurrency {
        let b = Browser::new(front.clone())?;
        to_code(&b, &a, &e.authorize).await.context("login")?;
        browsers.push(Arc::new(b));
    }

    if let Some(path) = &a.codes_out {
        let per = a.token_requests / a.concurrency;
        let mut tasks = Vec::new();
        for b in &browsers {
            let (b, a, e) = (b.clone(), a.clone(), e.clone());
            tasks.push(tokio::spawn(async move {
                let mut lines = String::new();
                for _ in 0..per {
                    let c = to_code(&b, &a, &e.authorize).await?;
                    lines.push_str(&format!("{} {}\n", c.code, c.verifier));
                }
                Ok::<_, anyhow::Error>(lines)
            }));
        }
        let mut out = String::new();
        for t in tasks {
            out.push_str(&t.await??);
        }
        std::fs::write(path, out)?;
        return Ok(());
    }

    // 1. Full flows for a fixed time (optionally paced to a target rate).
    let deadline = Instant::now() + Duration::from_secs(a.flow_seconds);
    let started = Instant::now();
    let errors = Arc::new(AtomicUsize::new(0));
    let pace = a
        .flow_rate
        .map(|r| Duration::from_secs_f64(a.concurrency as f64 / r as f64));
    let mut tasks = Vec::new();
    for (i, b) in browsers.iter().enumerate() {
        let (b, a, e, errors) = (b.clone(), a.clone(), e.clone(), errors.clone());
        // Paced browsers start staggered, so the offered load is even, not in bursts.
        let offset = pace.map(|p| p.mul_f64(i as f64 / a.concurrency as f64));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut next = Instant::now() + offset.unwrap_or_default();
            while Instant::now() < deadline {
                if let Some(p) = pace {
                    tokio::time::sleep_until(next.into()).await;
                    next += p;
                }
                let t = Instant::now();
                let r = async {
                    let c = to_code(&b, &a, &e.authorize).await?;
                    let at = redeem(&b, &a, &e.token, &c).await?;
                    userinfo(&b, &e.userinfo, &at).await
                }
                .await;
                match r {
                    Ok(()) => lat.push(t.elapsed().as_micros() as u32),
                    Err(err) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first flow error: {err:#}");
                        }
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let what = match a.flow_rate {
        Some(r) => format!("full flow at {r}/s offered"),
        None => "full flow".to_string(),
    };
    report(
        &a.label,
        &what,
        lat,
        started.elapsed(),
        errors.load(Ordering::Relaxed),
    );
    for m in peaks(&a) {
        println!("{} | peak RSS after the flows | {m}", a.label);
    }
    if a.flow_rate.is_some() || a.token_requests == 0 {
        return Ok(());
    }

    // 2. Mint codes, then redeem them as fast as possible; only redeeming is timed.
    let batch = a.token_batch.unwrap_or(a.token_requests).max(a.concurrency);
    let errors = Arc::new(AtomicUsize::new(0));
    let mut lat = Vec::new();
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < a.token_requests {
        let per = batch / a.concurrency;
        done += per * a.concurrency;
        let mut tasks = Vec::new();
        for b in &browsers {
            let (b, a, e) = (b.clone(), a.clone(), e.clone());
            tasks.push(tokio::spawn(async move {
                let mut codes = Vec::with_capacity(per);
                for _ in 0..per {
                    if let Ok(c) = to_code(&b, &a, &e.authorize).await {
                        codes.push(c);
                    }
                }
                codes
            }));
        }
        let mut minted = Vec::new();
        for t in tasks {
            minted.push(t.await?);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (b, codes) in browsers.iter().zip(minted) {
            let (b, a, e, errors) = (b.clone(), a.clone(), e.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(codes.len());
                for c in codes {
                    let t = Instant::now();
                    match redeem(&b, &a, &e.token, &c).await {
                        Ok(_) => lat.push(t.elapsed().as_micros() as u32),
                        Err(err) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("first token error: {err:#}");
                            }
                        }
                    }
                }
                lat
            }));
        }
        for t in tasks {
            lat.extend(t.await?);
        }
        timed += started.elapsed();
    }
    report(
        &a.label,
        "token endpoint",
        lat,
        timed,
        errors.load(Ordering::Relaxed),
    );
    for m in peaks(&a) {
        println!(
            "{} | peak RSS with a batch of codes outstanding | {m}",
            a.label
        );
    }
    Ok(())
}
