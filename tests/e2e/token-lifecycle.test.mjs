// Access-token lifecycle, driven by openid-client (an OpenID-certified client library):
// introspection (RFC 7662) states what the token stands for — the same act, rep_scope and
// mandate as the ID token — and only to the client it was issued to; revocation (RFC 7009)
// ends it on the spot; a revoked mandate makes its tokens inactive; per-client lifetimes.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeSp, rawRequest, runDemarche, startWorld, trace } from './harness.mjs';
import { IMPORT, SP1, SP2, UPSTREAM_ACCOUNTS } from './world.mjs';

// SP1 asks for short access tokens; the default (harness) is 300 s.
const SHORT = { ...SP1, access_token_ttl_secs: 120 };

describe('access-token introspection and revocation', () => {
  let world;
  let sp1;
  let sp2;

  before(async () => {
    world = await startWorld({ clients: [SHORT, SP2], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS });
    sp1 = await makeSp(world.proxy, SHORT);
    sp2 = await makeSp(world.proxy, SP2);
  });

  after(async () => world?.stop());

  async function demarche(sp = sp1, choose) {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, ...(choose ? { choose } : {}) });
    assert.ok(r.tokenSet?.access_token, trace(r));
    return r;
  }

  it('advertises both endpoints in discovery', () => {
    const m = sp1.issuer.metadata;
    assert.equal(m.introspection_endpoint, `${world.proxy.issuer}/introspect`);
    assert.equal(m.revocation_endpoint, `${world.proxy.issuer}/revoke`);
    assert.deepEqual(m.introspection_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt']);
  });

  it('introspects an active token with the same act, rep_scope and mandate as the ID token, and its own lifetime', async () => {
    const r = await demarche();
    const info = await sp1.client.introspect(r.tokenSet.access_token, 'access_token');
    assert.equal(info.active, true);
    assert.equal(info.client_id, SHORT.client_id);
    assert.equal(info.token_type, 'Bearer');
    assert.equal(info.iss, world.proxy.issuer);
    assert.equal(info.sub, r.claims.sub);
    assert.deepEqual(info.act, r.claims.act);
    assert.deepEqual(info.mandate, r.claims.mandate);
    assert.deepEqual(info.rep_scope, r.claims.rep_scope);
    assert.equal(info.exp - info.iat, 120, 'the client\'s shorter lifetime');
    // openid-client turns expires_in into expires_at on receipt and counts it down when read:
    // 119 once a second boundary has passed since the answer.
    assert.ok([119, 120].includes(r.tokenSet.expires_in), `expires_in ${r.tokenSet.expires_in}`);
    assert.ok(Math.abs(info.iat - Date.now() / 1000) < 30);
    assert.ok(info.scope.split(' ').includes('openid'));
  });

  it('tells another client nothing, and does not let it revoke', async () => {
    const r = await demarche();
    assert.deepEqual(await sp2.client.introspect(r.tokenSet.access_token), { active: false });
    await sp2.client.revoke(r.tokenSet.access_token);
    assert.equal((await sp1.client.introspect(r.tokenSet.access_token)).active, true, 'still active for its client');
  });

  it('revokes a token at once: userinfo refuses it and introspection says inactive', async () => {
    const r = await demarche();
    await sp1.client.revoke(r.tokenSet.access_token, 'access_token');
    assert.deepEqual(await sp1.client.introspect(r.tokenSet.access_token), { active: false });
    await assert.rejects(sp1.client.userinfo(r.tokenSet), (err) => err.response?.statusCode === 401);
    // Revoking again, or an unknown token, is not an error (RFC 7009 §2.2).
    await sp1.client.revoke(r.tokenSet.access_token);
    await sp1.client.revoke('not-a-token');
    assert.deepEqual(await sp1.client.introspect('not-a-token'), { active: false });
  });

  it('makes the tokens of a revoked mandate inactive', async () => {
    const r = await demarche();
    assert.equal((await sp1.client.introspect(r.tokenSet.access_token)).active, true);
    await world.proxy.cli(['mandates', 'revoke', r.claims.mandate.id, '--reason', 'test']);
    assert.deepEqual(await sp1.client.introspect(r.tokenSet.access_token), { active: false });
  });

  it('refuses an unauthenticated or malformed call with the precise OAuth error', async () => {
    const form = (body, headers = {}) => rawRequest(`${world.proxy.issuer}/introspect`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body,
    });
    const anonymous = await form('token=abc');
    assert.equal(anonymous.status, 401);
    assert.equal(JSON.parse(anonymous.body).error, 'invalid_client');
    const basic = `Basic ${Buffer.from(`${SP2.client_id}:${SP2.client_secret}`).toString('base64')}`;
    const wrongMethod = await form('token=abc', { authorization: basic });
    assert.equal(JSON.parse(wrongMethod.body).error, 'invalid_client', 'SP2 registered client_secret_post');
    const noToken = await form(`client_id=${SP2.client_id}&client_secret=${SP2.client_secret}`);
    assert.equal(noToken.status, 400);
    assert.equal(JSON.parse(noToken.body).error, 'invalid_request');
    const json = await rawRequest(`${world.proxy.issuer}/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"token":"abc"}',
    });
    assert.equal(json.status, 400);
    assert.equal(JSON.parse(json.body).error, 'invalid_request');
  });
});
