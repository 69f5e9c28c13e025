// Probes and failing closed on Redis: /healthz answers while the process lives; /readyz says
// whether this node can serve now (database, ephemeral store, keys). With its Redis stopped a
// node is not ready and a démarche gets a clear 503, no code; Redis back, the same process
// serves again without a restart. With its PostgreSQL stopped, a burst of requests is answered
// 503 within the database wait bound each, however many came before.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  createPgDatabase, makeSp, runDemarche, startPostgres, startRedis, startWorld, textOf, trace,
} from './harness.mjs';
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

describe('PostgreSQL down under a burst of requests', () => {
  const ACQUIRE_TIMEOUT_MS = 500;
  const BURST = 24;
  let pg;
  let world;

  before(async () => {
    pg = await startPostgres();
    const db = await createPgDatabase(pg.url);
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, database: db.url,
      config: { database: { max_connections: 2, acquire_timeout_ms: ACQUIRE_TIMEOUT_MS } } });
  });

  after(async () => {
    await world?.stop();
    await pg?.close();
  });

  it('answers each request 503 within its own wait bound, not behind the requests before it', async () => {
    await pg.stop();
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: BURST }, async () => {
      const res = await fetch(`${world.proxy.issuer}/readyz`, { signal: AbortSignal.timeout(30_000) });
      return { status: res.status, body: await res.json(), ms: Date.now() - started };
    }));
    for (const a of answers) {
      assert.equal(a.status, 503, JSON.stringify(a));
      assert.equal(a.body.database, false, JSON.stringify(a));
    }
    // Each request waits at most acquire_timeout for one of the two database slots, then at
    // most as long for a connection: about a second. Queued two by two behind each other, the
    // last would answer after BURST / 2 × acquire_timeout = 6 s.
    const slowest = Math.max(...answers.map((a) => a.ms));
    assert.ok(slowest < 6 * ACQUIRE_TIMEOUT_MS, `slowest answer after ${slowest} ms`);

    await pg.start();
    let ready;
    for (let i = 0; i < 50; i++) {
      ready = await fetch(`${world.proxy.issuer}/readyz`);
      if (ready.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(ready.status, 200, 'ready again, without a restart');
  });
});
