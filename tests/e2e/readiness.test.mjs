// Probes and failing closed on Redis: /healthz answers while the process lives; /readyz says
// whether this node can serve now (database, ephemeral store, keys). With its Redis stopped a
// node is not ready and a démarche gets a clear 503, no code; Redis back, the same process
// serves again without a restart.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeSp, runDemarche, startRedis, startWorld, textOf, trace } from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

describe('readiness, and Redis going away and coming back', () => {
  let world;
  let sp;
  let redis;

  before(async () => {
    redis = await startRedis();
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      config: { ephemeral: { backend: 'redis', url: redis.url, prefix: 'readiness:', timeout_ms: 300 } } });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => {
    await world?.stop();
    await redis?.close();
  });

  const probe = async (path) => {
    const res = await fetch(`${world.proxy.issuer}${path}`);
    return { status: res.status, body: await res.json() };
  };

  it('chooses its own request ids unless told to trust the proxy\'s', async () => {
    const res = await fetch(`${world.proxy.issuer}/healthz`, { headers: { 'x-request-id': 'chosen-by-the-client' } });
    await res.arrayBuffer();
    const id = res.headers.get('x-request-id');
    assert.ok(id && id !== 'chosen-by-the-client', `a generated id, not the client's: ${id}`);
  });

  it('is alive and ready with its database, Redis and keys', async () => {
    assert.deepEqual(await probe('/healthz'), { status: 200, body: { status: 'ok' } });
    assert.deepEqual(await probe('/readyz'), { status: 200, body: { status: 'ready', database: true, ephemeral: true, keys: true } });
    const ok = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp });
    assert.ok(ok.claims?.act, trace(ok));
  });

  it('fails closed while Redis is down, and serves again when it is back, without a restart', async () => {
    await redis.kill();
    await new Promise((r) => setTimeout(r, 300));
    const down = await probe('/readyz');
    assert.equal(down.status, 503);
    assert.equal(down.body.ephemeral, false);
    assert.equal(down.body.database, true);
    assert.equal((await probe('/healthz')).status, 200, 'alive all the same');
    const refused = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp });
    assert.equal(refused.code ?? null, null, 'no code without the store');
    assert.equal(refused.final?.status, 503, trace(refused));
    assert.match(textOf(refused.final.body), /momentanément indisponible/);

    await redis.start();
    let ready;
    for (let i = 0; i < 50; i++) {
      ready = await probe('/readyz');
      if (ready.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    const back = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp });
    assert.ok(back.claims?.act, trace(back));
  });
});
