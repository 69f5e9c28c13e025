// Authorization requests the client signs (request objects, RFC 9101) or pushes first (PAR,
// RFC 9126): the parameters checked are the ones the client signed or pushed, nothing added
// in the URL; anything unsigned, foreign, replayed or expired is refused.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { jose, makeSp, rawRequest, runDemarche, trace } from './harness.mjs';
import { SP1, startSeededWorld } from './world.mjs';

describe('request objects and pushed authorization requests', () => {
  let world;
  let sp;
  let key;
  let stranger;

  before(async () => {
    key = await jose.generateKeyPair('ES256', { extractable: true });
    stranger = await jose.generateKeyPair('ES256', { extractable: true });
    const pub = { ...(await jose.exportJWK(key.publicKey)), kid: 'sp-sig', alg: 'ES256', use: 'sig' };
    const client = { ...SP1, jwks: { keys: [pub] } };
    world = await startSeededWorld({ clients: [client] });
    sp = await makeSp(world.proxy, client);
  });

  after(async () => world?.stop());

  const now = () => Math.floor(Date.now() / 1000);
  const sign = (claims, { privateKey = key.privateKey, kid = 'sp-sig' } = {}) => new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey);
  /** The usual request's parameters, from runDemarche's URL, as an object. */
  const base = (r) => Object.fromEntries(new URL(r.authorizationUrl).searchParams);

  it('advertises signed request objects and the PAR endpoint', () => {
    const m = sp.issuer.metadata;
    assert.equal(m.request_parameter_supported, true);
    assert.deepEqual(m.request_object_signing_alg_values_supported, ['ES256', 'RS256', 'PS256']);
    assert.equal(m.pushed_authorization_request_endpoint, `${world.proxy.issuer}/par`);
  });

  it('follows a signed request object, and only its parameters', async () => {
    // runDemarche builds the URL; the test moves its parameters into a signed object (with a
    // narrower scope) and leaves in the URL only client_id and a wider scope.
    let object;
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, authParams: {},
      rewrite: async (url) => {
        const p = Object.fromEntries(url.searchParams);
        object = await sign({ ...p, scope: 'openid given_name', iss: SP1.client_id, aud: world.proxy.issuer, exp: now() + 60 });
        const out = new URL(url.origin + url.pathname);
        out.searchParams.set('client_id', SP1.client_id);
        out.searchParams.set('scope', 'openid email');
        out.searchParams.set('request', object);
        return out;
      } });
    assert.ok(r.claims?.sub, trace(r));
    assert.equal(r.claims.given_name, 'Michel', 'the signed scope was followed');
    assert.equal(r.claims.email, undefined, 'the URL scope (email) was not');
  });

  it('refuses an object signed by another key, for another audience, or expired', async () => {
    for (const [what, claims, opts] of [
      ['another key', { aud: world.proxy.issuer, exp: now() + 60 }, { privateKey: stranger.privateKey }],
      ['another audience', { aud: 'https://elsewhere.example', exp: now() + 60 }, {}],
      ['expired', { aud: world.proxy.issuer, exp: now() - 10 }, {}],
    ]) {
      const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: () => assert.fail('no page'),
        rewrite: async (url) => {
          const p = Object.fromEntries(url.searchParams);
          url.searchParams.set('request', await sign({ ...p, iss: SP1.client_id, ...claims }, opts));
          return url;
        } });
      assert.equal(r.error?.error, 'invalid_request_object', `${what}: ${trace(r)}`);
    }
  });

  it('refuses an object shaped like a client assertion, and one replayed (jti)', async () => {
    const attempt = (extra) => runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: () => assert.fail('no page'),
      exchange: false, rewrite: async (url) => {
        const p = Object.fromEntries(url.searchParams);
        url.searchParams.set('request', await sign({ ...p, iss: SP1.client_id, aud: world.proxy.issuer, exp: now() + 60, ...extra }));
        return url;
      } });
    const asAssertion = await attempt({ sub: SP1.client_id });
    assert.equal(asAssertion.error?.error, 'invalid_request_object', trace(asAssertion));
    // The same signed object twice: its jti is spent after the first use.
    let object;
    const once = (url) => (async () => {
      const p = Object.fromEntries(url.searchParams);
      object ??= await sign({ ...p, iss: SP1.client_id, aud: world.proxy.issuer, exp: now() + 60, jti: 'only-once' });
      url.searchParams.set('request', object);
      return url;
    })();
    const first = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, exchange: false, rewrite: once });
    assert.ok(first.code, trace(first));
    const second = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, exchange: false, rewrite: once, choose: () => assert.fail('no page') });
    assert.equal(second.error?.error, 'invalid_request_object', trace(second));
  });

  async function push(params, auth = true) {
    const body = new URLSearchParams({ ...params, ...(auth ? { client_id: SP1.client_id } : {}) });
    return rawRequest(`${world.proxy.issuer}/par`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(auth ? { authorization: `Basic ${Buffer.from(`${SP1.client_id}:${SP1.client_secret}`).toString('base64')}` } : {}),
      },
      body: body.toString(),
    });
  }

  it('serves a pushed request once, by its request_uri, for its client only', async () => {
    let requestUri;
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp,
      rewrite: async (url) => {
        const res = await push(Object.fromEntries(url.searchParams));
        assert.equal(res.status, 201, res.body);
        const answer = JSON.parse(res.body);
        assert.equal(answer.expires_in, 60);
        requestUri = answer.request_uri;
        assert.match(requestUri, /^urn:ietf:params:oauth:request_uri:/);
        const out = new URL(url.origin + url.pathname);
        out.searchParams.set('client_id', SP1.client_id);
        out.searchParams.set('request_uri', requestUri);
        return out;
      } });
    assert.ok(r.claims?.sub, trace(r));
    // Used once.
    const again = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: () => assert.fail('no page'),
      rewrite: async (url) => {
        const out = new URL(url.origin + url.pathname);
        out.searchParams.set('client_id', SP1.client_id);
        out.searchParams.set('request_uri', requestUri);
        out.searchParams.set('redirect_uri', SP1.redirect_uris[0]);
        return out;
      } });
    assert.equal(again.error?.error, 'invalid_request_uri', trace(again));
  });

  it('refuses a push without client authentication or with an unregistered redirect_uri', async () => {
    const anonymous = await push({ client_id: SP1.client_id, response_type: 'code', redirect_uri: SP1.redirect_uris[0], scope: 'openid' }, false);
    assert.equal(anonymous.status, 401);
    const foreign = await push({ response_type: 'code', redirect_uri: 'https://evil.example/cb', scope: 'openid' });
    assert.equal(foreign.status, 400);
    assert.equal(JSON.parse(foreign.body).error, 'invalid_request');
    // The rest of the request is checked at push time too: the client hears of it at once.
    const implicit = await push({ response_type: 'token', redirect_uri: SP1.redirect_uris[0], scope: 'openid' });
    assert.equal(JSON.parse(implicit.body).error, 'unsupported_response_type', implicit.body);
    const noPkce = await push({ response_type: 'code', redirect_uri: SP1.redirect_uris[0], scope: 'openid' });
    assert.equal(JSON.parse(noPkce.body).error, 'invalid_request', noPkce.body);
  });
});
