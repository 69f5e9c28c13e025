// Outages under load (issue #5): one proxy on a PostgreSQL and a Redis of the test's own, four
// clients running démarches back to back, three phases, each with its outage in the middle:
//   1. PostgreSQL stopped (fast shutdown: its sessions are cut) and started again;
//   2. Redis stopped as an operator stops it: its clients paused first (`CLIENT PAUSE … ALL`),
//      then SIGTERM, then started again on the same port and data directory;
//   3. Redis stopped abruptly: SIGTERM under load, no pause, started again the same way.
//
// What every phase proves:
// - no answer is a 500: the browser gets the French "momentanément indisponible" page, the token
//   endpoint a JSON `temporarily_unavailable`, which a well-behaved client retries with the same
//   code and verifier (a store failure before the final step leaves the code untouched);
// - the same proxy process issues tokens again after each restart, /readyz is 200 again, with
//   no restart of its own; a code delivered just before the outage, whose token request met
//   it, is redeemed once the server is back;
// - no token without its `mandate_used` journal entry, and `journal verify` finds the chain
//   intact at the end.
//
// Tokens and journal entries — why phases 2 and 3 differ. A code is single use. /token reads it
// (`GET`), runs every check — client, redirect_uri, PKCE, the mandate once more — and signs the
// ID token; only then, in one atomic step (a Lua script: `DEL` the code, then `SET` the access
// token only if the code was there), is the code spent and its access token stored. A store
// failure anywhere before that step leaves the code as it was: 503, and the retry redeems it. A
// refused redemption (wrong client, redirect_uri, PKCE, mandate refused) spends the code. The one
// way left to lose a code is that final step executed but unanswered: Redis exits between
// executing the script (and persisting its effects) and sending the reply. The proxy can only
// answer 503, and the client's retry finds the code gone (`invalid_grant`). Over a network an
// executed command whose reply is lost cannot be told from one never executed; redeeming such a
// code again would break single use, so it stays void. The journal keeps what did happen: the
// aidant confirmed the use, and its entry was committed before the code was delivered.
// - Phase 1 (PostgreSQL) and phase 2 (Redis paused, then stopped): journal entries = tokens,
//   strictly, and no code is refused once the server is back. During a pause Redis executes no
//   command: the ones queued in it (the proxy's, and a probe SET the test sends) are dropped
//   unexecuted by the SIGTERM — the probe's absence after the restart is asserted — so the final
//   step of a token request is either executed and answered before the pause, or never executed
//   (its code intact for the retry). Being one command, it cannot be cut in two by the pause.
// - Phase 3 (Redis stopped abruptly): tokens ≤ journal entries, and the difference is exactly
//   the codes the test can name as lost to an unanswered final step: a first token request
//   answered 503 after the stop began, the retry answered `invalid_grant` after the restart. At
//   most one per client (four), often none; any other `invalid_grant` fails the test.
//
// Why Redis runs with persistence (`appendonly yes`, `appendfsync always`, its own dir): that
// is how production should run it, so that a Redis stopped and restarted keeps the codes and
// sessions it held. A Redis restarted *empty* (SIGKILL, no persistence) voids the codes already
// delivered to browsers: their uses are journaled but can never become tokens, so the equality
// above cannot hold by construction. That crash case — the node failing closed while its Redis
// is gone, then serving again without a restart — is covered by readiness.test.mjs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

import {
  createPgDatabase, jose, makeSp, runDemarche, startPostgres, startRedis, startWorld, textOf,
} from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

