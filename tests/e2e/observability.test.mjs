// Observability (issue #5): metrics, request ids and logs, and no personal data in them. The
// Prometheus text on the metrics listener (`[metrics] listen`), never on the public one, parsed
// line by line: requests by route pattern, method and status (an unknown path is `unmatched`,
// and no path, id or query value becomes a label), the latency histogram consistent with the
// counts, tokens by client and démarche exactly as issued, a revoked mandate counted as a
// refusal. Every answer carries `X-Request-Id`: a safe one from the reverse proxy is echoed, an
// unsafe one replaced. Logs: every stderr line is JSON; each request gives exactly one `request`
// line (method, route pattern, status, latency) under a span with the id the client got back,
// and the other lines of that request carry the same id. Then the whole log is searched for
// what must never be in it: the usagers' and aidants' names, birth data and e-mails, the codes,
// tokens (and the ID token's signature), client and upstream secrets, a wrong secret tried, the
// PKCE verifier, state, nonce, CSRF token, session cookies and interaction ids of the flows run.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import {
  HttpBrowser, TrackingAgent, freePort, makeSp, rawRequest, runDemarche, startWorld, trace, trackTraffic,
} from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

const SAFE_ID = /^[A-Za-z0-9._-]{8,64}$/;
const GENERATED_ID = /^[0-9a-f]{32}$/;
const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The Prometheus text format (0.0.4): `# HELP` and `# TYPE` lines, samples `name{labels} value`.
 * Throws on any line it cannot read.
 * @returns {{types: Map<string,string>, samples: {name:string, labels:object, value:number, line:string}[]}}
 */
function parsePrometheus(text) {
  const types = new Map();
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/);
      if (!m) throw new Error(`bad comment line: ${line}`);
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`bad type: ${line}`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const labels = {};
    if (m[2]) {
      const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"\s*(,|$)/y;
      let rest = m[2];
      while (rest.length) {
        re.lastIndex = 0;
        const l = re.exec(rest);
        if (!l) throw new Error(`bad labels: ${line}`);
        if (l[1] in labels) throw new Error(`label twice: ${line}`);
        labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
        rest = rest.slice(l[0].length);
      }
    }
    const raw = m[3];
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1], labels, value, line });
  }
  return { types, samples };
}

/** Samples of `name` whose labels include `labels`. */
const select = (parsed, name, labels = {}) => parsed.samples
  .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const total = (parsed, name, labels) => select(parsed, name, labels).reduce((a, s) => a + s.value, 0);

/** The JSON lines of the serve process's stderr (throws on a line that is not JSON). */
function logLines(stderr) {
  return stderr.split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`a log line is not JSON: ${l}`);
    }
  });
}

