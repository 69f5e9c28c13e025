// The aidants' identity provider slow or down (issue #5): every call to it is bounded by
// upstream.aidant.timeout_secs, the browser gets a clear French page (503) in about that time,
// no code reaches the service provider, the node stays ready (an upstream's outage must not
// take the nodes out of the balancer), and when the provider is back the same process logs
// aidants in again, without a restart.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';

import { freePort, makeSp, runDemarche, startProxy, startUpstream, textOf, trace } from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

const TIMEOUT_SECS = 1;

/** A server that accepts connections and never answers: an upstream that hangs. */
async function blackHole(port) {
  const sockets = new Set();
  const server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  };
}

describe('the aidants\' identity provider slow or down', () => {
  let upstreamPort;
  let proxyPort;
  let upstream;
  let proxy;
  let sp;

  const startIdp = () => startUpstream({
    port: upstreamPort, quiet: true, accounts: UPSTREAM_ACCOUNTS,
    clients: [{
      client_id: 'idp-proxy', client_secret: 'dev-upstream-secret-change-me',
      redirect_uris: [`http://127.0.0.1:${proxyPort}/login/callback`],
      post_logout_redirect_uris: [`http://127.0.0.1:${proxyPort}/logout/callback`],
      token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256',
    }],
  });

  before(async () => {
    upstreamPort = await freePort();
    proxyPort = await freePort();
    // Nothing listens on the upstream's port yet: the proxy starts all the same (discovery is
    // fetched at the first login).
    proxy = await startProxy({
      clients: [SP1], importToml: IMPORT, port: proxyPort, upstreamIssuer: `http://127.0.0.1:${upstreamPort}`,
      config: { 'upstream.aidant': { timeout_secs: TIMEOUT_SECS } },
    });
    sp = await makeSp(proxy, SP1);
  });

  after(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const ready = async () => (await fetch(`${proxy.issuer}/readyz`)).status;

  const refused = async (what) => {
    const started = Date.now();
    const r = await runDemarche({ proxy, upstream: { issuer: `http://127.0.0.1:${upstreamPort}` }, sp });
    const elapsed = Date.now() - started;
    assert.equal(r.code ?? null, null, `${what}: no code reaches the service ${trace(r)}`);
    assert.equal(r.final?.status, 503, `${what}: ${trace(r)}`);
    assert.match(textOf(r.final.body), /Le service d'identification des aidants ne répond pas/);
    assert.ok(elapsed < (TIMEOUT_SECS + 3) * 1000, `${what}: answered in ${elapsed} ms, within the bound`);
    assert.equal(await ready(), 200, `${what}: the node stays ready`);
    return elapsed;
  };

  it('answers a clear page at once when the provider refuses connections', async () => {
    await refused('connection refused');
  });

  it('answers a clear page within the timeout when the provider hangs', async () => {
    const hole = await blackHole(upstreamPort);
    try {
      const elapsed = await refused('no answer');
      assert.ok(elapsed >= TIMEOUT_SECS * 1000 - 50, `waited for the timeout (${elapsed} ms), not less`);
    } finally {
      await hole.close();
    }
  });

  it('logs aidants in again once the provider is back, without a restart', async () => {
    upstream = await startIdp();
    const back = await runDemarche({ proxy, upstream, sp });
    assert.ok(back.claims?.act, trace(back));
  });
});