const WORKERS = 4;
const BEFORE_MS = 1500; // load before the outage
const OUTAGE_MS = 2000; // the server stopped
// How long a request waits for a pooled connection before its 503: shorter than the outage, or
// the requests would only wait for PostgreSQL and /token would never answer 503.
const ACQUIRE_TIMEOUT_MS = 1000;
const REDIS_TIMEOUT_MS = 300; // the proxy's bound on each Redis command
const REDIS_PREFIX = 'outages:';
const AFTER_MS = 2000; // load after the restart
const TOKEN_RETRY_MS = 15_000; // how long a client retries a 503 from /token with the same code
// Phase 2: the pause, long enough for SIGTERM to come well within it (Redis resumes the queued
// commands when it ends), and how long Redis stays paused before SIGTERM (the proxy's commands
// meet it: their 503s come after REDIS_TIMEOUT_MS).
const PAUSE_MS = 10_000;
const PAUSED_BEFORE_STOP_MS = 800;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function psqlCount(url, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', [url, '-v', 'ON_ERROR_STOP=1', '-Atc', sql], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql (${sql}): ${stderr || err.message}`));
      else resolve(Number(stdout.trim()));
    });
  });
}

/** A RESP command on a connection of its own, whose answer (if any) is kept: `reply()`. */
function rawCommand(port, ...args) {
  const sock = connect(port, '127.0.0.1');
  let reply = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => { reply += d; });
  sock.on('error', () => {}); // the server going away is expected
  const written = new Promise((resolve, reject) => {
    sock.once('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`, resolve);
    });
    sock.once('error', reject);
  });
  return { written, reply: () => reply, close: () => sock.destroy() };
}

/** What the clients saw during one phase. */
function newStats(name) {
  return {
    name,
    demarches: 0,
    tokens: 0,
    tokenTimes: [],
    unavailable: 0, // 503s seen (pages, /token answers, or an error sent back to the client)
    unavailableAt: {}, // where, by path
    tokenRetries: 0,
    lostCodes: [], // codes refused (invalid_grant) after a 503: each with its /token answers
    statuses: {},
    serverErrors: [], // any 5xx but 503
    bad: [], // anything else unexpected (429, a 503 that is not the clear page, a bad ID token…)
    transport: [], // a connection closed or timed out without an answer
    stoppedAt: null, // the stop began (phase 2: the pause)
    pausedAt: null, // phase 2: CLIENT PAUSE answered (in force from a little before)
    sigtermAt: null, // SIGTERM sent (Redis phases)
    restartedAt: null,
  };
}

function summary(s) {
  const { tokenTimes, stoppedAt, pausedAt, sigtermAt, restartedAt, lostCodes, ...rest } = s;
  return JSON.stringify({
    ...rest,
    lostCodes: lostCodes.map((l) => describeLost(s, l)),
    serverErrors: s.serverErrors.slice(0, 5),
    bad: s.bad.slice(0, 5),
    transport: s.transport.slice(0, 5),
  });
}

/** A lost code and its /token answers, times relative to the stop and to the restart. */
function describeLost(s, l) {
  const rel = (at) => {
    const parts = [];
    if (s.stoppedAt) parts.push(`stop${at - s.stoppedAt >= 0 ? '+' : ''}${at - s.stoppedAt}`);
    if (s.pausedAt) parts.push(`paused${at - s.pausedAt >= 0 ? '+' : ''}${at - s.pausedAt}`);
    if (s.sigtermAt && s.sigtermAt !== s.stoppedAt) parts.push(`sigterm${at - s.sigtermAt >= 0 ? '+' : ''}${at - s.sigtermAt}`);
    if (s.restartedAt) parts.push(`restart${at - s.restartedAt >= 0 ? '+' : ''}${at - s.restartedAt}`);
    return parts.join('/') || 'before the stop';
  };
  return `code ${l.code.slice(0, 10)}…: sent ${rel(l.sentAt)} ms, answers ${l.answers.map((a) => `${a.status}${a.error ? ` ${a.error}` : ''} at ${rel(a.at)} ms`).join(', ')}`;
}

/**
 * The commands Redis persisted on `code`'s key (`<prefix>code:<SHA-256, base64url>`, the
 * proxy's layout) in its append-only file: `["SET", "DEL"]` is a code stored, then spent (the
 * final step's script is persisted by its effects: `DEL` the code, `SET` the access token).
 * For the failure messages only.
 */
