// SIGTERM under load (issue #5): what the clients see when a node stops. Two cases.
//
// Behind a balancer (what production runs): two nodes on one PostgreSQL, one Redis and one key
// ring, `server.drain_secs = 2`, behind a front of the test's own that does what a real
// balancer does — round robin over the healthy nodes, an active health check of each node's
// /readyz every 100 ms (a node answering anything but 200, or not answering, is taken out; back
// in on a 200), request bodies read whole first, and a retry on the other node when the
// connection to the chosen one is refused (ECONNREFUSED: the request never reached it).
// Clients load the front: four run whole démarches, eight a loop of discovery documents and
// token requests with a wrong code on fresh connections, four the same on kept-alive ones.
// Node A, which also runs the metrics listener (scraped directly, as Prometheus does), gets
// SIGTERM mid-load, right after one of its health checks: the worst case, it stays in the
// rotation a whole period into its drain. It drains: /readyz answers 503 "draining", every
// answer says `Connection: close`, and it still serves what it gets (the requests the front
// sends until its next check: counted by the front, and in A's log between "draining" and
// "drained"); the front takes it out; after the drain it stops accepting, finishes what it has
// and exits 0; the metrics listener answers until then; démarches go on completing on node B.
// The clients see ZERO failed requests — no reset, no hang-up, no 5xx, no 502 from the front —
// and each request is served exactly once (its X-Request-Id on one `request` line of one
// node's log). The only connection that may meet the listener's close is the front's own
// health check of A, at the end of the drain: a failed check, like a refused one.
//
// Direct, in-flight requests finish: one node, `drain_secs = 0`, the same load straight at it
// (each request with an X-Request-Id of its own), plus a token request whose body is still
// coming in when the signal arrives. The node stops accepting at once and lets what it has
// started finish: the half-sent request gets its whole answer once its body is complete, every
// request with a `request` line in the node's log got its whole answer (never a 5xx), later
// connections are refused (ECONNREFUSED: nothing sent), and the process exits 0 within
// `shutdown_timeout_secs`, its log saying so. What may fail here is only what the node never
// read: connections the kernel had accepted into the listener's backlog, or that were handed to
// a worker, as the listener closed — and a request written on a kept-alive connection as the
// server closed it idle. The server never read a byte of them: when the listening socket (or
// the idle connection) closes with them unread, TCP, not the server, resets them. That race
// exists for any server closing a listener under direct load; the test proves these requests
// were never read (no log line at all under their id, no byte of an answer), that they
// connected within ±100 ms of the signal, and counts them. A balancer that health-checks
// /readyz avoids it by sending nothing more to a draining node well before it closes its
// listener, which the first case shows.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';

import {
  HttpBrowser, TrackingAgent, createPgDatabase, freePort, makeSp, runDemarche, startProxy, startUpstream,
  startWorld, trackTraffic,
} from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

const DEMARCHE_WORKERS = 4;
const FRESH_WORKERS = 8; // cheap requests, a connection each
const KEEPALIVE_WORKERS = 4; // cheap requests on kept-alive connections
const LOAD_MS = 1500; // load before the signal
const DRAIN_SECS = 2; // behind the balancer
const CHECK_MS = 100; // the balancer's health-check period
const AFTER_EXIT_MS = 1500; // behind the balancer: load on node B after node A is gone
const AFTER_MS = 1500; // direct: the clients keep trying after the signal
const SLOW_BODY_AFTER_MS = 600; // direct: the rest of the half-sent body, this long after the signal
const SHUTDOWN_SECS = 10;
const RACE_MS = 100; // direct: never-read connections are this close to the signal
const TRANSPORT = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'socket hang up']);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const newId = () => randomBytes(8).toString('hex');
const basic = `Basic ${Buffer.from(`${SP1.client_id}:${SP1.client_secret}`).toString('base64')}`;
const badCodeForm = () => new URLSearchParams({
  grant_type: 'authorization_code', code: `no-such-code-${Math.random().toString(36).slice(2)}`,
  redirect_uri: SP1.redirect_uris[0], code_verifier: 'v'.repeat(43),
}).toString();

function logLines(text) {
  return text.split('\n').filter(Boolean).map((l) => {
    try { return JSON.parse(l); } catch { return { unparsed: l }; }
  });
}
const messageOf = (l) => l.fields?.message ?? '';

// ---------------------------------------------------------------------------------------------
// The balancer

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase())));

/**
 * A front like a real balancer: round robin over the healthy nodes; GET /readyz on each node
 * every `checkMs` (200: in, anything else or no answer: out); the request body read whole
 * first (as nginx buffers it), then sent on a fresh connection to the chosen node, and to the
 * other node if that connection is refused (nothing reached the node). Hop-by-hop headers are
 * not passed on (a node's `Connection: close` is for the front's connection to it).
 * Per node: `checks` [{ startedAt, endedAt, code, status (the JSON's), error }], `transitions`
 * [{ at, healthy }], `forwarded` [{ id (X-Request-Id), startedAt, status, endedAt, complete, error }].
 */
