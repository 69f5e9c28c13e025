// Stateless nodes (issue #5): two idp-proxy processes share one PostgreSQL, one Redis and one
// key ring behind a round-robin front that sends each request to the other node. A whole
// démarche alternates nodes from one request to the next — authorize, login callback, choice
// page, choice, token, userinfo — and a code replayed on the other node is refused.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { join } from 'node:path';

import { createPgDatabase, freePort, makeSp, runDemarche, startProxy, startUpstream, trace } from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

/** Alternates requests between the nodes; counts what each served. */
async function roundRobin(ports) {
  const served = ports.map(() => 0);
  let next = 0;
  const server = createServer((req, res) => {
    const i = next++ % ports.length;
    served[i] += 1;
    const up = request({ host: '127.0.0.1', port: ports[i], method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, served, close: () => new Promise((r) => server.close(r)) };
}

describe('two stateless nodes behind one address', () => {
  let upstream;
  let nodes = [];
  let front;
  let pg;
  let sp;

  before(async () => {
    const ports = [await freePort(), await freePort()];
    front = await roundRobin(ports);
    upstream = await startUpstream({
      port: 0, quiet: true, accounts: UPSTREAM_ACCOUNTS,
      clients: [{
        client_id: 'idp-proxy', client_secret: 'dev-upstream-secret-change-me',
        redirect_uris: [`${front.url}/login/callback`], post_logout_redirect_uris: [`${front.url}/logout/callback`],
        token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256',
      }],
    });
    pg = await createPgDatabase(process.env.E2E_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres');
    const redis = process.env.E2E_REDIS_URL || process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
    const shared = (port, keysDir) => ({
      server: { listen: `127.0.0.1:${port}`, issuer: front.url },
      ephemeral: { backend: 'redis', url: redis, prefix: `two-nodes-${ports[0]}:` },
      ...(keysDir ? { keys: { dir: keysDir } } : {}),
    });
    const first = await startProxy({ clients: [SP1], upstreamIssuer: upstream.issuer, importToml: IMPORT, database: pg.url, port: ports[0], config: shared(ports[0]) });
    // The second node: same database, same Redis, the same key ring (as on a shared volume).
    const second = await startProxy({ clients: [SP1], upstreamIssuer: upstream.issuer, database: pg.url, port: ports[1], config: shared(ports[1], join(first.dir, 'keys')) });
    nodes = [first, second];
    sp = await makeSp({ ...first, issuer: front.url }, SP1);
  });

  after(async () => {
    for (const n of nodes) await n.stop();
    await front?.close();
    await upstream?.close();
    await pg?.drop();
  });

  it('completes a démarche whose successive requests alternate between the nodes', async () => {
    const before = [...front.served];
    const r = await runDemarche({ proxy: { ...nodes[0], issuer: front.url }, upstream, sp });
    assert.ok(r.claims?.act, trace(r));
    assert.equal(r.claims.given_name, 'Michel');
    assert.equal(r.userinfo?.sub, r.claims.sub, r.userinfoError?.message);
    const served = front.served.map((n, i) => n - before[i]);
    assert.ok(served.every((n) => n >= 3), `both nodes served steps: ${served}`);
  });

  it('refuses a code replayed on the other node, and revokes what it issued', async () => {
    const r = await runDemarche({ proxy: { ...nodes[0], issuer: front.url }, upstream, sp });
    assert.ok(r.tokenSet?.access_token, trace(r));
    // The token request went to one node; the replay goes to the next.
    const replay = await fetch(`${front.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${SP1.client_id}:${SP1.client_secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: r.code, redirect_uri: sp.redirectUri, code_verifier: r.checks.code_verifier }),
    });
    assert.equal(replay.status, 400);
    assert.equal((await replay.json()).error, 'invalid_grant');
    await assert.rejects(sp.client.userinfo(r.tokenSet), (err) => err.response?.statusCode === 401, 'the first access token is revoked on every node');
  });
});
