// Request parameters (OIDC Core §3.1.2.1, §5.5): individual claims asked with `claims`, for the
// ID token and userinfo separately; `login_hint` handed to the aidant's identity provider;
// `ui_locales` other than French accepted (the pages stay French).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeSp, runDemarche, trace, visitedUrls } from './harness.mjs';
import { SP1, startSeededWorld } from './world.mjs';

describe('request parameters', () => {
  let world;
  let sp;

  before(async () => {
    world = await startSeededWorld({ clients: [SP1] });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  it('releases the claims asked by name, where they were asked', async () => {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, scope: 'openid',
      claims: { id_token: { birthdate: { essential: true }, name: null }, userinfo: { email: null } } });
    assert.ok(r.claims?.sub, trace(r));
    assert.equal(r.claims.birthdate, '1962-08-24', 'asked for the ID token');
    assert.equal(r.claims.email, undefined, 'asked for userinfo only');
    assert.equal(r.claims.name, undefined, 'a claim we do not hold is ignored');
    assert.equal(r.userinfo?.email, 'michel.dupont@example.org');
    assert.equal(r.userinfo.birthdate, undefined, 'asked for the ID token only');
    assert.equal(r.userinfo.given_name, undefined, 'no scope asked for it');
  });

  it('passes login_hint to the aidant\'s identity provider', async () => {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, authParams: { login_hint: 'abdel.karim@acacias.example' } });
    assert.ok(r.claims?.sub, trace(r));
    const upstream = visitedUrls(r).map((u) => new URL(u)).find((u) => u.origin === new URL(world.upstream.issuer).origin && u.pathname.endsWith('/auth'));
    assert.equal(upstream?.searchParams.get('login_hint'), 'abdel.karim@acacias.example', trace(r));
  });

  it('accepts ui_locales it cannot honour, and answers in French', async () => {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, authParams: { ui_locales: 'en-US de' }, choose: null });
    assert.match(r.interaction?.html ?? '', /lang="fr"/, trace(r));
  });
});