async function balancer(specs, { checkMs = CHECK_MS } = {}) {
  const nodes = specs.map((s) => ({ ...s, healthy: false, checks: [], transitions: [], forwarded: [] }));
  let next = 0;
  let closed = false;
  const front = { nodes, retries: 0, noNode: 0 };
  const waiters = []; // for the next health check of a node

  const forward = (node, req, body, res) => new Promise((resolve) => {
    const rec = { id: req.headers['x-request-id'] ?? null, startedAt: performance.now(), status: null, endedAt: null, complete: false, error: null };
    node.forwarded.push(rec);
    const headers = endToEnd(req.headers);
    if (body.length || req.headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
    const cut = (e) => {
      if (rec.endedAt !== null) return;
      rec.endedAt = performance.now();
      rec.error = e?.code || e?.message || 'cut';
      if (rec.status === null) resolve({ error: rec.error });
      else res.destroy(); // the answer was cut: so is the client's
    };
    const up = httpRequest({ host: '127.0.0.1', port: node.port, method: req.method, path: req.url, headers, agent: false }, (r) => {
      rec.status = r.statusCode;
      res.writeHead(r.statusCode, endToEnd(r.headers));
      r.pipe(res);
      r.once('end', () => {
        rec.complete = r.complete;
        if (!r.complete) { cut(new Error('incomplete')); return; }
        rec.endedAt = performance.now();
      });
      r.once('aborted', () => cut(new Error('aborted')));
      r.once('error', cut);
      resolve({ answered: true });
    });
    up.once('error', cut);
    up.end(body);
  });

  const server = createServer(async (req, res) => {
    const chunks = [];
    try {
      for await (const c of req) chunks.push(c);
    } catch {
      return; // the client went away
    }
    const body = Buffer.concat(chunks);
    const healthy = nodes.filter((n) => n.healthy);
    if (!healthy.length) front.noNode += 1;
    const pool = healthy.length ? healthy : nodes;
    const chosen = pool[next++ % pool.length];
    const order = [chosen, ...nodes.filter((n) => n !== chosen).sort((a, b) => b.healthy - a.healthy)];
    for (const [k, node] of order.entries()) {
      const { error } = await forward(node, req, body, res);
      if (!error) return;
      if (error === 'ECONNREFUSED' && k < order.length - 1) { front.retries += 1; continue; }
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`front: ${node.name}: ${error}`);
      return;
    }
  });

  const check = (node) => new Promise((resolve) => {
    const c = { startedAt: performance.now(), endedAt: null, code: null, status: null, error: null };
    const done = () => { c.endedAt = performance.now(); resolve(c); };
    const r = httpRequest({ host: '127.0.0.1', port: node.port, path: '/readyz', agent: false, timeout: 1000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => { text += d; });
      res.once('end', () => {
        c.code = res.statusCode;
        try { c.status = JSON.parse(text).status; } catch { c.status = null; }
        done();
      });
      res.once('error', (e) => { c.error = e.code || e.message; done(); });
    });
    r.once('timeout', () => r.destroy(new Error('timeout')));
    r.once('error', (e) => { if (c.endedAt === null) { c.error = e.code || e.message; done(); } });
    r.end();
  });
  const checker = async (node) => {
    while (!closed) {
      const c = await check(node);
      node.checks.push(c);
      for (const w of waiters.filter((x) => x.node === node)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(c);
      }
      const ok = c.code === 200;
      if (ok !== node.healthy) {
        node.healthy = ok;
        node.transitions.push({ at: c.endedAt, healthy: ok });
      }
      await sleep(Math.max(0, checkMs - (c.endedAt - c.startedAt)));
    }
  };
  const checkers = nodes.map(checker);

  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return Object.assign(front, {
    port,
    url: `http://127.0.0.1:${port}`,
    node: (name) => nodes.find((n) => n.name === name),
    /** Resolves when the next health check of node `name` has its answer. */
    checked(name) {
      return new Promise((resolve) => waiters.push({ node: front.node(name), resolve }));
    },
    /** Resolves once every node is in. */
    async ready(ms = 20_000) {
      const deadline = performance.now() + ms;
      while (!nodes.every((n) => n.healthy)) {
        if (performance.now() > deadline) throw new Error(`nodes not ready: ${JSON.stringify(nodes.map((n) => [n.name, n.checks.at(-1)]))}`);
        await sleep(50);
      }
    },
    async close() {
      closed = true;
      await Promise.all(checkers);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The load

/**
 * Démarche workers and cheap workers against `issuer` until `until()` says stop. Every request
 * carries its own X-Request-Id and is recorded by one of `agents`.
 */
function startLoad({ proxy, upstream, sp, issuer, until }) {
  const agents = {
    demarches: new TrackingAgent({ requestIds: true }),
    fresh: new TrackingAgent({ requestIds: true }),
    keepAlive: new TrackingAgent({ keepAlive: true, requestIds: true }),
  };
  trackTraffic(sp, agents.demarches);
  const load = { agents, demarches: [], wrongAnswers: [], thrown: [] };

  const demarcheWorker = async () => {
    while (!until()) {
      const d = { startedAt: performance.now(), endedAt: null, ok: false, why: null };
      load.demarches.push(d);
      try {
        const r = await runDemarche({ proxy, upstream, sp, browser: new HttpBrowser(agents.demarches) });
        d.ok = Boolean(r.tokenSet && r.claims?.act && r.userinfo);
        if (!d.ok) {
          const err = r.tokenError || r.userinfoError;
          d.why = err ? (err.code || err.error || err.message) : `ended at ${r.final?.status ?? JSON.stringify(r.error)} ${r.final?.url ?? ''}`;
        }
      } catch (err) {
        d.why = err.code || err.message;
      }
      d.endedAt = performance.now();
      if (!d.ok) await sleep(20);
    }
  };

  const cheapWorker = async (agent, n) => {
    const browser = new HttpBrowser(agent);
    for (let i = n; !until(); i++) {
      try {
        if (i % 2) {
          const res = await browser.request(`${issuer}/.well-known/openid-configuration`);
          if (res.status !== 200 || JSON.parse(res.body).issuer !== issuer) load.wrongAnswers.push(`discovery ${res.status}: ${res.body.slice(0, 200)}`);
        } else {
          const res = await browser.request(`${issuer}/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: badCodeForm() });
          if (res.status !== 400 || JSON.parse(res.body).error !== 'invalid_grant') load.wrongAnswers.push(`token ${res.status}: ${res.body.slice(0, 200)}`);
        }
      } catch (err) {
        if (err instanceof SyntaxError) load.wrongAnswers.push(`not JSON: ${err.message}`);
        else load.thrown.push({ at: performance.now(), error: err.code || err.message });
        await sleep(10); // the agent's record says what happened
      }
    }
  };

  load.done = Promise.all([
    ...Array.from({ length: DEMARCHE_WORKERS }, demarcheWorker),
    ...Array.from({ length: FRESH_WORKERS }, (_, n) => cheapWorker(agents.fresh, n)),
    ...Array.from({ length: KEEPALIVE_WORKERS }, (_, n) => cheapWorker(agents.keepAlive, n)),
  ]);
  /** Every request made to `port`. */
  load.records = (port) => Object.values(agents).flatMap((a) => a.records).filter((r) => r.port === port);
  return load;
}

/** /metrics scraped every 50 ms, each scrape on a connection of its own, until `until()`. */
function scrapeMetrics(port, until) {
  const agent = new TrackingAgent();
  const browser = new HttpBrowser(agent);
  const scrapes = [];
  const done = (async () => {
    while (!until()) {
      const t0 = performance.now();
      try {
        const res = await browser.request(`http://127.0.0.1:${port}/metrics`);
        scrapes.push({ t0, status: res.status, ok: res.status === 200 && res.body.includes('idp_proxy_http_requests_total') });
      } catch (err) {
        scrapes.push({ t0, error: err.code || err.message });
      }
      await sleep(50);
    }
  })();
  return { agent, scrapes, done };
}

/** Resolves with the process's exit { code, signal, at }, or null after `ms`. */
function exitWithin(child, ms) {
  let timer;
  const exited = child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode, at: performance.now() })
    : new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
  return Promise.race([exited, new Promise((resolve) => { timer = setTimeout(() => resolve(null), ms); })])
    .finally(() => clearTimeout(timer));
}

/** After its exit, every line the process wrote (its stdio closed). */
async function allLogs(proxy) {
  if (proxy.child.stderr.readableEnded === false) await Promise.race([once(proxy.child, 'close'), sleep(2000)]);
  return proxy.logs().stderr;
}

function tcpAnswer(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code));
  });
}

