// Rate limits (issue #5): per client at the token endpoint, per address at authorize, per
// aidant on the choice page; over the limit a 429 with Retry-After, and the next window lets
// requests through again.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeSp, rawRequest, runDemarche, startWorld, textOf, trace } from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

describe('rate limits', () => {
  let world;
  let sp;
  const WINDOW = 3;

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      config: { rate_limits: { window_secs: WINDOW, per_client: 5, per_ip: 4, per_aidant: 3 } } });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  /** Waits for the start of a fresh window, so counts begin at zero. */
  const freshWindow = async () => {
    const now = Date.now() / 1000;
    await new Promise((r) => setTimeout(r, ((WINDOW - (now % WINDOW)) + 0.1) * 1000));
  };

  it('limits a client at the token endpoint, then lets it through in the next window', async () => {
    await freshWindow();
    const introspect = () => rawRequest(`${world.proxy.issuer}/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${SP1.client_id}:${SP1.client_secret}`).toString('base64')}`,
      },
      body: 'token=x',
    });
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await introspect());
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 429, 429]);
    const limited = answers[5];
    assert.equal(JSON.parse(limited.body).error, 'temporarily_unavailable');
    const after = Number(limited.headers.get('retry-after'));
    assert.ok(after >= 1 && after <= WINDOW, `Retry-After ${after}`);
    await new Promise((r) => setTimeout(r, after * 1000 + 200));
    assert.equal((await introspect()).status, 200, 'the next window lets it through');
  });

  it('limits an address at the authorization endpoint with a French page', async () => {
    await freshWindow();
    const authorize = () => rawRequest(`${world.proxy.issuer}/authorize?client_id=${SP1.client_id}`);
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await authorize()).status);
    assert.deepEqual(statuses.slice(4), [429, 429], `${statuses}`);
    const page = await authorize();
    assert.equal(page.status, 429);
    assert.match(textOf(page.body), /Trop de demandes/);
    assert.ok(Number(page.headers.get('retry-after')) >= 1);
    await freshWindow();
    // A whole démarche fits in a fresh window (authorize and the login callback count).
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp });
    assert.ok(r.claims?.act, trace(r));
  });

  it('limits an aidant on the choice page', async () => {
    await freshWindow();
    // One load to reach the page, then reloads: the fourth in the window is refused.
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: null });
    assert.ok(r.interaction?.url, trace(r));
    const reload = async () => (await r.browser.navigate(r.interaction.url)).final;
    assert.equal((await reload()).status, 200);
    assert.equal((await reload()).status, 200);
    const limited = await reload();
    assert.equal(limited.status, 429);
    assert.match(textOf(limited.body), /Trop de demandes/);
  });
});
