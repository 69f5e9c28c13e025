// The processes the end-to-end suites run: the real idp-proxy binary (its config, keys, data
// and database), the development aidant IdP, Redis and PostgreSQL servers of their own, and
// the npm packages of dev/ (openid-client, jose) the other parts use.
//
// Environment:
//   IDP_PROXY_BIN      the binary (default <repo>/target/debug/idp-proxy)
//   E2E_DATABASE_URL   a PostgreSQL server URL (postgres://user:pass@127.0.0.1:5432/postgres):
//                      each proxy gets a fresh database on it (created and dropped with psql)
//   E2E_KEEP_TMP=1     keep the temporary directories (config, keys, SQLite file, logs)
//   E2E_VERBOSE=1      echo the proxy's stderr/stdout as it runs

import { spawn, execFile, execFileSync } from 'node:child_process';
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
