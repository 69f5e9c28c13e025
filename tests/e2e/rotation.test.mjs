// Data key rotation while the proxy serves: the new key is announced, activated and every
// usager identity re-sealed with it, and démarches keep working before, during and after.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { jose, makeSp, rawRequest, runDemarche, startWorld, trace } from './harness.mjs';
import { IMPORT, MICHEL, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

describe('idp-proxy keys rotate-data-key', () => {
  let world;
  let sp;
  const michelArgent = (options) => options.find((o) => o.label.includes('Michel') && o.demarche === 'argent');
  const demarche = () => runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: michelArgent });

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      config: { keys: { reload_secs: 1 } } });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  it('re-seals every identity under a new key without interrupting démarches', async () => {
    const first = await demarche();
    assert.equal(first.claims?.given_name, MICHEL.given_name, trace(first));
    const dataKeys = () => readdirSync(join(world.proxy.dir, 'keys')).filter((f) => f.startsWith('data-'));
    const [oldKey] = dataKeys();

    const rotation = world.proxy.cli(['keys', 'rotate-data-key', '--settle-secs', '2', '--batch', '2']);
    const during = await demarche();
    assert.equal(during.claims?.given_name, MICHEL.given_name, trace(during));
    const usage = (await rotation).trim().split('\n').map((l) => l.split('\t'));

    assert.equal(usage.length, 1, `every identity on one key: ${JSON.stringify(usage)}`);
    assert.notEqual(`${usage[0][0]}.key`, oldKey, 'the new key seals them');
    assert.equal(Number(usage[0][1]), IMPORT.usagers.length);
    assert.equal(dataKeys().length, 2, 'the old key stays until ops remove it');

    const afterwards = await demarche();
    assert.equal(afterwards.claims?.given_name, MICHEL.given_name, trace(afterwards));
    assert.equal(afterwards.userinfo?.family_name, MICHEL.family_name);
  });
});

// Signing keys: `keys rotate` twice while démarches run. Before each token request the client
// reads the JWKS; the ID token must be signed by a key that was already in it (never by an
// unpublished one), and every token, before, during and after, still verifies at the end.
describe('idp-proxy keys rotate (signing keys) under traffic', () => {
  let world;
  let sp;

  before(async () => {
    // A node re-reads the ring every second; clients may cache the JWKS one second: a next
    // key may sign three seconds after it was published.
    world = await startWorld({ clients: [SP1],
      importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      config: { keys: { reload_secs: 1, jwks_max_age_secs: 1 } } });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  const jwks = async () => (await (await fetch(`${world.proxy.issuer}/jwks`)).json()).keys;

  it('signs before, during and after two rotations with published keys only', async () => {
    const tokens = [];
    const rotations = [];
    const started = Date.now();
    // Each rotation starts 4 s after the previous one finished (the first, 4 s in), so the key
    // it activates was published at least that long ago, however slow the CLI was to run; the
    // démarches go on 3 s past the second.
    let lastDone = started;
    let rotating = null;
    let soon = null;
    for (;;) {
      const now = Date.now();
      if ((rotations.length === 2 && now - lastDone > 3_000) || now - started > 30_000) break;
      if (!rotating && rotations.length < 2 && now - lastDone > 4_000) {
        rotating = world.proxy.cliResult(['keys', 'rotate']).then(async (r) => {
          rotations.push(r);
          lastDone = Date.now();
          // At once a third: too soon after the second, whose next key was just published.
          if (rotations.length === 2) soon = await world.proxy.cliResult(['keys', 'rotate']);
          rotating = null;
        });
      }
      // The token request by hand: the check is the JWKS read just before it, not a client
      // library's own cache.
      const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, exchange: false });
      assert.ok(r.code, trace(r));
      const published = await jwks();
      const res = await rawRequest(`${world.proxy.issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${SP1.client_id}:${SP1.client_secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: r.code, redirect_uri: sp.redirectUri, code_verifier: r.checks.code_verifier }).toString(),
      });
      assert.equal(res.status, 200, res.body);
      const idToken = JSON.parse(res.body).id_token;
      const { kid } = jose.decodeProtectedHeader(idToken);
      assert.ok(published.some((k) => k.kid === kid), `signed by ${kid}, published before the token request: ${published.map((k) => k.kid)}`);
      await jose.jwtVerify(idToken, jose.createLocalJWKSet({ keys: published }), { issuer: world.proxy.issuer, audience: SP1.client_id });
      tokens.push({ token: idToken, kid });
    }
    await rotating;
    assert.equal(rotations.length, 2, 'two rotations happened');
    for (const r of rotations) assert.equal(r.code, 0, r.stderr);
    const kids = new Set(tokens.map((t) => t.kid));
    assert.ok(kids.size >= 3, `three signing keys in turn: ${[...kids]}`);
    // Every token still verifies against the JWKS published now.
    const keys = jose.createLocalJWKSet({ keys: await jwks() });
    for (const t of tokens) {
      await jose.jwtVerify(t.token, keys, { issuer: world.proxy.issuer, audience: SP1.client_id });
    }
    // A rotation too soon after the last one is refused, and changes nothing.
    assert.equal(soon?.code, 1, soon?.stdout);
    assert.match(soon.stderr, /wait \d+ s more/);
    const listed = await world.proxy.cli(['keys', 'list']);
    for (const alg of ['ES256', 'RS256', 'PS256']) {
      const lines = listed.split('\n').filter((l) => l.split('\t')[1] === alg);
      assert.equal(lines.filter((l) => l.split('\t')[2] === 'active').length, 1, listed);
      assert.equal(lines.filter((l) => l.split('\t')[2] === 'next').length, 1, listed);
    }
  });
});
