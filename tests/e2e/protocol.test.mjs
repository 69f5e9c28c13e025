// End-to-end: OpenID Connect protocol behaviour of idp-proxy — discovery, JWKS, authorize
// validation, token and userinfo errors, malformed input (DESIGN.md §3.1, §9).
// Run: npm ci --prefix dev && node --test tests/e2e/

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  Issuer, errors, generators, makeSp, rawRequest, runDemarche, trace,
} from './harness.mjs';
import { SP1, SP2, startSeededWorld } from './world.mjs';

let world;
let sp1;
let discovery;

before(async () => {
  world = await startSeededWorld();
  sp1 = await makeSp(world.proxy, SP1);
  discovery = sp1.issuer.metadata;
});

after(async () => {
  await world?.stop();
});

const REDIRECT = SP1.redirect_uris[0]; // http://127.0.0.1:9/cb

/** A valid authorization request for sp-1, as a URLSearchParams to spoil. */
function authParams(overrides = {}) {
  const verifier = generators.codeVerifier();
  const p = new URLSearchParams({
    response_type: 'code',
    client_id: SP1.client_id,
    redirect_uri: REDIRECT,
    scope: 'openid given_name',
    state: generators.state(),
    nonce: generators.nonce(),
    code_challenge: generators.codeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) p.delete(k);
    else p.set(k, v);
  }
  return p;
}

const get = (url, init = {}) => rawRequest(url, init);

const authorizeUrl = (query) => `${discovery.authorization_endpoint}?${query}`;

function assertLocalErrorPage(res, what) {
  assert.equal(res.status, 400, `${what}: expected a 400 page, got ${res.status} ${res.location ?? ''}`);
  assert.equal(res.location, null, `${what}: must not redirect (Location: ${res.location})`);
  assert.match(res.contentType, /text\/html/, `${what}: an HTML page`);
}

function assertErrorRedirect(res, { error, state }, what) {
  assert.ok([302, 303].includes(res.status), `${what}: expected a redirect, got ${res.status}: ${res.body.slice(0, 300)}`);
  const loc = new URL(res.location);
  assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT, `${what}: redirect to the registered redirect_uri`);
  assert.equal(loc.searchParams.get('error'), error, `${what}: error=${error} (got ${loc.search})`);
  assert.equal(loc.searchParams.get('code'), null, `${what}: no code`);
  assert.equal(loc.searchParams.get('state'), state, `${what}: state echoed`);
  assert.equal(loc.searchParams.get('iss'), world.proxy.issuer, `${what}: iss (RFC 9207)`);
}