/**
 * Runs every check, then fails with all that failed (one run shows the whole picture).
 * @returns {{check(name, fn), done()}}
 */
function checks() {
  const failed = [];
  return {
    check(name, fn) {
      try {
        fn();
      } catch (err) {
        failed.push(`${name}: ${err.message}`);
      }
    },
    done() {
      if (failed.length) assert.fail(`${failed.length} check(s) failed:\n\n${failed.join('\n\n')}`);
    },
  };
}

const showAt = (signalAt) => (t) => (t === null || t === undefined ? '-' : `${Math.round(t - signalAt)} ms`);
const showRec = (signalAt) => {
  const at = showAt(signalAt);
  return (r) => `${r.method} ${r.url.replace(/\?.*/, '?…')} [${r.sentId}] started ${at(r.startedAt)}, connected ${at(r.connectedAt)}${r.reused ? ' (kept alive)' : ''}, ended ${at(r.endedAt)}: ${r.status ?? ''} ${r.error ?? ''}`;
};

/** The checks of the load itself (or the test proves nothing), and its counts. */
function assertLoad(recs, load, signalAt) {
  const summary = {
    requests: recs.length,
    keptAlive: recs.filter((r) => r.reused).length,
    beforeSignal: recs.filter((r) => r.startedAt < signalAt).length,
    demarches: load.demarches.filter((d) => d.ok).length,
  };
  assert.ok(summary.requests > 200, `enough load: ${summary.requests} requests`);
  assert.ok(summary.beforeSignal > 100, `requests before the signal: ${summary.beforeSignal}`);
  assert.ok(summary.keptAlive > 0, 'some on kept-alive connections');
  assert.ok(recs.every((r) => /^[0-9a-f]{16}$/.test(r.sentId ?? '')), 'each request with an id of its own');
  assert.ok(load.demarches.filter((d) => d.ok && d.endedAt < signalAt).length >= DEMARCHE_WORKERS, 'démarches completed before the signal');
  return summary;
}