/** A route pattern (`/interaction/{id}`) as a regex of the paths it matches. */
const routeRegex = (route) => new RegExp(`^${route.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);

describe('metrics, request ids and logs', () => {
  let world;
  let sp;
  let metricsPort;
  let metricsUrl;
  const scrape = async () => {
    const res = await rawRequest(metricsUrl);
    assert.equal(res.status, 200, res.body);
    return { res, parsed: parsePrometheus(res.body) };
  };

  before(async () => {
    metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    world = await startWorld({
      clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      // Behind a proxy that sets X-Request-Id, as compose and Kubernetes run it.
      config: { metrics: { listen: `127.0.0.1:${metricsPort}` }, server: { trust_request_id: true } },
    });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  const flows = []; // every démarche of the file: the log must hold none of their secrets
  const demarche = async (opts) => {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, ...opts });
    flows.push(r);
    return r;
  };
  const chosen = (r) => r.posted.get('choice').split(':').pop();

  it('serves Prometheus text on the metrics listener only, counting by route pattern, client and démarche', async () => {
    const issued = new Map(); // "client demarche" -> tokens
    for (const choose of [(o) => o[0], (o) => o.find((x) => x.demarche === 'argent' && x.mandateId === world.proxy.summary.mandates[0])]) {
      const r = await demarche({ choose });
      assert.ok(r.tokenSet?.access_token && r.claims?.act, trace(r));
      const key = `${SP1.client_id} ${chosen(r)}`;
      issued.set(key, (issued.get(key) ?? 0) + 1);
    }
    // Revoked between the choice and the token request: invalid_grant, reason `revoked`.
    const rose = world.proxy.summary.mandates[4];
    const refused = await demarche({
      choose: (o) => o.find((x) => x.mandateId === rose),
      beforeToken: () => world.proxy.cli(['mandates', 'revoke', rose, '--reason', 'test']),
    });
    assert.ok(refused.code, trace(refused));
    assert.equal(refused.tokenError?.error, 'invalid_grant', trace(refused));
    // Values that must never become labels: a path, an id in a path, a query value.
    const secretPath = `/no-such-page-${randomBytes(6).toString('hex')}`;
    const secretId = randomBytes(9).toString('hex');
    const secretQuery = randomBytes(9).toString('hex');
    assert.equal((await rawRequest(`${world.proxy.issuer}${secretPath}?x=${secretQuery}`)).status, 404);
    assert.equal((await rawRequest(`${world.proxy.issuer}/interaction/${secretId}`)).status < 500, true);
    assert.ok((await rawRequest(`${world.proxy.issuer}/authorize?client_id=sp-1&state=${secretQuery}`)).status < 500);
    // Not on the public listener (counted as unmatched there).
    const pub = await rawRequest(`${world.proxy.issuer}/metrics`);
    assert.equal(pub.status, 404);
    assert.doesNotMatch(pub.body, /idp_proxy_/);

    const { res, parsed } = await scrape();
    assert.match(res.contentType, /^text\/plain; version=0\.0\.4/);
    for (const s of parsed.samples) {
      const family = parsed.types.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(parsed.types.has(family), `a # TYPE for ${s.line}`);
    }
    for (const v of [secretPath, secretId, secretQuery]) {
      assert.deepEqual(parsed.samples.filter((s) => s.line.includes(v)).map((s) => s.line), [], `no metric names ${v}`);
    }
    const routes = new Set(select(parsed, 'idp_proxy_http_requests_total').map((s) => s.labels.route));
    for (const route of routes) assert.ok(route === 'unmatched' || route.startsWith('/'), `a route pattern: ${route}`);
    assert.ok(routes.has('/interaction/{id}'), [...routes].join(' '));
    assert.ok(total(parsed, 'idp_proxy_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' }) >= 2, 'the unknown path and /metrics');

    // Requests, by route, method and status.
    const tokens = [...issued.values()].reduce((a, n) => a + n, 0);
    assert.equal(total(parsed, 'idp_proxy_http_requests_total', { route: '/token', method: 'POST', status: '200' }), tokens);
    assert.equal(total(parsed, 'idp_proxy_http_requests_total', { route: '/token', method: 'POST', status: '400' }), 1, 'the refused token request');
    assert.ok(total(parsed, 'idp_proxy_http_requests_total', { route: '/authorize', method: 'GET', status: '303' }) >= 3);
    // The latency histogram: cumulative buckets up to +Inf, equal to the count and the requests.
    assert.equal(parsed.types.get('idp_proxy_http_request_duration_seconds'), 'histogram');
    const buckets = select(parsed, 'idp_proxy_http_request_duration_seconds_bucket', { route: '/token' });
    assert.ok(buckets.length >= 2, 'bucket lines for /token');
    const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
    assert.deepEqual(les, [...les].sort((a, b) => a - b), 'buckets in order');
    assert.equal(les.at(-1), Infinity);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative buckets');
    const count = total(parsed, 'idp_proxy_http_request_duration_seconds_count', { route: '/token' });
    assert.equal(buckets.at(-1).value, count);
    assert.equal(count, total(parsed, 'idp_proxy_http_requests_total', { route: '/token' }));
    assert.ok(total(parsed, 'idp_proxy_http_request_duration_seconds_sum', { route: '/token' }) > 0);
    // Tokens, exactly as issued; the refusal, by reason.
    assert.equal(parsed.types.get('idp_proxy_tokens_issued_total'), 'counter');
    const series = select(parsed, 'idp_proxy_tokens_issued_total').filter((s) => s.value > 0)
      .map((s) => [`${s.labels.client} ${s.labels.demarche}`, s.value]).sort();
    assert.deepEqual(series, [...issued.entries()].sort());
    assert.equal(total(parsed, 'idp_proxy_mandate_refusals_total', { reason: 'revoked' }), 1);
  });

  it('returns an X-Request-Id on every answer: a safe incoming one echoed, an unsafe one replaced', async () => {
    const iss = world.proxy.issuer;
    const answers = await Promise.all([
      rawRequest(`${iss}/.well-known/openid-configuration`),
      rawRequest(`${iss}/authorize?client_id=sp-1&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(SP1.redirect_uris[0])}`),
      rawRequest(`${iss}/token`, { method: 'POST', headers: { authorization: basic(SP1.client_id, SP1.client_secret), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&code=nope' }),
      rawRequest(`${iss}/token`, { method: 'POST', headers: { authorization: basic(SP1.client_id, 'wrong'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&code=nope' }),
      rawRequest(`${iss}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=${'x'.repeat(70 * 1024)}` }),
      rawRequest(`${iss}/userinfo`),
      rawRequest(`${iss}/no-such-page`),
      rawRequest(`${iss}/token`, { method: 'DELETE' }),
    ]);
    const statuses = answers.map((a) => a.status);
    assert.ok([200, 303, 400, 401, 404, 413].every((s) => statuses.includes(s)), `a variety of answers: ${statuses}`);
    const ids = answers.map((a) => a.headers.get('x-request-id'));
    ids.forEach((id, i) => assert.match(id ?? '', GENERATED_ID, `answer ${statuses[i]} carries a generated id`));
    assert.equal(new Set(ids).size, ids.length, 'one id per request');

    const echo = async (sent) => (await rawRequest(`${iss}/.well-known/openid-configuration`, { headers: { 'x-request-id': sent } })).headers.get('x-request-id');
    const safe = ['lb-req.0001_abc', 'abcdefgh', 'A'.repeat(64), '0b8f6c1e-6c43-4a43-9d0b-3f5b6ad5c2a1'];
    for (const sent of safe) assert.equal(await echo(sent), sent, `echoed: ${sent}`);
    const unsafe = ['short', 'abcdefg', 'A'.repeat(65), 'has space here', 'quote"inside-it', 'semi;colon-here', 'brace{x}-value', 'ünicode-value'];
    for (const sent of unsafe) {
      const got = await echo(sent);
      assert.notEqual(got, sent, `replaced: ${sent}`);
      assert.match(got ?? '', GENERATED_ID, `a generated id instead of ${JSON.stringify(sent)}`);
    }
    // Echoed ids are the log's request ids; refused ones are nowhere in the log.
    await sleep(200);
    const lines = logLines(world.proxy.logs().stderr);
    for (const sent of safe) {
      assert.ok(lines.some((l) => l.fields?.message === 'request' && l.span?.request_id === sent), `a request line with request_id ${sent}`);
    }
    const raw = world.proxy.logs().stderr;
    for (const sent of unsafe.filter((u) => u.length > 7)) assert.ok(!raw.includes(sent) && !raw.includes(JSON.stringify(sent).slice(1, -1)), `not logged: ${sent}`);
  });

  it('logs one JSON request line per request under its id, and no personal data or secret', async (t) => {
    const agent = new TrackingAgent();
    const browser = new HttpBrowser(agent);
    const tracked = trackTraffic(await makeSp(world.proxy, SP1), agent);
    await sleep(100);
    const offset = world.proxy.logs().stderr.length;

    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: tracked, browser });
    flows.push(r);
    assert.ok(r.tokenSet?.access_token && r.claims?.act && r.userinfo, trace(r));
    // A wrong client secret, tried: no more in the log than the right one.
    const wrongSecret = `wrong-secret-${randomBytes(8).toString('hex')}`;
    const wrong = await browser.request(`${world.proxy.issuer}/token`, {
      method: 'POST', headers: { authorization: basic(SP1.client_id, wrongSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: r.code, redirect_uri: tracked.redirectUri, code_verifier: r.checks.code_verifier }).toString(),
    });
    assert.equal(wrong.status, 401, wrong.body);

    const mine = agent.records.filter((x) => x.port === world.proxy.port);
    assert.ok(mine.length >= 8, `the démarche's requests to the proxy: ${mine.length}`);
    assert.ok(mine.every((x) => x.complete && SAFE_ID.test(x.requestId ?? '')), 'each answered with an id');
    let requestLines;
    for (let i = 0; i < 20; i++) { // stderr may lag behind the answers a little
      requestLines = logLines(world.proxy.logs().stderr.slice(offset)).filter((l) => l.fields?.message === 'request');
      if (requestLines.length >= mine.length) break;
      await sleep(100);
    }

    // Every line of the whole log is JSON (logLines throws otherwise).
    const all = logLines(world.proxy.logs().stderr);
    assert.ok(all.length > 0);
    for (const l of all) {
      assert.ok(l.timestamp && l.level && l.target && l.fields && typeof l.fields.message === 'string', `tracing's JSON layout: ${JSON.stringify(l)}`);
    }

    // One request line per request, under the id the client got, with what it saw.
    assert.equal(requestLines.length, mine.length, `as many request lines as requests:\n${requestLines.map((l) => JSON.stringify(l)).join('\n')}`);
    for (const x of mine) {
      const ls = requestLines.filter((l) => l.span?.request_id === x.requestId);
      assert.equal(ls.length, 1, `one request line for ${x.method} ${new URL(x.url).pathname} (${x.requestId})`);
      const [l] = ls;
      assert.equal(l.level, 'INFO');
      assert.equal(l.target, 'idp_proxy::observe');
      assert.equal(l.span.name, 'request');
      assert.equal(l.fields.method, x.method);
      assert.equal(l.fields.status, x.status);
      assert.equal(typeof l.fields.micros, 'number');
      if (l.fields.route === 'unmatched') assert.equal(x.status, 404);
      else assert.match(new URL(x.url).pathname, routeRegex(l.fields.route), `route ${l.fields.route} is the pattern of ${new URL(x.url).pathname}`);
      assert.ok(!l.fields.route.includes('?'), 'no query in a route');
    }
    // The other lines of a request carry its id: the code, the tokens, the login.
    const byPath = (method, path) => mine.find((x) => x.method === method && new URL(x.url).pathname === path && x.status < 400);
    const lineOf = (x, message) => all.find((l) => l.span?.request_id === x?.requestId && l.fields.message === message);
    assert.ok(lineOf(byPath('POST', '/token'), 'tokens issued'), '"tokens issued" under the token request\'s id');
    assert.ok(lineOf(byPath('GET', '/login/callback'), 'aidant logged in'), '"aidant logged in" under the callback\'s id');
    const choice = mine.find((x) => x.method === 'POST' && new URL(x.url).pathname.startsWith('/interaction/'));
    assert.ok(lineOf(choice, 'code issued'), '"code issued" under the choice\'s id');

    // No personal data, no secret, anywhere in the log.
    const log = world.proxy.logs().stderr;
    const person = (p) => [p.given_name, p.family_name, p.birthdate, p.birthplace, p.email].filter(Boolean);
    const secretsOf = (f, n) => {
      const cb = f.steps.find((x) => new URL(x.url).pathname === '/login/callback');
      const loginCallback = cb ? new URL(cb.url) : null;
      const idToken = f.tokenSet?.id_token;
      return Object.entries({
        code: f.code,
        'access token': f.tokenSet?.access_token,
        'ID token': idToken,
        'ID token signature': idToken?.split('.')[2],
        'ID token payload': idToken?.split('.')[1],
        'PKCE verifier': f.checks.code_verifier,
        state: f.checks.state,
        nonce: f.checks.nonce,
        'upstream code': loginCallback?.searchParams.get('code'),
        'upstream state': loginCallback?.searchParams.get('state'),
        'CSRF token': f.interaction?.page.csrf,
        'interaction id': f.interaction && new URL(f.interaction.url).pathname.split('/').pop(),
        ...Object.fromEntries(f.browser.cookies(world.proxy.issuer).filter((c) => c.value.length >= 16).map((c, i) => [`cookie ${c.name} #${i}`, c.value])),
      }).map(([k, v]) => [`démarche ${n}: ${k}`, v]);
    };
    assert.ok(flows.every((f) => f.code), 'the démarches of this file (this one, and the metrics case\'s when it ran), each with its code');
    assert.ok(r.tokenSet.id_token && r.checks.nonce && r.interaction.page.csrf && r.browser.cookies(world.proxy.issuer).length, 'the secrets of the last one');
    const forbidden = {
      ...Object.fromEntries(IMPORT.usagers.flatMap((u) => person(u).map((v, i) => [`usager ${u.ref} #${i}`, v]))),
      ...Object.fromEntries(IMPORT.aidants.flatMap((a) => person(a).map((v, i) => [`aidant ${a.subject} #${i}`, v]))),
      ...Object.fromEntries(flows.flatMap((f, n) => secretsOf(f, n)).filter(([, v]) => v)),
      'client secret': SP1.client_secret,
      'client Basic credentials': basic(SP1.client_id, SP1.client_secret).slice(6),
      'wrong client secret': wrongSecret,
      'upstream client secret': 'dev-upstream-secret-change-me',
    };
    const found = [];
    for (const [what, value] of Object.entries(forbidden)) {
      assert.ok(value && value.length >= 4, `${what}: a value to look for`);
      const forms = new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]);
      for (const v of forms) {
        const re = new RegExp(`(?<![A-Za-z0-9])${v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`, 'i');
        const line = log.split('\n').find((l) => re.test(l));
        if (line) { found.push(`${what} (${v}) in: ${line}`); break; }
      }
    }
    assert.deepEqual(found, [], 'no personal data or secret in the log');
    t.diagnostic(`${mine.length} requests in the démarche, ${all.length} log lines, ${Object.keys(forbidden).length} values searched`);
  });
});