function aofCommandsOn(redis, prefix, code) {
  const dir = join(redis.dir, 'appendonlydir');
  if (!existsSync(dir)) return 'no AOF';
  const key = `${prefix}code:${createHash('sha256').update(code).digest('base64url')}`;
  const lines = readdirSync(dir).filter((f) => f.endsWith('.aof'))
    .map((f) => readFileSync(join(dir, f), 'latin1')).join('').split('\r\n');
  return lines.flatMap((l, i) => (l === key ? [lines[i - 2]] : []));
}

/**
 * A code lost to an unanswered final step (the atomic spend of the code and store of its access
 * token, executed, its reply lost): its first token request answered 503 once the stop had
 * begun (before the restart), its retry answered invalid_grant after the restart.
 */
function lostToUnansweredTake(s, l) {
  const first = l.answers[0];
  const last = l.answers.at(-1);
  return first.status === 503 && s.stoppedAt !== null && first.at >= s.stoppedAt && first.at < s.restartedAt
    && last.error === 'invalid_grant' && last.at >= s.restartedAt;
}

describe('PostgreSQL and Redis stopped under load, then back', () => {
  let pg;
  let db;
  let redis;
  let world;
  let sp;
  let jwks;
  let journalBaseline;
  const phases = [];
  let stats = newStats('start');

  before(async () => {
    pg = await startPostgres();
    db = await createPgDatabase(pg.url);
    redis = await startRedis({ persistent: true });
    world = await startWorld({
      clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, database: db.url,
      config: {
        database: { acquire_timeout_ms: ACQUIRE_TIMEOUT_MS },
        ephemeral: { backend: 'redis', url: redis.url, prefix: REDIS_PREFIX, timeout_ms: REDIS_TIMEOUT_MS },
      },
    });
    sp = await makeSp(world.proxy, SP1);
    jwks = jose.createLocalJWKSet(await (await fetch(sp.issuer.metadata.jwks_uri)).json());
    journalBaseline = await journalUses();
  });

  after(async () => {
    await world?.stop();
    await redis?.close();
    await pg?.close();
  });

  /** A browser step: < 500, or a 503 that is the clear French page. */
  function seeStep(step) {
    const s = stats;
    s.statuses[step.status] = (s.statuses[step.status] ?? 0) + 1;
    const where = `${step.method} ${step.url.replace(/\?.*/, '')}`;
    if (step.status === 503) {
      s.unavailable += 1;
      const path = new URL(step.url).pathname.replace(/\/interaction\/[^/]+/, '/interaction/:id');
      s.unavailableAt[path] = (s.unavailableAt[path] ?? 0) + 1;
      if (!/momentanément indisponible/.test(textOf(step.body))) s.bad.push(`${where}: 503 without the clear page: ${textOf(step.body).slice(0, 200)}`);
    } else if (step.status >= 500) {
      s.serverErrors.push(`${where}: ${step.status} ${textOf(step.body).slice(0, 200)}`);
    } else if (step.status === 429) {
      s.bad.push(`${where}: 429 (the harness lifts the limits)`);
    }
  }

  /**
   * The token request with the démarche's code and verifier, retried on 503 like a good client.
   * `r.answers` gets each answer ({status, error, at}); true when it ended with a token.
   */
  async function redeem(r) {
    const endpoint = sp.issuer.metadata.token_endpoint;
    const first = Date.now();
    const deadline = first + TOKEN_RETRY_MS;
    r.answers = [];
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) stats.tokenRetries += 1;
      let res;
      let body;
      try {
        res = await fetch(endpoint, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${SP1.client_id}:${SP1.client_secret}`).toString('base64')}`,
          },
          body: new URLSearchParams({ grant_type: 'authorization_code', code: r.code, redirect_uri: sp.redirectUri, code_verifier: r.checks.code_verifier }),
          signal: AbortSignal.timeout(15_000),
        });
        body = await res.text();
      } catch (err) {
        stats.transport.push(`POST /token: ${err.cause?.code || err.message}`);
        return false;
      }
      const s = stats;
      s.statuses[res.status] = (s.statuses[res.status] ?? 0) + 1;
      let json = null;
      try { json = JSON.parse(body); } catch { /* checked below */ }
      r.answers.push({ status: res.status, error: json?.error, at: Date.now() });
      if (res.status === 200) {
        try {
          const { payload } = await jose.jwtVerify(json.id_token, jwks, { issuer: world.proxy.issuer, audience: SP1.client_id });
          assert.equal(payload.nonce, r.checks.nonce);
          assert.ok(payload.act, 'the ID token names the aidant (act)');
          assert.ok(json.access_token);
        } catch (err) {
          s.bad.push(`/token 200 with a bad answer: ${err.message}`);
          return false;
        }
        s.tokens += 1;
        s.tokenTimes.push(Date.now());
        return true;
      }
      if (res.status === 503) {
        s.unavailable += 1;
        s.unavailableAt['/token'] = (s.unavailableAt['/token'] ?? 0) + 1;
        if (json?.error !== 'temporarily_unavailable') s.bad.push(`/token 503 without temporarily_unavailable: ${body.slice(0, 200)}`);
        if (Date.now() < deadline) { await sleep(200); continue; }
        s.bad.push(`/token still 503 after ${TOKEN_RETRY_MS / 1000} s`);
        return false;
      }
      if (res.status >= 500) { s.serverErrors.push(`POST /token: ${res.status} ${body.slice(0, 200)}`); return false; }
      if (res.status === 400 && json?.error === 'invalid_grant') {
        s.lostCodes.push({ code: r.code, sentAt: first, answers: r.answers, description: json.error_description });
        return false;
      }
      s.bad.push(`POST /token: ${res.status} ${body.slice(0, 200)}`);
      return false;
    }
  }

  /** A démarche up to the code the client receives: the run, or null (failure recorded). */
  async function toCode() {
    stats.demarches += 1;
    let r;
    try {
      r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, exchange: false });
    } catch (err) {
      stats.transport.push(`démarche: ${err.cause?.code || err.message}`);
      return null;
    }
    for (const step of r.steps) seeStep(step);
    if (r.error) {
      // Sent back to the client with an error instead of a code.
      if (r.error.error === 'temporarily_unavailable') {
        stats.unavailable += 1;
        stats.unavailableAt['error sent to the client'] = (stats.unavailableAt['error sent to the client'] ?? 0) + 1;
      }
      else stats.bad.push(`error sent to the client: ${JSON.stringify(r.error)}`);
      return null;
    }
    return r.code ? r : null; // or stopped on a page (seen above)
  }

  /** One démarche, the token request retried; true when it ended with a token. */
  async function demarche() {
    const r = await toCode();
    return r ? redeem(r) : false;
  }

  /** `WORKERS` clients running démarches back to back until `stop()`. */
  function startLoad() {
    let running = true;
    const worker = async () => {
      while (running) {
        if (!(await demarche())) await sleep(100); // no hammering of a server that is down
      }
    };
    const all = Array.from({ length: WORKERS }, worker);
    return { async stop() { running = false; await Promise.all(all); } };
  }

  async function waitReady() {
    let last;
    for (let i = 0; i < 100; i++) {
      try {
        const res = await fetch(`${world.proxy.issuer}/readyz`, { signal: AbortSignal.timeout(10_000) });
        last = { status: res.status, body: await res.text() };
        if (res.status === 200) return;
      } catch (err) {
        last = err.message;
      }
      await sleep(200);
    }
    assert.fail(`/readyz never 200 again: ${JSON.stringify(last)}`);
  }

  const journalUses = () => psqlCount(db.url, "SELECT count(*) FROM journal WHERE action = 'mandate_used'");

  /**
   * Load; the outage in the middle; load again; then ready, and a démarche that succeeds. A code
   * obtained just before the outage (`held`) is redeemed during it: its token request meets the
   * outage, and is retried until the server is back. `stopServer(s, redeemHeld)` may start that
   * request itself (phase 2: during the pause); otherwise it starts once the server is stopped.
   * Asserts what every phase must show; returns what the phase's own assertions need.
   */
  async function outage(name, stopServer, startServer, t) {
    stats = newStats(name);
    phases.push(stats);
    const s = stats;
    const journalBefore = await journalUses();
    const load = startLoad();
    let held = null;
    let heldRedeemed = null;
    const redeemHeld = () => { if (held && !heldRedeemed) heldRedeemed = redeem(held); };
    try {
      await sleep(BEFORE_MS);
      held = await toCode();
      s.stoppedAt = Date.now();
      await stopServer(s, redeemHeld);
      redeemHeld();
      await sleep(OUTAGE_MS);
      await startServer();
      s.restartedAt = Date.now();
      await sleep(AFTER_MS);
    } finally {
      await load.stop();
    }
    const heldOk = heldRedeemed ? await heldRedeemed : null;
    const afterRestart = s.tokenTimes.filter((at) => at > s.restartedAt).length;
    await waitReady();
    const checked = await demarche();
    const journaled = (await journalUses()) - journalBefore;
    t.diagnostic(`${name}: démarches ${s.demarches}, tokens ${s.tokens}, mandate_used journaled ${journaled}, `
      + `lost codes ${s.lostCodes.length}, 503s by route ${JSON.stringify(s.unavailableAt)}, tokens after the restart ${afterRestart}, `
      + `held code's answers ${JSON.stringify(held?.answers?.map((a) => `${a.status}@stop+${a.at - s.stoppedAt}`))}; ${summary(s)}`);
    assert.deepEqual(s.serverErrors, [], `no 500: ${summary(s)}`);
    assert.deepEqual(s.bad, [], summary(s));
    assert.deepEqual(s.transport, [], `every request answered: ${summary(s)}`);
    assert.ok(journaled >= s.tokens, `${name}: no token without its journal entry (mandate_used): ${journaled} entries, ${s.tokens} tokens; ${summary(s)}${proxyWarnings()}`);
    assert.ok(s.unavailable > 0, `the outage was seen (some 503), else this proved nothing: ${summary(s)}`);
    assert.ok(afterRestart > 0, `tokens issued under load after the restart: ${summary(s)}`);
    assert.ok(checked, `a démarche succeeds once ready again, same process: ${summary(s)}`);
    assert.ok(held, `a code before the outage: ${summary(s)}`);
    assert.ok(heldOk, `the code whose token request met the outage is redeemed once the server is back (retried with the same code): ${summary(s)}`);
    assert.equal(held.answers[0].status, 503, `the held code's first token request met the outage: ${JSON.stringify(held.answers)}`);
    return { s, journaled, held };
  }

  /** A lost code, with what Redis persisted on its key. */
  const lostWithAof = (s, l) => `${describeLost(s, l)}, persisted on its key: ${JSON.stringify(aofCommandsOn(redis, REDIS_PREFIX, l.code))}`;

  /** Journal entries = tokens, and no code refused once the server is back. */
  function assertStrict({ s, journaled }, hint = '') {
    assert.deepEqual(s.lostCodes.map((l) => lostWithAof(s, l)), [], `${s.name}: no code refused once the server is back${hint}; ${summary(s)}${proxyWarnings()}`);
    assert.equal(journaled, s.tokens, `${s.name}: journal entries (mandate_used) = tokens issued in this phase; ${summary(s)}${proxyWarnings()}`);
  }

  /** The proxy's warnings and errors (last ones), for the equality's message. */
  function proxyWarnings() {
    const lines = (world.proxy.logs?.().stderr ?? '').split('\n').filter((l) => /WARN|ERROR/.test(l));
    return lines.length ? `\n--- idp-proxy warnings and errors (last 15) ---\n${lines.slice(-15).join('\n')}` : '';
  }

  it('serves through PostgreSQL stopped and started again', async (t) => {
    assertStrict(await outage('postgresql', () => pg.stop(), () => pg.start(), t));
  });

  it('serves through Redis stopped as an operator stops it (clients paused, then SIGTERM) and started again with its data', async (t) => {
    const marker = `outages-probe:${Date.now()}`;
    let probe = null;
    let probeReplyBeforeStop = null;
    const phase = await outage('redis paused then stopped', async (s, redeemHeld) => {
      await redis.cli('SET', `${marker}:before`, '1');
      await redis.pause(PAUSE_MS);
      s.pausedAt = Date.now();
      // A write sent during the pause, on a connection of its own: it must get no answer, and
      // never be executed.
      probe = rawCommand(redis.port, 'SET', `${marker}:during`, '1');
      await probe.written;
      redeemHeld(); // its token request waits in the pause (503); nothing of it is executed
      await sleep(PAUSED_BEFORE_STOP_MS);
      probeReplyBeforeStop = probe.reply();
      s.sigtermAt = Date.now();
      await redis.stop(); // SIGTERM while still paused; throws unless exit code 0
      probe.close();
    }, () => redis.start(), t);
    t.diagnostic(`probe: answer before the stop ${JSON.stringify(probeReplyBeforeStop)}; held code's first answer ${phase.held.answers[0].at - phase.s.sigtermAt} ms after SIGTERM`);
    // Why the equality below holds: what waited in the pause was dropped, not executed.
    assert.equal(probeReplyBeforeStop, '', 'a command sent during the pause is not answered (not executed) before the stop');
    assert.equal(await redis.cli('GET', `${marker}:before`), '1', 'a write executed before the pause survives the restart (appendonly)');
    assert.equal(await redis.cli('GET', `${marker}:during`), '', 'a write queued during the pause was never executed: absent after the restart');
    assertStrict(phase, ' (for a code refused here, what Redis persisted on its key tells which: SET, DEL — its final step was executed '
      + 'and its answer lost, which the pause should make impossible; SET alone — the code was never spent, the refusal came from elsewhere)');
  });

  it('serves through Redis stopped abruptly (SIGTERM under load) and started again with its data', async (t) => {
    const { s, journaled } = await outage('redis stopped abruptly', async (st) => {
      st.sigtermAt = st.stoppedAt;
      await redis.stop();
    }, () => redis.start(), t);
    const named = s.lostCodes.filter((l) => lostToUnansweredTake(s, l));
    const other = s.lostCodes.filter((l) => !lostToUnansweredTake(s, l));
    s.lostToTake = named.length;
    t.diagnostic(`redis stopped abruptly: journal − tokens = ${journaled - s.tokens}; codes lost to an unanswered take: ${named.length}${named.length ? `: ${named.map((l) => lostWithAof(s, l)).join('; ')}` : ''}`);
    assert.deepEqual(other.map((l) => lostWithAof(s, l)), [], `every code refused after the restart met the stop with its first token request (503) and was refused only after the restart; ${summary(s)}${proxyWarnings()}`);
    assert.equal(journaled - s.tokens, named.length,
      `journal entries − tokens = the codes lost to an unanswered take (${named.length}: ${named.map((l) => lostWithAof(s, l)).join('; ') || 'none'}); `
      + `${journaled} entries, ${s.tokens} tokens; ${summary(s)}${proxyWarnings()}`);
    assert.ok(named.length <= WORKERS, `at most one code lost per client at the stop: ${named.map((l) => describeLost(s, l)).join('; ')}`);
  });

  it('issued as many tokens as it journaled uses, but the codes lost to an unanswered take, and the journal is intact', async (t) => {
    const tokens = phases.reduce((n, s) => n + s.tokens, 0);
    const lost = phases.reduce((n, s) => n + (s.lostToTake ?? 0), 0);
    const uses = (await journalUses()) - journalBaseline;
    t.diagnostic(`tokens issued: ${tokens}, mandate_used journaled: ${uses}, codes lost to an unanswered take: ${lost}, démarches: ${phases.reduce((n, s) => n + s.demarches, 0)}`);
    assert.equal(phases.length, 3, 'the three phases ran');
    assert.ok(tokens > 0);
    const verify = await world.proxy.cliResult(['journal', 'verify']);
    assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
    assert.match(verify.stdout, /journal intact/);
    assert.equal(uses, tokens + lost, `journal entries (mandate_used) = tokens issued + codes lost to an unanswered take; ${phases.map(summary).join('; ')}`);
  });
});
