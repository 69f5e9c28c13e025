// End-to-end test harness for idp-proxy (used by tests/e2e/*.test.mjs, run with
// `node --test tests/e2e/`). It runs the real binary against the development aidant IdP
// (dev/upstream.mjs) and plays the service provider with openid-client v5 and the browser with a
// cookie jar over fetch. The npm packages come from dev/node_modules: run `npm ci --prefix dev`
// first.
//
// Environment:
//   IDP_PROXY_BIN      the binary (default <repo>/target/debug/idp-proxy)
//   E2E_DATABASE_URL   a PostgreSQL server URL (postgres://user:pass@127.0.0.1:5432/postgres):
//                      each proxy gets a fresh database on it (created and dropped with psql)
//   E2E_KEEP_TMP=1     keep the temporary directories (config, keys, SQLite file, logs)
//   E2E_VERBOSE=1      echo the proxy's stderr/stdout as it runs

import { spawn, execFile, execFileSync } from 'node:child_process';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startUpstream } from '../../dev/upstream.mjs';

const devRequire = createRequire(new URL('../../dev/package.json', import.meta.url));
let openidClient;
let jose;
try {
  openidClient = devRequire('openid-client');
  jose = devRequire('jose');
} catch (err) {
  throw new Error(`tests/e2e needs the packages of dev/: run \`npm ci --prefix dev\` (${err.message})`);
}
export const { Issuer, generators, errors, custom } = openidClient;
export { jose, startUpstream };

custom.setHttpOptionsDefaults({ timeout: 10_000 });

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = process.env.IDP_PROXY_BIN || join(REPO_ROOT, 'target', 'debug', 'idp-proxy');

const VERBOSE = process.env.E2E_VERBOSE === '1';
const KEEP_TMP = process.env.E2E_KEEP_TMP === '1';

/** Throws a clear error when the binary is missing (call it in `before`). */
export function assertBinary() {
  if (!existsSync(BIN)) {
    throw new Error(`idp-proxy binary not found at ${BIN}: build it first (cargo build -p idp-proxy) or set IDP_PROXY_BIN`);
  }
}

export function sha256hex(text) {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A free TCP port on 127.0.0.1 (listen on 0, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// TOML (the small subset the config and import files need)

function tomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v); // JSON escapes are valid TOML basic strings
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`TOML: bad number ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (v && typeof v === 'object') return `{ ${tomlPairs(v).split('\n').join(', ')} }`; // inline table
  throw new TypeError(`TOML: unsupported value ${JSON.stringify(v)}`);
}

function tomlPairs(obj) {
  return Object.entries(obj)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k)} = ${tomlValue(v)}`)
    .join('\n');
}

/**
 * Serialises { table: {k: v}, arrayOfTables: [{k: v}, …] } where a key of the form "a.b" names
 * a dotted table header ([upstream.aidant]).
 */