function assertClientError(res, what) {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: expected 4xx, got ${res.status}: ${res.body.slice(0, 300)}`);
}

/** A code for sp-1 (no token request made) with its checks. */
async function getCode(sp = sp1) {
  const r = await runDemarche({
    proxy: world.proxy,
    upstream: world.upstream,
    sp,
    scope: 'openid given_name',
    exchange: false,
    choose: (options) => options.find((o) => o.mandateId === world.ids.mandates.michel && o.demarche === 'argent')
      ?? assert.fail(`michel/argent not offered: ${JSON.stringify(options)}`),
  });
  assert.ok(r.code, `no code:\n${trace(r)}`);
  return r;
}

async function tokenRequest(form, { basic } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic[0])}:${encodeURIComponent(basic[1])}`).toString('base64')}`;
  const res = await get(discovery.token_endpoint, { method: 'POST', headers, body: typeof form === 'string' ? form : new URLSearchParams(form).toString() });
  let json = null;
  try { json = JSON.parse(res.body); } catch { /* not JSON */ }
  return { ...res, json };
}

describe('discovery and keys', () => {
  it('is discoverable with openid-client and advertises what the proxy does', async () => {
    const issuer = await Issuer.discover(world.proxy.issuer);
    const m = issuer.metadata;
    const base = world.proxy.issuer;
    assert.equal(m.issuer, base);
    assert.equal(m.authorization_endpoint, `${base}/authorize`);
    assert.equal(m.token_endpoint, `${base}/token`);
    assert.equal(m.userinfo_endpoint, `${base}/userinfo`);
    assert.equal(m.jwks_uri, `${base}/jwks`);
    assert.equal(m.end_session_endpoint, `${base}/end_session`);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.equal(m.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(m.response_types_supported, ['code']);
    assert.ok(m.id_token_signing_alg_values_supported?.includes('ES256'), 'ES256 advertised');
    assert.ok(m.id_token_signing_alg_values_supported?.includes('RS256'), 'RS256 advertised');
    assert.ok(m.scopes_supported?.includes('openid'), 'openid scope advertised');
  });

  it('publishes a JWKS without private members', async () => {
    const res = await get(discovery.jwks_uri);
    assert.equal(res.status, 200);
    const jwks = JSON.parse(res.body);
    assert.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 2, `at least the ES256 and RS256 keys: ${res.body}`);
    for (const k of jwks.keys) {
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) {
        assert.ok(!(priv in k), `private member ${priv} in key ${k.kid}`);
      }
      assert.ok(k.kid, 'every key has a kid');
    }
    assert.ok(jwks.keys.some((k) => k.kty === 'EC' && k.crv === 'P-256'), 'an EC P-256 key');
    assert.ok(jwks.keys.some((k) => k.kty === 'RSA'), 'an RSA key');
  });
});

describe('/authorize validation', () => {
  it('shows a local 400 page for an unknown client, never a redirect', async () => {
    const res = await get(authorizeUrl(authParams({ client_id: 'no-such-client' })));
    assertLocalErrorPage(res, 'unknown client');
  });

  it('shows a local 400 page for a missing client_id', async () => {
    const res = await get(authorizeUrl(authParams({ client_id: undefined })));
    assertLocalErrorPage(res, 'missing client_id');
  });

  for (const [name, uri] of [
    ['trailing slash', 'http://127.0.0.1:9/cb/'],
    ['extra query', 'http://127.0.0.1:9/cb?x=1'],
    ['fragment', 'http://127.0.0.1:9/cb#x'],
    ['other port', 'http://127.0.0.1:10/cb'],
    ['https instead of http', 'https://127.0.0.1:9/cb'],
    ['http instead of https', 'http://sp.example/callback'],
    ['upper-case path', 'http://127.0.0.1:9/CB'],
    ['upper-case host', 'https://SP.EXAMPLE/callback'],
    ['upper-case path (https)', 'https://sp.example/Callback'],
    ['localhost for 127.0.0.1', 'http://localhost:9/cb'],
    ['another client’s URI', SP2.redirect_uris[0]],
    ['missing (several registered)', undefined],
  ]) {
    it(`shows a local 400 page for a redirect_uri that does not match exactly: ${name}`, async () => {
      const res = await get(authorizeUrl(authParams({ redirect_uri: uri })));
      assertLocalErrorPage(res, `redirect_uri ${uri}`);
    });
  }

  it('redirects with invalid_request when code_challenge is missing', async () => {
    const p = authParams({ code_challenge: undefined, code_challenge_method: undefined });
    const res = await get(authorizeUrl(p));
    assertErrorRedirect(res, { error: 'invalid_request', state: p.get('state') }, 'no PKCE');
  });

  it('redirects with invalid_request for code_challenge_method=plain', async () => {
    const p = authParams({ code_challenge_method: 'plain', code_challenge: generators.codeVerifier() });
    const res = await get(authorizeUrl(p));
    assertErrorRedirect(res, { error: 'invalid_request', state: p.get('state') }, 'plain PKCE');
  });

  it('redirects with an error for response_type=token', async () => {
    const p = authParams({ response_type: 'token' });
    const res = await get(authorizeUrl(p));
    assert.ok([302, 303].includes(res.status), `expected a redirect, got ${res.status}`);
    const loc = new URL(res.location);
    assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT);
    assert.ok(['unsupported_response_type', 'invalid_request'].includes(loc.searchParams.get('error')), `error: ${loc.search}`);
    assert.equal(loc.searchParams.get('code'), null);
    assert.equal(loc.searchParams.get('state'), p.get('state'));
  });

  it('redirects with invalid_scope (or invalid_request) without the openid scope', async () => {
    const p = authParams({ scope: 'given_name' });
    const res = await get(authorizeUrl(p));
    assert.ok([302, 303].includes(res.status), `expected a redirect, got ${res.status}`);
    const loc = new URL(res.location);
    assert.ok(['invalid_scope', 'invalid_request'].includes(loc.searchParams.get('error')), `error: ${loc.search}`);
    assert.equal(loc.searchParams.get('code'), null);
    assert.equal(loc.searchParams.get('iss'), world.proxy.issuer);
  });
});

describe('/token', () => {
  it('refuses a wrong code_verifier with invalid_grant', async () => {
    const r = await getCode();
    await assert.rejects(
      sp1.client.callback(sp1.redirectUri, r.callbackParams, { ...r.checks, code_verifier: generators.codeVerifier(), response_type: 'code' }),
      (err) => err instanceof errors.OPError && err.error === 'invalid_grant',
    );
  });

  it('refuses a replayed code and revokes the access token the code issued', async () => {
    const r = await getCode();
    const tokenSet = await sp1.client.callback(sp1.redirectUri, r.callbackParams, { ...r.checks, response_type: 'code' });
    assert.ok(tokenSet.access_token);
    const before = await get(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${tokenSet.access_token}` } });
    assert.equal(before.status, 200, `userinfo before the replay: ${before.status} ${before.body}`);

    await assert.rejects(
      sp1.client.grant({ grant_type: 'authorization_code', code: r.code, redirect_uri: sp1.redirectUri, code_verifier: r.checks.code_verifier }),
      (err) => err instanceof errors.OPError && err.error === 'invalid_grant',
    );
    const afterReplay = await get(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${tokenSet.access_token}` } });
    assert.equal(afterReplay.status, 401, `userinfo after the replay: ${afterReplay.status} ${afterReplay.body}`);
    assert.match(afterReplay.headers.get('www-authenticate') || '', /^Bearer\b.*error="invalid_token"/);
  });

  it('refuses a wrong client secret with 401 invalid_client', async () => {
    const res = await tokenRequest(
      { grant_type: 'authorization_code', code: 'whatever', redirect_uri: REDIRECT, code_verifier: generators.codeVerifier() },
      { basic: [SP1.client_id, 'wrong-secret'] },
    );
    assert.equal(res.status, 401, res.body);
    assert.equal(res.json?.error, 'invalid_client', res.body);
  });

  it('refuses a secret sent by a method the client is not registered for', async () => {
    // sp-1 is client_secret_basic: its right secret in the body is not accepted.
    const res = await tokenRequest({
      grant_type: 'authorization_code', code: 'whatever', redirect_uri: REDIRECT, code_verifier: generators.codeVerifier(),
      client_id: SP1.client_id, client_secret: SP1.client_secret,
    });
    assert.equal(res.json?.error, 'invalid_client', `${res.status} ${res.body}`);
    assert.equal(res.status, 401);
  });

  it('refuses a code used by another client with invalid_grant', async () => {
    const r = await getCode();
    const sp2 = await makeSp(world.proxy, SP2);
    await assert.rejects(
      sp2.client.grant({ grant_type: 'authorization_code', code: r.code, redirect_uri: sp1.redirectUri, code_verifier: r.checks.code_verifier }),
      (err) => err instanceof errors.OPError && err.error === 'invalid_grant',
    );
  });

  it('refuses an unknown code with invalid_grant', async () => {
    await assert.rejects(
      sp1.client.grant({ grant_type: 'authorization_code', code: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', redirect_uri: sp1.redirectUri, code_verifier: generators.codeVerifier() }),
      (err) => err instanceof errors.OPError && err.error === 'invalid_grant',
    );
  });

  it('refuses an unsupported grant type', async () => {
    const res = await tokenRequest({ grant_type: 'password', username: 'a', password: 'b' }, { basic: [SP1.client_id, SP1.client_secret] });
    assert.equal(res.status, 400, res.body);
    assert.equal(res.json?.error, 'unsupported_grant_type', res.body);
  });
});

describe('/userinfo', () => {
  it('answers 401 invalid_token for an unknown bearer token', async () => {
    const res = await get(discovery.userinfo_endpoint, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') || '', /^Bearer\b.*error="invalid_token"/);
  });

  it('answers 401 without a token', async () => {
    const res = await get(discovery.userinfo_endpoint);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') || '', /^Bearer\b/);
  });
});

describe('malformed input gets a 4xx, never a 5xx', () => {
  const big = (n) => 'a'.repeat(n);

  for (const [name, query] of [
    ['invalid UTF-8 percent-encoding in client_id', () => `${authParams({ client_id: undefined })}&client_id=%FF%FE`],
    ['invalid UTF-8 percent-encoding in state', () => `${authParams({ state: undefined })}&state=%C3%28`],
    ['duplicate client_id', () => `${authParams()}&client_id=${SP1.client_id}`],
    ['duplicate redirect_uri', () => `${authParams()}&redirect_uri=${encodeURIComponent(REDIRECT)}`],
    ['a 10 kB state', () => `${authParams({ state: big(10 * 1024) })}`],
    ['a 200 kB query', () => `${authParams()}&junk=${big(200 * 1024)}`],
  ]) {
    it(`/authorize: ${name}`, async () => {
      const res = await get(authorizeUrl(query()));
      if ([302, 303].includes(res.status)) {
        // Acceptable only as an error sent back to the SP, never as a login going on.
        const loc = new URL(res.location);
        assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT, `${name}: redirected elsewhere than the SP (${res.location})`);
        assert.ok(loc.searchParams.get('error'), `${name}: redirect without error`);
        assert.equal(loc.searchParams.get('code'), null);
      } else {
        assertClientError(res, name);
        assert.equal(res.location, null, `${name}: no Location on an error page`);
      }
    });
  }

  for (const [name, body] of [
    ['invalid UTF-8 percent-encoding', () => 'grant_type=authorization_code&code=%FF%FE&code_verifier=x'],
    ['duplicate grant_type', () => 'grant_type=authorization_code&grant_type=authorization_code&code=abc&code_verifier=x'],
    ['duplicate code', () => 'grant_type=authorization_code&code=abc&code=def&code_verifier=x'],
    ['a 10 kB code', () => `grant_type=authorization_code&code=${big(10 * 1024)}&code_verifier=x`],
    ['a 200 kB body', () => `grant_type=authorization_code&code=abc&junk=${big(200 * 1024)}`],
    ['not form-encoded JSON', () => '{"grant_type":"authorization_code"}'],
    ['empty body', () => ''],
  ]) {
    it(`/token: ${name}`, async () => {
      const res = await tokenRequest(body(), { basic: [SP1.client_id, SP1.client_secret] });
      assertClientError(res, name);
    });
  }

  for (const [name, init] of [
    ['a 10 kB bearer token', () => ({ headers: { authorization: `Bearer ${big(10 * 1024)}` } })],
    ['a non-ASCII bearer token', () => ({ headers: { authorization: 'Bearer \u00e9\u00e8' } })],
    ['a malformed Authorization header', () => ({ headers: { authorization: 'Bearer' } })],
    ['an unknown scheme', () => ({ headers: { authorization: 'Basic Zm9vOmJhcg==' } })],
    ['duplicate access_token in a POST body', () => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'access_token=a&access_token=b' })],
    ['invalid UTF-8 in a POST body', () => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'access_token=%FF%FE' })],
    ['a 200 kB POST body', () => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${big(200 * 1024)}` })],
  ]) {
    it(`/userinfo: ${name}`, async () => {
      const res = await get(discovery.userinfo_endpoint, init());
      assertClientError(res, name);
    });
  }

  it('/userinfo: a 200 kB query', async () => {
    const res = await get(`${discovery.userinfo_endpoint}?junk=${big(200 * 1024)}`, { headers: { authorization: 'Bearer not-a-token' } });
    assertClientError(res, '200 kB query');
  });
});