/** The node's log: JSON lines, draining then drained (in that order, `drainMs` apart), no error. */
function assertShutdownLog(lines, drainMs) {
  assert.deepEqual(lines.filter((l) => l.unparsed).map((l) => l.unparsed).slice(0, 5), [], 'every log line is JSON');
  const tail = () => lines.slice(-12).map(messageOf).join('\n');
  const draining = lines.findIndex((l) => messageOf(l) === 'SIGTERM received; draining');
  const drained = lines.findIndex((l) => messageOf(l) === 'drained; finishing in-flight requests');
  assert.ok(draining >= 0, `"SIGTERM received; draining" logged:\n${tail()}`);
  assert.equal(lines[draining].fields.drain_secs, drainMs / 1000);
  assert.ok(drained > draining, `then "drained; finishing in-flight requests":\n${tail()}`);
  const apart = Date.parse(lines[drained].timestamp) - Date.parse(lines[draining].timestamp);
  assert.ok(apart >= drainMs - 20 && apart < drainMs + 1000, `drained ${apart} ms after the signal (drain_secs = ${drainMs / 1000})`);
  assert.deepEqual(lines.filter((l) => l.level === 'ERROR' || /panic/i.test(messageOf(l))).slice(0, 5), [], 'no error logged');
  return { draining, drained };
}

// ---------------------------------------------------------------------------------------------
// Case 1: two nodes behind the balancer, node A stopped