export function toToml(doc) {
  const out = [];
  for (const [name, value] of Object.entries(doc)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value) && value.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      for (const item of value) out.push(`[[${name}]]\n${tomlPairs(item)}\n`);
    } else if (typeof value === 'object' && !Array.isArray(value)) {
      out.push(`[${name}]\n${tomlPairs(value)}\n`);
    } else {
      throw new TypeError(`TOML: top-level ${name} must be a table or an array of tables`);
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (only with E2E_DATABASE_URL)

function psql(serverUrl, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', [serverUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql failed (${sql}): ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

export async function createPgDatabase(serverUrl) {
  const name = `idp_proxy_e2e_${Date.now()}_${randomBytes(4).toString('hex')}`;
  await psql(serverUrl, `CREATE DATABASE ${name}`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: () => psql(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Servers of the test's own, to stop and restart under a running proxy (outages.test.mjs)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

/** Resolves when `child` has exited; after `ms`, sends `signal` (then SIGKILL 5 s later). */
async function waitExit(child, { ms = 10_000, signal = 'SIGKILL' } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  const t1 = setTimeout(() => child.kill(signal), ms);
  const t2 = setTimeout(() => child.kill('SIGKILL'), ms + 5000);
  await exited;
  clearTimeout(t1);
  clearTimeout(t2);
}

/**
 * A redis-server of the test's own on a free port of 127.0.0.1.
 *
 * By default without persistence: `kill()` is a SIGKILL (all its data gone), `start()` brings a
 * fresh, empty one up on the same port.
 *
 * `persistent: true` runs it as production should (`--appendonly yes --appendfsync always`, in a
 * temp dir of its own, `dir`): `stop()` is a SIGTERM — Redis flushes its append-only file and
 * exits — and throws unless it exited cleanly (code 0); `start()` brings it up again on the same
 * port and dir, with the data it had (codes, sessions, their remaining lifetimes).
 *
 * `pause(ms)` is `CLIENT PAUSE ms ALL` (through redis-cli): from then on every client's commands
 * — the proxy's, and redis-cli's own — wait unexecuted until the pause ends; a `stop()` during
 * the pause exits without ever executing them. `cli(...args)` runs one redis-cli command and
 * resolves with its output (only while Redis is not paused).
 * @returns {Promise<{url, port, dir, start(), stop(), pause(ms), cli(...args), kill(), close(), logs()}>}
 */
export async function startRedis({ port, persistent = false, tls, password } = {}) {
  port ??= await freePort();
  const dir = persistent ? mkdtempSync(join(tmpdir(), 'idp-proxy-e2e-redis-')) : null;
  // `tls` ({ cert, key, ca }): TLS only, on `port`; `password`: requirepass.
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
      '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']
    : ['--port', String(port)];
  const args = [...listen, '--bind', '127.0.0.1', '--save', ''];
  if (password) args.push('--requirepass', password);
  if (persistent) args.push('--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir);
  else args.push('--appendonly', 'no');
  let log = '';
  let child = null;
  const onExit = () => child?.kill('SIGKILL');
  process.on('exit', onExit);
  const running = () => child && child.exitCode === null && child.signalCode === null;
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    logs: () => log,
    async start() {
      if (running()) return;
      child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (d) => {
        log = (log + d).slice(-20_000);
        if (VERBOSE) process.stderr.write(`[redis] ${d}`);
      };
      child.stdout.setEncoding('utf8').on('data', keep);
      child.stderr.setEncoding('utf8').on('data', keep);
      child.once('error', (e) => { log += `\nspawn error: ${e.message}`; });
      for (let i = 0; i < 100; i++) {
        if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}) on port ${port}\n${log}`);
        if (await tcpOpen(port)) return;
        await sleep(50);
      }
      throw new Error(`redis-server did not start on ${port}\n${log}`);
    },
    /** SIGTERM, and its exit awaited: with persistence, its data is on disk. */
    async stop() {
      if (!running()) return;
      const c = child;
      c.kill('SIGTERM');
      await waitExit(c, { ms: 10_000, signal: 'SIGKILL' });
      if (c.exitCode !== 0) {
        throw new Error(`redis-server did not stop cleanly on SIGTERM (code ${c.exitCode}, signal ${c.signalCode})\n${log.slice(-2000)}`);
      }
    },
    async pause(ms) {
      const out = await redis.cli('CLIENT', 'PAUSE', String(ms), 'ALL');
      if (out !== 'OK') throw new Error(`CLIENT PAUSE ${ms} ALL answered ${JSON.stringify(out)}`);
    },
    cli(...cmd) {
      return new Promise((resolve, reject) => {
        execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...cmd], { timeout: 5000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`redis-cli ${cmd.join(' ')}: ${stderr || err.message}`));
          else resolve(stdout.trim());
        });
      });
    },
    async kill() {
      if (!child) return;
      child.kill('SIGKILL');
      await waitExit(child);
    },
    async close() {
      await redis.kill();
      process.off('exit', onExit);
      if (dir && !KEEP_TMP) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await redis.start();
  } catch (err) {
    await redis.close();
    throw err;
  }
  return redis;
}

/** The bin directory of the highest PostgreSQL under /usr/lib/postgresql (Debian's layout). */
function postgresBinDir() {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'postgres')) && existsSync(join(bin, 'initdb'))) return bin;
  }
  throw new Error(`no PostgreSQL server found under ${root}/*/bin (apt-get install postgresql)`);
}

/**
 * A PostgreSQL server of the test's own (never the machine's shared one): initdb in a temp dir,
 * trust authentication, on a free port of 127.0.0.1. `stop()` is a fast shutdown (SIGINT: the
 * sessions are terminated), `start()` brings it up again on the same directory and port. As
 * root, initdb and postgres run as the `postgres` OS user (spawn's uid/gid: the child is the
 * postmaster itself, so the signals reach it directly, with no su/runuser in between).
 * @returns {Promise<{url, port, dir, start(), stop(), close(), logs()}>}
 */
export async function startPostgres({ port } = {}) {
  const bin = postgresBinDir();
  port ??= await freePort();
  const base = mkdtempSync(join(tmpdir(), 'idp-proxy-e2e-pg-'));
  const data = join(base, 'data');
  const ids = {};
  if (process.getuid?.() === 0) {
    ids.uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    ids.gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(base, ids.uid, ids.gid);
  }
  const env = { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C' };
  let log = '';
  let child = null;
  const onExit = () => child?.kill('SIGQUIT'); // immediate shutdown: the backends follow
  process.on('exit', onExit);

  const cleanup = () => {
    process.off('exit', onExit);
    if (!KEEP_TMP) rmSync(base, { recursive: true, force: true });
  };
  await new Promise((resolve, reject) => {
    execFile(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { ...ids, cwd: base, env, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`initdb failed: ${stderr || err.message}`));
        else resolve();
      });
  }).catch((err) => { cleanup(); throw err; });

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const selectOne = () => new Promise((resolve) => {
    execFile('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-Atc', 'select 1'],
      { timeout: 5000, env: { ...process.env, PGCONNECT_TIMEOUT: '2' } }, (err, stdout) => resolve(!err && stdout.trim() === '1'));
  });

  const pg = {
    url,
    port,
    dir: base,
    logs: () => log,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      child = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', base,
        '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'full_page_writes=off'],
      { ...ids, cwd: base, env, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.setEncoding('utf8').on('data', (d) => {
        log = (log + d).slice(-20_000);
        if (VERBOSE) process.stderr.write(`[postgres] ${d}`);
      });
      child.once('error', (e) => { log += `\nspawn error: ${e.message}`; });
      for (let i = 0; i < 200; i++) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`postgres exited (${child.exitCode ?? child.signalCode}) on port ${port}\n${log}`);
        }
        if (await tcpOpen(port) && await selectOne()) return;
        await sleep(100);
      }
      throw new Error(`postgres did not accept connections on ${port} within 20 s\n${log}`);
    },
    async stop() {
      if (!child) return;
      child.kill('SIGINT'); // fast shutdown; SIGQUIT (immediate) if it lingers
      await waitExit(child, { ms: 10_000, signal: 'SIGQUIT' });
    },
    async close() {
      await pg.stop();
      cleanup();
    },
  };
  try {
    await pg.start();
  } catch (err) {
    await pg.stop().catch(() => {});
    cleanup();
    throw err;
  }
  return pg;
}

// ---------------------------------------------------------------------------------------------
// The binary

function childEnv() {
  // IDP_PROXY_* variables override the configuration: never leak ours (IDP_PROXY_BIN…) into it.
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('IDP_PROXY_')) env[k] = v;
  env.RUST_BACKTRACE ??= '1';
  return env;
}

function run(args, { cwd, timeout = 120_000 } = {}) {
  return new Promise((resolve) => {
    execFile(BIN, args, { cwd, env: childEnv(), timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr, signal: err?.signal, spawnError: err && typeof err.code === 'string' ? err : undefined });
    });
  });
}

/**
 * Clients as given to startProxy: { client_id, client_secret, name?, token_endpoint_auth_method?,
 * redirect_uris, post_logout_redirect_uris?, demarches, id_token_signed_response_alg?,
 * pkce_required? }. The secret stays here; the config gets its SHA-256.
 */
function clientToml(c) {
  return {
    client_id: c.client_id,
    name: c.name ?? `Service de test ${c.client_id}`,
    client_secret_sha256: c.client_secret ? sha256hex(c.client_secret) : undefined,
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    demarches: c.demarches,
    id_token_signed_response_alg: c.id_token_signed_response_alg ?? 'ES256',
    pkce_required: c.pkce_required ?? true,
    ...(c.access_token_ttl_secs ? { access_token_ttl_secs: c.access_token_ttl_secs } : {}),
    // Keys, JOSE and acr metadata (#4), passed as they are when given.
    ...Object.fromEntries(CLIENT_EXTRA_KEYS.filter((k) => c[k] !== undefined).map((k) => [k, c[k]])),
  };
}

const CLIENT_EXTRA_KEYS = [
  'jwks', 'jwks_uri', 'token_endpoint_auth_signing_alg', 'client_secret_file', 'default_acr_values',
  'franceconnect', 'allowed_acr',
  'subject_type', 'sector', 'sector_identifier_uri', 'backchannel_logout_uri',
  'id_token_encrypted_response_alg', 'id_token_encrypted_response_enc',
  'userinfo_signed_response_alg', 'userinfo_encrypted_response_alg', 'userinfo_encrypted_response_enc',
];

async function waitForDiscovery(issuer, child, stderrRef, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`idp-proxy serve exited early (code ${child.exitCode}, signal ${child.signalCode})\n--- stderr ---\n${stderrRef()}`);
    }
    try {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) { await res.arrayBuffer(); return; }
      lastError = `HTTP ${res.status}`;
      await res.arrayBuffer();
    } catch (err) {
      lastError = err.cause?.code || err.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`idp-proxy did not answer ${issuer}/.well-known/openid-configuration with 200 within ${timeoutMs / 1000} s (last: ${lastError})\n--- stderr ---\n${stderrRef()}`);
}

/** FranceConnect's secret at idp-proxy (its client_id is the example's, `franceconnect`). */
export const FRANCECONNECT_IDP_SECRET = 'franceconnect-idp-secret-for-e2e-tests';

/**
 * The [[clients]] entry of FranceConnect at idp-proxy: config/franceconnect.example.toml as it
 * ships, with the development FranceConnect's URLs (`fcIssuer`, its /api/v2 base) for the real
 * one's and the SHA-256 of `secret`.
 */
export function franceConnectClientToml(fcIssuer, secret) {
  const example = readFileSync(join(REPO_ROOT, 'config', 'franceconnect.example.toml'), 'utf8');
  return example
    .replaceAll('https://oidc.franceconnect.gouv.fr/api/v2', fcIssuer)
    .replace(/client_secret_sha256 = "0{64}"/, `client_secret_sha256 = "${sha256hex(secret)}"`);
}

/**
 * Starts an upstream IdP and an idp-proxy wired to each other.
 * `franceconnect`: true, the development FranceConnect where usagers log in to give mandates;
 * or { serviceProviders } to also register idp-proxy there as the identity provider "Aidants
 * Connect" for these service providers (clients of FranceConnect, each with its `rep_scope`),
 * and FranceConnect at idp-proxy with config/franceconnect.example.toml.
 * @returns {Promise<{proxy, upstream, franceconnect, stop()}>}
 */
export async function startWorld({ clients, importToml, upstreamAccounts, database, config, franceconnect } = {}) {
  assertBinary();
  const port = await freePort();
  const proxyUrl = `http://127.0.0.1:${port}`;
  // The development FranceConnect (v2: signed then encrypted ID token and userinfo), when asked.
  let fc = null;
  let extraToml = '';
  if (franceconnect) {
    const { startFranceConnect, defaultClients, aidantsConnect } = await import('../../dev/franceconnect.mjs');
    const { serviceProviders } = franceconnect === true ? {} : franceconnect;
    const secret = FRANCECONNECT_IDP_SECRET;
    fc = await startFranceConnect({
      port: 0,
      quiet: !VERBOSE,
      clients: [...defaultClients(proxyUrl), ...(serviceProviders ?? [])],
      identityProviders: serviceProviders ? [aidantsConnect({ issuer: proxyUrl, client_secret: secret })] : [],
    });
    if (serviceProviders) extraToml = franceConnectClientToml(fc.issuer, secret);
    config = {
      ...config,
      'upstream.franceconnect': {
        issuer: fc.issuer,
        client_id: 'idp-proxy',
        client_secret: 'dev-franceconnect-secret-change-me',
        scopes: ['openid', 'identite_pivot', 'email', 'idp_birthdate'],
        token_endpoint_auth_method: 'client_secret_post',
        acr_values: 'eidas1',
        always_prompt_login: true,
        userinfo: true,
      },
    };
  }
  const upstream = await startUpstream({
    port: 0,
    quiet: !VERBOSE,
    accounts: upstreamAccounts,
    clients: [{
      client_id: 'idp-proxy',
      client_secret: 'dev-upstream-secret-change-me',
      redirect_uris: [`http://127.0.0.1:${port}/login/callback`],
      post_logout_redirect_uris: [`http://127.0.0.1:${port}/logout/callback`],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    }],
  });
  let proxy;
  try {
    proxy = await startProxy({ port, clients, upstreamIssuer: upstream.issuer, importToml, database, config, extraToml });
  } catch (err) {
    await upstream.close();
    await fc?.close();
    throw err;
  }
  return {
    proxy,
    upstream,
    franceconnect: fc,
    async stop() {
      await proxy.stop();
      await upstream.close();
      await fc?.close();
    },
  };
}