async function behindBalancer(resources) {
  const ports = [await freePort(), await freePort()];
  const metricsPort = await freePort();
  const front = await balancer([{ name: 'A', port: ports[0] }, { name: 'B', port: ports[1] }]);
  resources.push(() => front.close());
  const upstream = await startUpstream({
    port: 0, quiet: true, accounts: UPSTREAM_ACCOUNTS,
    clients: [{
      client_id: 'idp-proxy', client_secret: 'dev-upstream-secret-change-me',
      redirect_uris: [`${front.url}/login/callback`], post_logout_redirect_uris: [`${front.url}/logout/callback`],
      token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256',
    }],
  });
  resources.push(() => upstream.close());
  const pg = await createPgDatabase(process.env.E2E_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
  resources.push(() => pg.drop());
  const redis = process.env.E2E_REDIS_URL || process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
  const config = (port, extra) => ({
    server: { listen: `127.0.0.1:${port}`, issuer: front.url, drain_secs: DRAIN_SECS, shutdown_timeout_secs: SHUTDOWN_SECS, trust_request_id: true },
    ephemeral: { backend: 'redis', url: redis, prefix: `shutdown-${ports[0]}:` },
    ...extra,
  });
  const a = await startProxy({
    clients: [SP1], upstreamIssuer: upstream.issuer, importToml: IMPORT, database: pg.url, port: ports[0],
    config: config(ports[0], { metrics: { listen: `127.0.0.1:${metricsPort}` } }),
  });
  resources.push(() => a.stop()); // after b's: b reads a's key ring
  // Node B: the same database, Redis and key ring (as on a shared volume).
  const b = await startProxy({
    clients: [SP1], upstreamIssuer: upstream.issuer, database: pg.url, port: ports[1],
    config: config(ports[1], { keys: { dir: join(a.dir, 'keys') } }),
  });
  resources.push(() => b.stop());
  await front.ready();

  const proxy = { ...a, issuer: front.url };
  const sp = await makeSp(proxy, SP1);
  const out = { a, b, front, metricsPort, signalAt: null, exit: null, stopAt: Infinity };
  const until = () => performance.now() > out.stopAt;
  const load = startLoad({ proxy, upstream, sp, issuer: front.url, until });
  const metrics = scrapeMetrics(metricsPort, until);
  out.load = load;
  out.metrics = metrics;

  const startedAt = performance.now();
  await sleep(LOAD_MS);
  // Right after a health check: the worst case, node A stays in the rotation a whole period
  // into its drain (which is what drain_secs must cover).
  await front.checked('A');
  out.signalAt = performance.now();
  out.signalWall = Date.now(); // for the log's timestamps
  out.loadMs = out.signalAt - startedAt;
  a.child.kill('SIGTERM');
  out.exit = await exitWithin(a.child, (DRAIN_SECS + SHUTDOWN_SECS + 5) * 1000);
  out.stopAt = performance.now() + AFTER_EXIT_MS;
  await Promise.all([load.done, metrics.done]);
  out.afterExit = await tcpAnswer(a.port);
  out.metricsAfterExit = await tcpAnswer(metricsPort);
  out.logA = logLines(await allLogs(a));
  // B's log may lag its answers a little.
  const ids = new Set(load.records(front.port).map((r) => r.sentId));
  for (let i = 0; i < 20; i++) {
    out.logB = logLines(b.logs().stderr);
    const seen = new Set([...out.logA, ...out.logB].filter((l) => messageOf(l) === 'request').map((l) => l.span?.request_id));
    if ([...ids].every((id) => seen.has(id))) break;
    await sleep(100);
  }
  return out;
}

function assertBehindBalancer(out, { check }) {
  const { front, load, signalAt, exit } = out;
  const nodeA = front.node('A');
  const nodeB = front.node('B');
  const recs = load.records(front.port);
  const show = showRec(signalAt);
  const at = showAt(signalAt);
  const drainEnd = signalAt + DRAIN_SECS * 1000;
  const exitAt = exit?.at ?? Infinity;
  const outAt = nodeA.transitions.find((t) => !t.healthy && t.at > signalAt)?.at ?? null;
  const toA = nodeA.forwarded;
  const inFlightA = toA.filter((r) => r.startedAt < signalAt && (r.endedAt ?? Infinity) > signalAt);
  const servedDuringDrain = toA.filter((r) => r.startedAt > signalAt && r.status !== null);
  const requestLinesA = out.logA.filter((l) => messageOf(l) === 'request');
  const clientIds = new Set(recs.map((r) => r.sentId));
  const drainedLine = out.logA.find((l) => messageOf(l) === 'drained; finishing in-flight requests');
  // A check whose connection the listener's close reset (the race of the direct case, on the
  // front's own connection): a failed check like a refused one.
  const resetChecks = nodeA.checks.filter((c) => c.startedAt > signalAt && c.error && c.error !== 'ECONNREFUSED');

  let summary = {};
  check('load', () => {
    summary = assertLoad(recs, load, signalAt);
    assert.ok(toA.filter((r) => r.startedAt < signalAt).length > 20 && nodeB.forwarded.filter((r) => r.startedAt < signalAt).length > 20, 'both nodes served before the signal');
  });

  // The point of the case: nothing failed, anywhere, at any time.
  check('zero failed requests at the client', () => {
    assert.deepEqual(recs.filter((r) => r.endedAt === null).map(show), [], 'every request ended');
    assert.deepEqual(recs.filter((r) => r.error || !r.complete || r.status === null || r.status >= 500).map(show), [],
      'no reset, no hang-up, no incomplete answer, no 5xx, no 502 from the front');
    assert.deepEqual(load.thrown.slice(0, 5), [], 'no request threw');
    assert.deepEqual(load.wrongAnswers.slice(0, 5), [], 'the cheap requests got their usual answers');
    assert.deepEqual(load.demarches.filter((d) => !d.ok).map((d) => `started ${at(d.startedAt)}, ended ${at(d.endedAt)}: ${d.why}`), [], 'every démarche completed');
    assert.equal(front.noNode, 0, 'the front always had a healthy node');
    assert.deepEqual([...toA, ...nodeB.forwarded].filter((r) => r.error && r.error !== 'ECONNREFUSED'), [], 'no cut between the front and a node');
  });

  check('each request served exactly once', () => {
    const lines = [...out.logA, ...out.logB].filter((l) => messageOf(l) === 'request' && clientIds.has(l.span?.request_id));
    const count = new Map();
    for (const l of lines) count.set(l.span.request_id, (count.get(l.span.request_id) ?? 0) + 1);
    assert.deepEqual(recs.filter((r) => count.get(r.sentId) !== 1).map((r) => `${show(r)}: ${count.get(r.sentId) ?? 0} request lines`).slice(0, 10), [], 'one request line per request');
    assert.ok(recs.every((r) => r.requestId === r.sentId), 'each answer carries the id sent');
  });

  check('node A drains', () => {
    const after = nodeA.checks.filter((c) => c.startedAt > signalAt + 50);
    const draining = after.filter((c) => c.code === 503 && c.status === 'draining');
    assert.ok(draining.length >= 5, `node A's /readyz answered 503 "draining" during the drain: ${draining.length} times`);
    assert.ok(draining.every((c) => c.endedAt < drainEnd + 200), 'until the end of the drain');
    const refusedFrom = after.findIndex((c) => c.error);
    assert.deepEqual(after.filter((c) => !(c.code === 503 && c.status === 'draining') && c.error !== 'ECONNREFUSED' && !resetChecks.includes(c)).map((c) => `${at(c.startedAt)}: ${c.code} ${c.status} ${c.error}`), [],
      'after the signal, /readyz answers 503 "draining", then the node refuses connections');
    assert.deepEqual(resetChecks.filter((c) => !TRANSPORT.has(c.error) || Math.abs(c.startedAt - drainEnd) > 200).map((c) => `${at(c.startedAt)}: ${c.error}`), [],
      'a check reset only as the listener closed, at the end of the drain');
    assert.ok(refusedFrom < 0 || after.slice(refusedFrom).every((c) => c.error), 'never "draining" again once refused');
    assert.ok(servedDuringDrain.length > 0, `node A served requests after the signal (front's count: ${servedDuringDrain.length})`);
    assert.ok(servedDuringDrain.every((r) => r.complete && r.status < 500), 'completely');
    const logDrain = assertShutdownLog(out.logA, DRAIN_SECS * 1000);
    const inDrain = out.logA.slice(logDrain.draining, logDrain.drained).filter((l) => messageOf(l) === 'request' && clientIds.has(l.span?.request_id));
    assert.ok(inDrain.length > 0, `node A's log: client requests served between "draining" and "drained": ${inDrain.length}`);
  });

  check('the front took node A out', () => {
    assert.ok(outAt !== null, `node A taken out: ${JSON.stringify(nodeA.transitions)}`);
    assert.ok(outAt - signalAt < 2 * CHECK_MS + 300, `within a health-check period or two of the signal: ${at(outAt)}`);
    assert.deepEqual(toA.filter((r) => r.startedAt > outAt).map((r) => `${at(r.startedAt)}: ${r.status} ${r.error}`), [], 'nothing sent to node A once it was out');
    assert.ok(nodeB.transitions.every((t) => t.healthy), 'node B never out');
  });

  check('node A exits 0 after the drain', () => {
    assert.ok(exit, `node A exited within ${DRAIN_SECS + SHUTDOWN_SECS + 5} s of SIGTERM`);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
    const ms = exit.at - signalAt;
    assert.ok(ms >= DRAIN_SECS * 1000 && ms < DRAIN_SECS * 1000 + 3000, `exited ${Math.round(ms)} ms after SIGTERM (drain ${DRAIN_SECS} s)`);
    assert.equal(out.afterExit, 'ECONNREFUSED', 'nothing listens on node A');
    assert.equal(out.metricsAfterExit, 'ECONNREFUSED', 'nor on its metrics listener');
    assert.ok(drainedLine, 'the drain\'s end logged');
    const lateLines = requestLinesA.filter((l) => Date.parse(l.timestamp) > Date.parse(drainedLine.timestamp) + 1000);
    assert.deepEqual(lateLines.map((l) => JSON.stringify(l)).slice(0, 3), [], 'node A served nothing long after the drain');
  });

  check('démarches go on on node B', () => {
    const afterExit = load.demarches.filter((d) => d.startedAt > exitAt);
    assert.ok(afterExit.length > 0 && afterExit.filter((d) => d.ok).length >= 1, `démarches started after node A exited: ${afterExit.length}, completed: ${afterExit.filter((d) => d.ok).length}`);
    assert.ok(nodeB.forwarded.filter((r) => r.startedAt > exitAt && r.complete).length > 50, 'node B served the load alone');
  });

  check('metrics listener', () => {
    const { scrapes, agent } = out.metrics;
    const before = scrapes.filter((s) => s.t0 < signalAt);
    assert.ok(before.length > 0 && before.every((s) => s.ok), `metrics scraped before the signal: ${JSON.stringify(before.slice(0, 3))}`);
    const draining = scrapes.filter((s) => s.t0 > signalAt && s.t0 < drainEnd);
    assert.ok(draining.length > 5 && draining.every((s) => s.ok), `metrics answered all along the drain: ${JSON.stringify(draining.filter((s) => !s.ok).slice(0, 3))}`);
    // Prometheus scrapes the node itself, with no balancer in between: a scrape that meets the
    // metrics listener's close (after the drain, once the main server is done) may be reset,
    // like the direct case's never-read connections; Prometheus counts a failed scrape and
    // tries again. None may fail before that.
    const showScrape = showRec(signalAt);
    const failed = agent.records.filter((r) => r.error && !(r.error === 'ECONNREFUSED' && r.connectedAt === null));
    assert.deepEqual(failed.filter((r) => r.startedAt < drainEnd || !TRANSPORT.has(r.error)).map(showScrape), [],
      `no scrape cut before the metrics listener closes (node A drained at ${drainedLine ? `${Date.parse(drainedLine.timestamp) - out.signalWall} ms` : '-'}, exited at ${at(exit?.at)})`);
    assert.ok(scrapes.filter((s) => s.t0 > exitAt + 100).every((s) => s.error === 'ECONNREFUSED'), 'refused once node A is gone');
  });

  return {
    ...summary,
    inFlightOnA: inFlightA.length,
    servedByADuringDrain: servedDuringDrain.length,
    aOutAfterMs: outAt && Math.round(outAt - signalAt),
    readyzDraining: nodeA.checks.filter((c) => c.status === 'draining').length,
    checksReset: resetChecks.length,
    retries: front.retries,
    failed: recs.filter((r) => r.error || r.status >= 500).length,
    demarchesAfterAExit: load.demarches.filter((d) => d.ok && d.startedAt > exitAt).length,
    exitMs: exit && Math.round(exit.at - signalAt),
    scrapes: out.metrics.scrapes.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Case 2: one node, load straight at it, drain_secs = 0

/**
 * A POST /token on a raw socket: the head and half the body now, the rest on `finish()`, which
 * resolves with the answer read to the connection's end, its completeness checked.
 */
async function halfSentTokenRequest(port, id) {
  const body = badCodeForm();
  const socket = connect(port, '127.0.0.1');
  const chunks = [];
  socket.on('data', (d) => chunks.push(d));
  const closed = new Promise((resolve) => {
    socket.once('error', (e) => resolve(e));
    socket.once('close', () => resolve(null));
  });
  await once(socket, 'connect');
  const half = Math.floor(body.length / 2);
  socket.write(`POST /token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${basic}\r\nX-Request-Id: ${id}\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n`
    + `Connection: close\r\n\r\n${body.slice(0, half)}`);
  return {
    async finish() {
      const sentAt = performance.now();
      socket.write(body.slice(half));
      const error = await closed;
      return { id, sentAt, endedAt: performance.now(), error: error && (error.code || error.message), ...parseAnswer(Buffer.concat(chunks)) };
    },
  };
}

/** An HTTP/1.1 answer read to the end of its connection: status, headers, body, complete. */
function parseAnswer(raw) {
  const sep = raw.indexOf('\r\n\r\n');
  if (sep < 0) return { status: null, complete: false, raw: raw.toString('latin1') };
  const [statusLine, ...lines] = raw.subarray(0, sep).toString('latin1').split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  let rest = raw.subarray(sep + 4);
  let body;
  let complete;
  if (headers['content-length'] !== undefined) {
    complete = rest.length === Number(headers['content-length']);
    body = rest.toString('utf8');
  } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    const parts = [];
    complete = false;
    for (;;) {
      const eol = rest.indexOf('\r\n');
      if (eol < 0) break;
      const size = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
      if (Number.isNaN(size)) break;
      if (size === 0) { complete = true; break; }
      if (rest.length < eol + 2 + size + 2) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
    body = Buffer.concat(parts).toString('utf8');
  } else {
    complete = false; // neither length nor chunks: its end cannot be told from a cut
    body = rest.toString('utf8');
  }
  return { status: Number(statusLine.split(' ')[1]), statusLine, headers, body, complete };
}

async function direct(resources) {
  const world = await startWorld({
    clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
    config: { server: { drain_secs: 0, shutdown_timeout_secs: SHUTDOWN_SECS, trust_request_id: true } },
  });
  resources.push(() => world.stop());
  const { proxy, upstream } = world;
  const sp = await makeSp(proxy, SP1);
  const out = { proxy, signalAt: null, exit: null, slow: null };
  const until = () => out.signalAt !== null && performance.now() > out.signalAt + AFTER_MS;
  const load = startLoad({ proxy, upstream, sp, issuer: proxy.issuer, until });
  out.load = load;

  const startedAt = performance.now();
  await sleep(LOAD_MS - 300);
  const slow = await halfSentTokenRequest(proxy.port, newId());
  await sleep(300);
  out.signalAt = performance.now();
  out.loadMs = out.signalAt - startedAt;
  proxy.child.kill('SIGTERM');
  await sleep(SLOW_BODY_AFTER_MS);
  out.slow = await slow.finish();
  await load.done;
  out.exit = await exitWithin(proxy.child, (SHUTDOWN_SECS + 5) * 1000);
  out.afterExit = await tcpAnswer(proxy.port);
  out.log = logLines(await allLogs(proxy));
  return out;
}

function assertDirect(out, { check }) {
  const { proxy, load, signalAt, slow, exit } = out;
  const recs = load.records(proxy.port);
  const show = showRec(signalAt);
  const at = showAt(signalAt);
  const linesById = new Map();
  for (const l of out.log) {
    const id = l.span?.request_id;
    if (id) linesById.set(id, [...(linesById.get(id) ?? []), l]);
  }
  const requestLine = (id) => (linesById.get(id) ?? []).find((l) => messageOf(l) === 'request');
  const answered = recs.filter((r) => r.status !== null);
  const inFlight = answered.filter((r) => r.startedAt < signalAt && r.endedAt > signalAt);
  const failed = recs.filter((r) => r.error);
  const refused = failed.filter((r) => r.error === 'ECONNREFUSED' && r.connectedAt === null);
  const neverRead = failed.filter((r) => !refused.includes(r));
  const late = recs.filter((r) => r.startedAt > signalAt + RACE_MS);

  let summary = {};
  check('load', () => {
    summary = assertLoad(recs, load, signalAt);
    const demarches = load.demarches;
    assert.deepEqual(demarches.filter((d) => !d.ok && d.endedAt < signalAt).map((d) => d.why), [], 'no démarche failed before the signal');
    assert.deepEqual(demarches.filter((d) => !d.ok && d.endedAt > signalAt && !TRANSPORT.has(d.why)).map((d) => d.why), [], 'after it, only on a refused or never-read connection');
    assert.deepEqual(load.wrongAnswers.slice(0, 5), [], 'the cheap requests got their usual answers');
  });

  // Whatever the node started, it finished.
  check('every request the node logged got its whole answer', () => {
    assert.deepEqual(recs.filter((r) => r.endedAt === null).map(show), [], 'every request ended');
    const logged = recs.filter((r) => requestLine(r.sentId));
    assert.ok(logged.length > 100, `requests logged: ${logged.length}`);
    assert.deepEqual(logged.filter((r) => r.error || !r.complete || r.status !== requestLine(r.sentId).fields.status).map(show), [], 'answered in full, with the status logged');
    assert.deepEqual(answered.filter((r) => !r.complete || r.status >= 500 || r.requestId !== r.sentId).map(show), [], 'every answer complete, none 5xx, under the id sent');
  });

  // What failed was never read: refused at connect after the stop, or reset at the listener's close.
  check('only never-read requests failed', () => {
    assert.deepEqual(failed.filter((r) => linesById.has(r.sentId)).map((r) => `${show(r)}\n  ${JSON.stringify(linesById.get(r.sentId))}`), [],
      'no failed request in the node\'s log (not a line under its id)');
    assert.deepEqual(failed.filter((r) => r.status !== null).map(show), [], 'no answer cut after its head');
    assert.deepEqual(refused.filter((r) => r.startedAt < signalAt).map(show), [], 'nothing refused before the signal');
    // A connection the kernel completed and reset before Node saw it connect has no connectedAt:
    // its connect attempt's start stands for it.
    assert.deepEqual(neverRead.filter((r) => !TRANSPORT.has(r.error) || Math.abs((r.connectedAt ?? r.startedAt) - signalAt) > RACE_MS).map(show), [],
      `reset connections are the listener's backlog at the signal: connected within ±${RACE_MS} ms of it`);
  });

  check('in flight at the signal', () => {
    assert.ok(inFlight.length > 0, 'requests in flight at the signal (or the test proves nothing)');
    assert.equal(slow.error, null, `the half-sent request: ${slow.error}`);
    assert.ok(slow.complete, `the half-sent request's answer is complete: ${slow.statusLine} ${JSON.stringify(slow.headers)} ${slow.body ?? slow.raw}`);
    assert.equal(slow.status, 400, slow.body);
    assert.equal(JSON.parse(slow.body).error, 'invalid_grant');
    assert.equal(slow.headers['x-request-id'], slow.id);
    assert.equal(requestLine(slow.id)?.fields.status, 400, 'logged');
  });

  check('refused after the stop', () => {
    assert.ok(late.length > 0, 'the clients kept trying after the signal');
    assert.deepEqual(late.filter((r) => r.connectedAt !== null).map(show), [], `no connection accepted or reused more than ${RACE_MS} ms after the signal`);
    assert.ok(late.every((r) => r.error === 'ECONNREFUSED'), 'every later attempt refused');
    assert.ok(late.some((r) => r.startedAt < slow.endedAt), 'refused while the half-sent request was still being served');
  });

  check('exit', () => {
    assert.ok(exit, `the process exited within ${SHUTDOWN_SECS + 5} s of SIGTERM`);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
    assert.ok(exit.at - signalAt < SHUTDOWN_SECS * 1000, `exited ${Math.round(exit.at - signalAt)} ms after SIGTERM`);
    assert.ok(exit.at > slow.endedAt, 'not before the half-sent request was answered');
    assert.equal(out.afterExit, 'ECONNREFUSED');
    assertShutdownLog(out.log, 0);
  });

  return {
    ...summary,
    inFlight: inFlight.length,
    refusedAfter: refused.length,
    neverRead: neverRead.length,
    neverReadAt: neverRead.map((r) => `${r.error} ${r.connectedAt === null ? `connecting from ${at(r.startedAt)}` : `connected ${at(r.connectedAt)}`}${r.reused ? ' (kept alive)' : ''}`),
    exitMs: exit && Math.round(exit.at - signalAt),
    slowMs: Math.round(slow.endedAt - signalAt),
  };
}

describe('SIGTERM under load', () => {
  const resources = [];
  after(async () => {
    for (const stop of resources.reverse()) await stop();
  });

  it('behind a balancer: the node drains, the front takes it out, no client request fails', async (t) => {
    const out = await behindBalancer(resources);
    const c = checks();
    t.diagnostic(JSON.stringify(assertBehindBalancer(out, c)));
    c.done();
  });

  it('direct: every request the node started is answered in full; only never-read connections fail, at the signal', async (t) => {
    const out = await direct(resources);
    const c = checks();
    t.diagnostic(JSON.stringify(assertDirect(out, c)));
    c.done();
  });
});