/**
 * Writes a config, generates keys, imports mandates and runs `idp-proxy serve`.
 * @param {object} o
 * @param {object[]} o.clients see clientToml
 * @param {string} o.upstreamIssuer
 * @param {string|object} [o.importToml] import file: TOML text, or an object for toToml
 * @param {string} [o.database] database URL (default: SQLite file in the temp dir, or a fresh
 *   PostgreSQL database when E2E_DATABASE_URL is set)
 * @param {number} [o.port] (default: a free port)
 * @param {object} [o.config] extra/overriding tables, e.g. { tokens: { code_ttl_secs: 5 } }
 * @param {string} [o.extraToml] TOML appended to the config as it is ([[clients]] blocks)
 */
export async function startProxy({ clients, upstreamIssuer, importToml, database, port, config = {}, extraToml = '' }) {
  assertBinary();
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'idp-proxy-e2e-'));
  const issuer = `http://127.0.0.1:${port}`;
  const configPath = join(dir, 'idp-proxy.toml');

  let pg;
  if (!database && process.env.E2E_DATABASE_URL) {
    pg = await createPgDatabase(process.env.E2E_DATABASE_URL);
    database = pg.url;
  }
  database ??= 'sqlite://idp-proxy.sqlite';

  const cfg = {
    server: { listen: `127.0.0.1:${port}`, issuer },
    database: { url: database },
    keys: { dir: 'keys' },
    tokens: { code_ttl_secs: 60, access_token_ttl_secs: 300, id_token_ttl_secs: 300 },
    session: { idle_timeout_secs: 900 },
    // The seeded world keeps an expired mandate to test refusals: no purge behind the tests' back.
    retention: { automatic: false },
    // Every test runs from 127.0.0.1 as a handful of aidants: only rate-limits.test.mjs limits.
    rate_limits: { per_client: 1000000, per_ip: 1000000, per_aidant: 1000000 },
    'upstream.aidant': {
      issuer: upstreamIssuer,
      client_id: 'idp-proxy',
      client_secret: 'dev-upstream-secret-change-me',
      scopes: ['openid', 'email', 'profile'],
    },
  };
  // E2E_REDIS_URL: the short-lived state in a real Redis, under a prefix of this proxy's own.
  if (process.env.E2E_REDIS_URL) {
    cfg.ephemeral = { backend: 'redis', url: process.env.E2E_REDIS_URL, prefix: `idp-proxy-e2e:${randomBytes(6).toString('hex')}:` };
  }
  for (const [k, v] of Object.entries(config)) {
    cfg[k] = v && typeof v === 'object' && !Array.isArray(v) ? { ...cfg[k], ...v } : v;
  }
  cfg.clients = clients.map(clientToml);
  writeFileSync(configPath, `${toToml(cfg)}\n${extraToml}`);

  const cleanup = async () => {
    if (pg) await pg.drop();
    if (!KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };

  const cliResult = (args, opts) => run(['--config', configPath, ...args], { cwd: dir, ...opts });
  const cli = async (args, opts) => {
    const r = await cliResult(args, opts);
    if (r.spawnError) throw new Error(`cannot run ${BIN}: ${r.spawnError.message}`);
    if (r.code !== 0) {
      throw new Error(`idp-proxy ${args.join(' ')} exited with ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
    }
    return r.stdout;
  };

  let summary = null;
  try {
    await cli(['keys', 'generate']);
    if (importToml) {
      const importPath = join(dir, 'data.toml');
      writeFileSync(importPath, typeof importToml === 'string' ? importToml : toToml(importToml));
      const out = await cli(['mandates', 'import', importPath]);
      try {
        summary = JSON.parse(out);
      } catch {
        throw new Error(`idp-proxy mandates import: stdout is not the JSON summary:\n${out}`);
      }
    }
  } catch (err) {
    await cleanup();
    throw err;
  }

  let stdout = '';
  let stderr = '';
  const child = spawn(BIN, ['--config', configPath, 'serve'], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; if (VERBOSE) process.stderr.write(`[idp-proxy] ${d}`); });
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; if (VERBOSE) process.stderr.write(`[idp-proxy] ${d}`); });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const spawnFailed = new Promise((resolve) => child.once('error', (e) => { stderr += `\nspawn error: ${e.message}`; resolve(); }));

  // Never leave a server behind, even if the test process dies without running `after`.
  const killOnExit = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.once('exit', killOnExit);

  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await Promise.race([exited, spawnFailed]);
      clearTimeout(t);
    }
    if (KEEP_TMP) writeFileSync(join(dir, 'serve.log'), `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
    await cleanup();
  };

  try {
    await waitForDiscovery(issuer, child, () => stderr);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    issuer,
    port,
    dir,
    configPath,
    summary,
    cli,
    cliResult,
    stop,
    logs: () => ({ stdout, stderr }),
    // The `serve` process itself: its pid, signals sent to it, its exit (shutdown.test.mjs).
    child,
  };
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP: one connection per request (Connection: close), so that a server that answers 413
// before reading a huge body, then closes, cannot break the next request on a reused socket.

/**
 * @returns {Promise<{status:number, headers:Headers, location:string|null, body:string, contentType:string}>}
 */
export function rawRequest(href, { method = 'GET', headers = {}, body, timeout = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(href);
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const h = { connection: 'close', ...headers };
    if (payload) h['content-length'] = String(payload.length);
    let responded = false;
    const req = httpRequest({
      host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers: h, agent: false, timeout,
    }, (res) => {
      responded = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const hs = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          for (const one of Array.isArray(v) ? v : [v]) hs.append(k, one);
        }
        resolve({
          status: res.statusCode,
          headers: hs,
          location: hs.get('location'),
          body: Buffer.concat(chunks).toString('utf8'),
          contentType: hs.get('content-type') || '',
        });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${href.slice(0, 120)}: no answer within ${timeout} ms`)));
    req.on('error', (err) => {
      // EPIPE/ECONNRESET while still sending a huge body, after the answer came: ignore.
      if (!responded) reject(new Error(`${method} ${href.slice(0, 120)}: ${err.code || err.message} (connection closed without an HTTP answer)`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// A browser: fetch with redirect "manual", a cookie jar per host:port

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function defaultCookiePath(url) {
  const p = url.pathname;
  if (!p.startsWith('/') || p.lastIndexOf('/') === 0) return '/';
  return p.slice(0, p.lastIndexOf('/'));
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

export function parseSetCookie(header, url) {
  const [pair, ...attrs] = header.split(';');
  const eq = pair.indexOf('=');
  if (eq < 1) return null;
  const cookie = {
    name: pair.slice(0, eq).trim(),
    value: pair.slice(eq + 1).trim(),
    path: defaultCookiePath(url),
    expires: null,
    secure: false,
    httpOnly: false,
    sameSite: null,
    domain: null,
  };
  for (const attr of attrs) {
    const i = attr.indexOf('=');
    const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? '' : attr.slice(i + 1).trim();
    if (key === 'path' && val.startsWith('/')) cookie.path = val;
    else if (key === 'max-age' && /^-?\d+$/.test(val)) cookie.expires = Date.now() + Number(val) * 1000;
    else if (key === 'expires' && cookie.expires === null) {
      const t = Date.parse(val);
      if (!Number.isNaN(t)) cookie.expires = t;
    } else if (key === 'secure') cookie.secure = true;
    else if (key === 'httponly') cookie.httpOnly = true;
    else if (key === 'samesite') cookie.sameSite = val.toLowerCase();
    else if (key === 'domain') cookie.domain = val.replace(/^\./, '').toLowerCase();
  }
  return cookie;
}

/**
 * Cookies are kept per host:port (the proxy and the upstream IdP are different sites in
 * production; on 127.0.0.1 they differ only by port). `Secure` cookies — `__Host-` ones
 * included — are sent over http to 127.0.0.1 like a browser treats loopback as trustworthy.
 * SameSite is recorded but not enforced: every 127.0.0.1 port is the same site.
 */
export class Browser {
  constructor() {
    this.jar = new Map(); // host:port -> Map(name+path -> cookie)
    this.history = [];
  }

  cookies(origin) {
    const host = new URL(origin).host;
    const now = Date.now();
    return [...(this.jar.get(host)?.values() || [])].filter((c) => c.expires === null || c.expires > now);
  }

  store(url, res) {
    const list = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
    for (const header of list) {
      const c = parseSetCookie(header, url);
      if (!c) continue;
      if (c.name.startsWith('__Host-') && (c.path !== '/' || c.domain || !c.secure)) {
        // A browser would reject it: so do we, so that the proxy's mistakes show up in tests.
        continue;
      }
      if (c.name.startsWith('__Secure-') && !c.secure) continue;
      if (!this.jar.has(url.host)) this.jar.set(url.host, new Map());
      const bucket = this.jar.get(url.host);
      const key = `${c.name};${c.path}`;
      if (c.expires !== null && c.expires <= Date.now()) bucket.delete(key);
      else bucket.set(key, c);
    }
  }

  cookieHeader(url) {
    const now = Date.now();
    const list = [...(this.jar.get(url.host)?.values() || [])]
      .filter((c) => (c.expires === null || c.expires > now) && pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return list.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  /**
   * One request, no redirect followed. `form` (object or URLSearchParams) is sent as
   * application/x-www-form-urlencoded.
   */
  async request(href, { method = 'GET', form, headers = {}, body } = {}) {
    const { url, headers: h, body: payload } = this.prepare(href, { form, headers, body });
    const res = await fetch(url, { method, headers: h, body: payload, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    this.store(url, res);
    const text = await res.text();
    return this.step(url, method, res.status, res.headers, text);
  }

  /**
   * What a request sends (request's and HttpBrowser's): the browser's headers, the cookies for
   * `href`, and `form` (object or URLSearchParams) encoded as the body.
   * @returns {{url: URL, headers: object, body: string|undefined}}
   */
  prepare(href, { form, headers = {}, body } = {}) {
    const url = new URL(href);
    const h = { 'user-agent': 'idp-proxy-e2e', accept: 'text/html,application/json;q=0.9,*/*;q=0.8', ...headers };
    const cookie = this.cookieHeader(url);
    if (cookie) h.cookie = cookie;
    if (form) {
      body = form instanceof URLSearchParams ? form.toString() : new URLSearchParams(form).toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
    }
    return { url, headers: h, body };
  }

  /** An answer (its cookies already stored) as a step of the history, which request returns. */
  step(url, method, status, headers, body) {
    const location = headers.get('location');
    const step = {
      method,
      url: url.toString(),
      status,
      headers,
      location: location ? new URL(location, url).toString() : null,
      contentType: headers.get('content-type') || '',
      body,
    };
    this.history.push(step);
    return step;
  }

  /**
   * Requests `href` then follows redirects (303/302/301 → GET; 307/308 keep the method) until a
   * non-redirect answer, or until a Location matches `stopAt(url)` (not fetched: it is the
   * service provider's redirect_uri, which need not listen).
   * @returns {{steps, final, stoppedAt: URL|null}}
   */
  async navigate(href, { method = 'GET', form, stopAt = () => false, maxRedirects = 20 } = {}) {
    const steps = [];
    let step = await this.request(href, { method, form });
    steps.push(step);
    for (let i = 0; REDIRECTS.has(step.status) && step.location; i++) {
      const next = new URL(step.location);
      if (stopAt(next)) return { steps, final: step, stoppedAt: next };
      if (i >= maxRedirects) throw new Error(`too many redirects: ${steps.map((s) => `${s.status} ${s.url}`).join(' → ')}`);
      const keep = step.status === 307 || step.status === 308;
      step = await this.request(next.toString(), keep ? { method: step.method, form } : {});
      steps.push(step);
    }
    return { steps, final: step, stoppedAt: null };
  }
}

// ---------------------------------------------------------------------------------------------
// Traffic recorded request by request (shutdown.test.mjs, observability.test.mjs)

/**
 * An http.Agent that records every request made through it, for the Browser below and for
 * openid-client (`trackTraffic(sp, agent)`). By default without keep-alive (each request on a
 * new connection, `Connection: close`); `keepAlive: true` reuses idle connections.
 * `requestIds: true` gives every request that has none a fresh `X-Request-Id` (16 hex
 * characters, which idp-proxy takes as its own and logs). A record: { method, url, port,
 * sentId (the X-Request-Id sent, or null), startedAt, connectedAt (the TCP connection was made,
 * or an idle one taken: the request was sent, or being sent), reused (on a kept-alive
 * connection), status, requestId (the answer's X-Request-Id), complete (every byte of the
 * answer came), endedAt, error (code or message of a transport failure) }. Times are
 * performance.now().
 */
export class TrackingAgent extends HttpAgent {
  constructor({ keepAlive = false, requestIds = false } = {}) {
    super({ keepAlive });
    this.requestIds = requestIds;
    this.records = [];
  }

  addRequest(req, options) {
    // The head is written on the first write or end(), after this: a header can still be set.
    if (this.requestIds && !req.hasHeader('x-request-id')) req.setHeader('x-request-id', randomBytes(8).toString('hex'));
    const rec = {
      method: req.method, url: `http://${options.host}:${options.port}${req.path}`, port: Number(options.port),
      sentId: req.getHeader('x-request-id') ?? null, startedAt: performance.now(), connectedAt: null, reused: false,
      status: null, requestId: null, complete: false, endedAt: null, error: null,
    };
    this.records.push(rec);
    const end = (error) => {
      if (rec.endedAt !== null) return;
      rec.endedAt = performance.now();
      if (error) rec.error = error;
    };
    req.once('socket', (socket) => {
      if (socket.connecting) socket.once('connect', () => { rec.connectedAt = performance.now(); });
      else {
        rec.connectedAt = performance.now();
        rec.reused = true;
      }
    });
    req.once('response', (res) => {
      rec.status = res.statusCode;
      rec.requestId = res.headers['x-request-id'] ?? null;
      // Watched, not read (a 'data' listener here would take chunks from the caller): 'end'
      // comes once the caller has read the whole answer.
      res.once('end', () => { rec.complete = res.complete; end(res.complete ? null : 'incomplete'); });
      res.once('aborted', () => end('aborted'));
      res.once('error', (e) => end(e.code || e.message));
      res.once('close', () => end('closed before the end of the answer'));
    });
    req.once('error', (e) => end(e.code || e.message));
    return super.addRequest(req, options);
  }
}

/** openid-client's requests for this SP (token, userinfo, JWKS…) through `agent`. */
export function trackTraffic(sp, agent) {
  const opts = () => ({ agent });
  sp.client[custom.http_options] = opts;
  sp.issuer[custom.http_options] = opts;
  return sp;
}

/** The Browser over node:http and an agent (a TrackingAgent: by default, one connection per request). */
export class HttpBrowser extends Browser {
  constructor(agent = new TrackingAgent()) {
    super();
    this.agent = agent;
  }

  request(href, { method = 'GET', form, headers = {}, body } = {}) {
    const { url, headers: h, body: text } = this.prepare(href, { form, headers, body });
    const payload = text === undefined ? undefined : Buffer.from(text, 'utf8');
    if (payload) h['content-length'] = String(payload.length);
    return new Promise((resolve, reject) => {
      const req = httpRequest({
        host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers: h, agent: this.agent, timeout: 15_000,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (!res.complete) { reject(new Error(`${method} ${href.slice(0, 120)}: incomplete answer`)); return; }
          const hs = new Headers();
          for (const [k, v] of Object.entries(res.headers)) for (const one of Array.isArray(v) ? v : [v]) hs.append(k, one);
          this.store(url, { headers: hs });
          resolve(this.step(url, method, res.statusCode, hs, Buffer.concat(chunks).toString('utf8')));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${href.slice(0, 120)}: no answer within 15 s`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// HTML forms, parsed with regexes (the pages are simple and ours)

export function decodeEntities(s) {
  return String(s)
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&(quot|apos|lt|gt|nbsp|amp);/g, (_, n) => ({ quot: '"', apos: "'", lt: '<', gt: '>', nbsp: '\u00a0', amp: '&' }[n]));
}

export function textOf(html) {
  return decodeEntities(String(html).replace(/<script[\s\S]*?<\/script>/gi, ' ').replace(/<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]*>/g, ' '))
    .replace(/\s+/g, ' ').trim();
}

export function parseAttributes(tag) {
  const attrs = {};
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const inner = tag.replace(/^<\s*[\w-]+/, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner))) {
    const name = m[1].toLowerCase();
    if (name in attrs) continue; // first one wins, as in HTML
    attrs[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/**
 * @returns {{action:string, method:string, attrs:object, html:string,
 *   inputs:{type:string,name:string,value:string,checked:boolean,required:boolean,id?:string,label:string}[],
 *   buttons:{name?:string,value?:string,type:string,text:string}[]}[]}
 */
export function parseForms(html, baseUrl) {
  const forms = [];
  const labelsFor = new Map();
  for (const m of html.matchAll(/<label\b([^>]*)>([\s\S]*?)<\/label>/gi)) {
    const a = parseAttributes(`<label ${m[1]}>`);
    if (a.for) labelsFor.set(a.for, textOf(m[2]));
  }
  for (const m of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)) {
    const formHtml = m[0];
    const attrs = parseAttributes(formHtml.match(/^<form\b[^>]*>/i)[0]);
    const inputs = [];
    // Inputs wrapped in a <label>: the label's text names them.
    const wrapped = new Map();
    for (const l of formHtml.matchAll(/<label\b[^>]*>([\s\S]*?)<\/label>/gi)) {
      for (const i of l[1].matchAll(/<input\b[^>]*>/gi)) wrapped.set(i[0], textOf(l[1]));
    }
    for (const i of formHtml.matchAll(/<input\b[^>]*>/gi)) {
      const a = parseAttributes(i[0]);
      inputs.push({
        type: (a.type || 'text').toLowerCase(),
        name: a.name,
        value: a.value ?? (a.type === 'checkbox' || a.type === 'radio' ? 'on' : ''),
        checked: 'checked' in a,
        required: 'required' in a,
        disabled: 'disabled' in a,
        id: a.id,
        label: (a.id && labelsFor.get(a.id)) || wrapped.get(i[0]) || '',
        attrs: a,
      });
    }
    const buttons = [];
    for (const b of formHtml.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const a = parseAttributes(`<button ${b[1]}>`);
      buttons.push({ name: a.name, value: a.value, type: (a.type || 'submit').toLowerCase(), text: textOf(b[2]), attrs: a });
    }
    for (const s of formHtml.matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/gi)) {
      const a = parseAttributes(`<select ${s[1]}>`);
      const options = [...s[2].matchAll(/<option\b([^>]*)>([\s\S]*?)<\/option>/gi)].map((o) => {
        const oa = parseAttributes(`<option ${o[1]}>`);
        return { value: oa.value ?? textOf(o[2]), selected: 'selected' in oa, text: textOf(o[2]) };
      });
      inputs.push({ type: 'select', name: a.name, value: (options.find((o) => o.selected) || options[0])?.value ?? '', options, checked: false, required: 'required' in a, id: a.id, label: (a.id && labelsFor.get(a.id)) || '', attrs: a });
    }
    const action = attrs.action ? new URL(attrs.action, baseUrl).toString() : String(baseUrl);
    forms.push({ action, method: (attrs.method || 'get').toLowerCase(), attrs, html: formHtml, inputs, buttons });
  }
  return forms;
}

/** The fields a browser would submit: hidden/text inputs, checked boxes; not buttons. */
export function formFields(form) {
  const fields = new URLSearchParams();
  for (const i of form.inputs) {
    if (!i.name || i.disabled) continue;
    if (i.type === 'radio' || i.type === 'checkbox') { if (i.checked) fields.append(i.name, i.value); continue; }
    if (['submit', 'button', 'image', 'reset', 'file'].includes(i.type)) continue;
    fields.append(i.name, i.value);
  }
  return fields;
}

/**
 * The interaction page of idp-proxy: the form with a hidden `csrf`, its `choice` radios
 * ("{mandate_id}:{demarche}") with their labels, and the `certify` checkbox.
 */
export function parseInteractionPage(html, pageUrl) {
  const forms = parseForms(html, pageUrl);
  const form = forms.find((f) => f.method === 'post' && f.inputs.some((i) => i.name === 'csrf'))
    || forms.find((f) => f.method === 'post') || null;
  const options = (form?.inputs || [])
    .filter((i) => i.type === 'radio' && i.name === 'choice')
    .map((i) => {
      const sep = i.value.lastIndexOf(':');
      return { value: i.value, mandateId: i.value.slice(0, sep), demarche: i.value.slice(sep + 1), label: i.label, checked: i.checked };
    });
  return {
    form,
    csrf: form?.inputs.find((i) => i.name === 'csrf')?.value ?? null,
    certify: form?.inputs.find((i) => i.name === 'certify') ?? null,
    options,
    text: textOf(html),
  };
}

// ---------------------------------------------------------------------------------------------
// The service provider and the whole démarche

/**
 * An openid-client Client for `clientConfig` (as given to startProxy), from fresh discovery.
 */
export async function makeSp(proxy, clientConfig, { redirectUri } = {}) {
  const issuer = await Issuer.discover(proxy.issuer);
  const client = new issuer.Client({
    client_id: clientConfig.client_id,
    client_secret: clientConfig.client_secret,
    redirect_uris: clientConfig.redirect_uris,
    post_logout_redirect_uris: clientConfig.post_logout_redirect_uris,
    response_types: ['code'],
    token_endpoint_auth_method: clientConfig.token_endpoint_auth_method ?? 'client_secret_basic',
    id_token_signed_response_alg: clientConfig.id_token_signed_response_alg ?? 'ES256',
  });
  client[custom.clock_tolerance] = 5;
  return { issuer, client, config: clientConfig, redirectUri: redirectUri ?? clientConfig.redirect_uris[0] };
}

export const FULL_SCOPE = 'openid given_name family_name birthdate gender birthplace birthcountry email preferred_username';

function sameEndpoint(a, b) {
  const x = new URL(a);
  const y = new URL(b);
  return x.origin === y.origin && x.pathname === y.pathname;
}

/**
 * Runs a démarche through the browser. Never throws for protocol outcomes: every step is in the
 * result so tests can assert on failures.
 *
 * @param {object} o
 * @param {object} o.proxy startProxy's result
 * @param {object} o.upstream startUpstream's result
 * @param {object} o.sp makeSp's result
 * @param {string} [o.aidant='abdel'] subject to log in with at the upstream IdP
 * @param {(options, page) => (object|string|null)} [o.choose] picks an option of the interaction
 *   page (or returns any "{mandate_id}:{demarche}" string, forged or not); null: stop on the page
 * @param {object} [o.claims] OIDC claims request (object)
 * @param {string} [o.scope]
 * @param {object} [o.authParams] extra authorization parameters
 * @param {boolean} [o.certify=true] tick the certification box
 * @param {(fields: URLSearchParams) => void} [o.editForm] changes the POSTed fields (forgeries)
 * @param {boolean} [o.exchange=true] false: stop at the SP callback, no token request
 * @param {(result) => Promise<void>} [o.beforeToken] runs between the callback and the token request
 * @param {Browser} [o.browser] reuse a browser (its sessions)
 * @param {boolean} [o.pkce=true] false: no code_challenge, no code_verifier (clients configured
 *   with pkce_required = false)
 * @param {boolean} [o.nonce=true] false: no nonce in the request, none expected in the ID token
 * @param {string} [o.state] the state to send (default: a fresh random one)
 * @param {'GET'|'POST'} [o.method='GET'] POST: the authorization request is a form POSTed to the
 *   authorization endpoint (OIDC Core §3.1.2.1)
 * @param {(url: URL) => Promise<URL>} [o.rewrite] turns the authorization URL into another
 *   (a request object, a pushed request) before the browser goes there
 */
export async function runDemarche({
  proxy, upstream, sp, aidant = 'abdel', choose = (options) => options[0], claims, scope = FULL_SCOPE,
  authParams = {}, certify = true, editForm, exchange = true, beforeToken, browser = new Browser(),
  pkce = true, nonce = true, state, method = 'GET', rewrite,
}) {
  const checks = {
    state: state ?? generators.state(),
    nonce: generators.nonce(),
    code_verifier: generators.codeVerifier(),
  };
  if (!nonce) delete checks.nonce;
  if (!pkce) delete checks.code_verifier;
  const authorizationUrl = sp.client.authorizationUrl({
    scope,
    state: checks.state,
    nonce: checks.nonce,
    ...(pkce ? { code_challenge: generators.codeChallenge(checks.code_verifier), code_challenge_method: 'S256' } : {}),
    redirect_uri: sp.redirectUri,
    ...(claims ? { claims: typeof claims === 'string' ? claims : JSON.stringify(claims) } : {}),
    ...authParams,
  });

  const result = {
    proxy,
    browser,
    checks,
    authorizationUrl,
    steps: [],
    upstreamLogin: null, // { page, response }
    interaction: null, // { url, status, html, page }
    posted: null, // URLSearchParams sent to the interaction
    postResponse: null, // first answer to the interaction POST
    final: null, // the last non-redirect answer, when the flow did not reach the SP
    callbackUrl: null, // URL the browser was sent to at the SP
    callbackParams: null, // its query parameters (object)
    code: null,
    error: null, // { error, error_description, state, iss } when the SP got an error
    tokenSet: null,
    claims: null,
    idTokenHeader: null,
    tokenError: null,
    userinfo: null,
    userinfoError: null,
  };
  const stopAt = (u) => sameEndpoint(u, sp.redirectUri);
  const upstreamOrigin = new URL(upstream.issuer).origin;
  const proxyOrigin = new URL(proxy.issuer).origin;

  let nav;
  if (method === 'POST') {
    const u = new URL(authorizationUrl);
    nav = await browser.navigate(`${u.origin}${u.pathname}`, { method: 'POST', form: u.searchParams, stopAt });
  } else {
    // A request object or a pushed request replaces the URL's parameters (rewrite).
    const url = rewrite ? (await rewrite(new URL(authorizationUrl))).toString() : authorizationUrl;
    nav = await browser.navigate(url, { stopAt });
  }
  result.steps.push(...nav.steps);
  let posted = false;
  for (let guard = 0; guard < 6 && !nav.stoppedAt; guard++) {
    const here = new URL(nav.final.url);
    const html = nav.final.body;
    if (nav.final.status === 200 && here.origin === upstreamOrigin && here.pathname.startsWith('/interaction/')) {
      const forms = parseForms(html, here);
      const login = forms.find((f) => f.buttons.some((b) => b.name === 'sub')) || forms.find((f) => f.method === 'post');
      if (!login) throw new Error(`upstream login page without a form:\n${html}`);
      result.upstreamLogin = { url: here.toString(), forms };
      nav = await browser.navigate(login.action, { method: 'POST', form: { sub: aidant }, stopAt });
      result.steps.push(...nav.steps);
      continue;
    }
    if (here.origin === proxyOrigin && here.pathname.startsWith('/interaction/') && !posted) {
      const page = parseInteractionPage(html, here);
      result.interaction = { url: here.toString(), status: nav.final.status, html, page };
      if (nav.final.status !== 200 || !page.form || !choose) break;
      const picked = choose(page.options, page);
      if (picked === null || picked === undefined) break;
      const fields = formFields(page.form);
      fields.delete('choice');
      fields.delete('certify');
      fields.set('choice', typeof picked === 'string' ? picked : picked.value);
      if (certify) fields.set('certify', page.certify?.value || 'yes');
      const submit = page.form.buttons.find((b) => b.type === 'submit' && b.name);
      if (submit) fields.set(submit.name, submit.value ?? '');
      if (editForm) editForm(fields);
      result.posted = fields;
      posted = true;
      nav = await browser.navigate(page.form.action, { method: 'POST', form: fields, stopAt });
      result.postResponse = nav.steps[0];
      result.steps.push(...nav.steps);
      continue;
    }
    break;
  }

  if (!nav.stoppedAt) {
    result.final = nav.final;
    return result;
  }
  result.callbackUrl = nav.stoppedAt.toString();
  result.callbackParams = Object.fromEntries(nav.stoppedAt.searchParams);
  if (result.callbackParams.error || !result.callbackParams.code) {
    result.error = result.callbackParams;
    return result;
  }
  result.code = result.callbackParams.code;
  if (!exchange) return result;
  if (beforeToken) await beforeToken(result);

  try {
    result.tokenSet = await sp.client.callback(sp.redirectUri, result.callbackParams, { ...checks, response_type: 'code' });
    result.claims = result.tokenSet.claims();
    result.idTokenHeader = jose.decodeProtectedHeader(result.tokenSet.id_token);
  } catch (err) {
    result.tokenError = err;
    return result;
  }
  try {
    result.userinfo = await sp.client.userinfo(result.tokenSet);
  } catch (err) {
    result.userinfoError = err;
  }
  return result;
}

/** Every URL the browser was redirected to or loaded during the run. */
export function visitedUrls(result) {
  return result.steps.flatMap((s) => [s.url, s.location].filter(Boolean));
}

/** A short trace for assertion messages. */
export function trace(result) {
  const lines = result.steps.map((s) => `${s.method} ${s.url} → ${s.status}${s.location ? ` → ${s.location}` : ''}`);
  if (result.final) lines.push(`final page (${result.final.status}): ${textOf(result.final.body).slice(0, 400)}`);
  if (result.tokenError) lines.push(`token error: ${result.tokenError.error || ''} ${result.tokenError.message}`);
  const stderr = result.proxy?.logs?.().stderr;
  if (stderr) lines.push(`--- idp-proxy stderr (last lines) ---\n${stderr.trimEnd().split('\n').slice(-15).join('\n')}`);
  return lines.join('\n');
}
