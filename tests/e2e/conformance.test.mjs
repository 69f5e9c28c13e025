// Conformance: the OpenID Foundation's OP certification test plans, module by module, with
// openid-client (an OpenID-certified relying party library) as the client and jose for keys.
//
//   oidcc-basic-certification-test-plan              "Basic OP"
//   oidcc-config-certification-test-plan             "Config OP"
//   oidcc-rp-initiated-logout-certification-test-plan "RP-Initiated OP"
//
// The module lists and what each module checks come from the suite's sources
// (openid-certification/conformance-suite, src/main/java/net/openid/conformance/openid/:
// OIDCCBasicTestPlan, OIDCCConfigTestPlan, OIDCCRpInitiatedLogoutTestPlan and the module classes
// they name). Each `it` is named `<module-name>: <what it checks>` and asserts what that module
// requires to pass, adapted to this OP:
//   - the "user" is an aidant who logs in at the upstream aidant IdP and then chooses the usager
//     and the démarche; the ID token's `sub` is the usager (runDemarche drives all of it);
//   - clients are static (ClientRegistration=static_client), as the OIDF suite is configured for
//     an OP without dynamic registration: `client` (client_secret_basic) and `client_secret_post`;
//   - like the OIDF suite, requests carry no PKCE (except the PKCE module): the conformance
//     clients are registered with pkce_required = false;
//   - where a module ends with a screenshot (error page, "logged out" page), the test asserts the
//     page: an HTML answer that is not a redirect to the client;
//   - modules skipped for an OP without a feature (request objects, refresh tokens, address and
//     phone scopes, alg none) assert what makes the suite skip: the discovery document does not
//     advertise it, and the request is refused with the registered error or ignored.
// The test deployment runs over http on 127.0.0.1: "https" checks accept loopback http.
//
// Run: IDP_PROXY_BIN=$PWD/target/debug/idp-proxy node --test --test-concurrency=1 tests/e2e/conformance.test.mjs

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';

import {
  Browser, Issuer, formFields, generators, jose, makeSp, parseForms, rawRequest,
  runDemarche, textOf, trace,
} from './harness.mjs';
import { SP1, startSeededWorld } from './world.mjs';

// ---------------------------------------------------------------------------------------------
// The clients, registered like the OIDF suite's static clients

const SP_ORIGIN = 'http://127.0.0.1:9'; // never listens: the browser below never goes there
const REDIRECT = `${SP_ORIGIN}/test/a/idp-proxy/callback`;
const REDIRECT_POST = `${SP_ORIGIN}/test/a/idp-proxy-post/callback`;
// "the same url as the redirect url but replacing the portion after the alias with
// '/post_logout_redirect'" (OIDCCRpInitiatedLogout's summary)
const POST_LOGOUT = `${SP_ORIGIN}/test/a/idp-proxy/post_logout_redirect`;
const DEMARCHES = ['argent', 'social', 'famille', 'logement'];

const CLIENT = Object.freeze({
  client_id: 'oidf-client',
  client_secret: 'oidf-client-secret-for-the-conformance-tests',
  name: 'OIDF conformance (client_secret_basic)',
  token_endpoint_auth_method: 'client_secret_basic',
  redirect_uris: [REDIRECT],
  post_logout_redirect_uris: [POST_LOGOUT],
  demarches: DEMARCHES,
  id_token_signed_response_alg: 'RS256',
  pkce_required: false,
});

const CLIENT_SECRET_POST = Object.freeze({
  client_id: 'oidf-client-secret-post',
  client_secret: 'oidf-client-secret-post-secret-for-the-conformance-tests',
  name: 'OIDF conformance (client_secret_post)',
  token_endpoint_auth_method: 'client_secret_post',
  redirect_uris: [REDIRECT_POST],
  post_logout_redirect_uris: [],
  demarches: DEMARCHES,
  id_token_signed_response_alg: 'ES256',
  pkce_required: false,
});

// OAuth error codes that say "this needs the user" (CheckErrorFromAuthorizationEndpointIsOneThat
// RequiredAUserInterface, OIDC Core §3.1.2.6).
const UI_REQUIRED = ['interaction_required', 'login_required', 'account_selection_required', 'consent_required'];

let world;
let basic; // makeSp(CLIENT)
let secretPost; // makeSp(CLIENT_SECRET_POST)
let pkceSp; // makeSp(SP1): the proxy's default, PKCE required
let discovery;
let remoteJwks;

before(async () => {
  world = await startSeededWorld({ clients: [CLIENT, CLIENT_SECRET_POST, SP1] });
  basic = await makeSp(world.proxy, CLIENT);
  secretPost = await makeSp(world.proxy, CLIENT_SECRET_POST);
  pkceSp = await makeSp(world.proxy, SP1);
  discovery = basic.issuer.metadata;
  remoteJwks = jose.createRemoteJWKSet(new URL(discovery.jwks_uri));
});

after(async () => {
  await world?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A state of 128 characters, as the suite sends where it checks the OP does not corrupt it. */
const longState = () => randomBytes(96).toString('base64url');

/**
 * The browser of the OIDF suite's user: never loads a page of the client (127.0.0.1:9). An
 * answer that sends it there ends the navigation with a step of status 0 at that URL.
 */
class OidfBrowser extends Browser {
  async request(href, opts = {}) {
    if (new URL(href).origin === SP_ORIGIN) {
      const step = {
        method: opts.method ?? 'GET', url: href, status: 0, headers: new Headers(), location: null, contentType: '', body: '', atClient: true,
      };
      this.history.push(step);
      return step;
    }
    return super.request(href, opts);
  }
}

/** The aidant picks Michel for the démarche "argent". */
const michelArgent = (options) => options.find((o) => o.mandateId === world.ids.mandates.michel && o.demarche === 'argent')
  ?? assert.fail(`michel/argent not offered on the choice page: ${JSON.stringify(options.map((o) => o.value))}`);

/** An authorization as the OIDF suite makes it: scope openid, state, nonce, no PKCE. */
function oidf(opts = {}) {
  return runDemarche({
    proxy: world.proxy,
    upstream: world.upstream,
    sp: basic,
    scope: 'openid',
    pkce: false,
    choose: michelArgent,
    browser: new OidfBrowser(),
    ...opts,
  });
}

const isLoopback = (u) => ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);

/** An absolute https URL (or http on loopback: the test deployment), no fragment. */
function assertHttpsUrl(value, what) {
  assert.equal(typeof value, 'string', `${what} must be a string (got ${JSON.stringify(value)})`);
  let u;
  try { u = new URL(value); } catch { assert.fail(`${what} is not a URL: ${value}`); }
  assert.ok(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopback(u)), `${what} must use https: ${value}`);
  assert.equal(u.hash, '', `${what} must not have a fragment: ${value}`);
  return u;
}

// RFC 6749 §5.2 / §4.1.2.1: error and error_description are %x20-21 / %x23-5B / %x5D-7E.
const ERROR_CHARS = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;
const ERROR_URI_CHARS = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

function assertErrorSyntax(obj, what) {
  assert.match(String(obj.error ?? ''), ERROR_CHARS, `${what}: error ${JSON.stringify(obj.error)}`);
  if (obj.error_description !== undefined) {
    assert.doesNotMatch(obj.error_description, /[\r\n\t]/, `${what}: error_description contains CR, LF or TAB`);
    assert.match(obj.error_description, ERROR_CHARS, `${what}: error_description ${JSON.stringify(obj.error_description)}`);
  }
  if (obj.error_uri !== undefined) assert.match(obj.error_uri, ERROR_URI_CHARS, `${what}: error_uri`);
}

/** The flow came back to the client with a code, the state and (RFC 9207) the issuer. */
function assertAuthorized(r) {
  const t = trace(r);
  assert.ok(r.callbackParams, `the OP never sent the browser back to the client:\n${t}`);
  assert.equal(r.callbackParams.error, undefined, `authorization error ${r.callbackParams.error}: ${r.callbackParams.error_description}\n${t}`);
  assert.ok(r.code, `no code:\n${t}`);
  assert.equal(r.callbackParams.state, r.checks.state, 'state returned unchanged');
  assert.equal(r.callbackParams.iss, world.proxy.issuer, 'iss (RFC 9207, advertised in discovery)');
}

/**
 * The checks AbstractOIDCCServerTest makes on every successful code flow: code, token response,
 * ID token (iss, aud, exp, iat, sub, nonce, signature by a JWKS key named by kid, at_hash), and
 * the protected resource (userinfo) answering with the same sub. The sub is the usager.
 */
async function assertCodeFlow(r, sp = basic) {
  assertAuthorized(r);
  const t = trace(r);
  assert.equal(r.tokenError, null, `token request failed: ${r.tokenError?.error ?? ''} ${r.tokenError?.message}\n${t}`);
  const ts = r.tokenSet;
  assert.ok(ts.access_token, 'access_token');
  assert.match(String(ts.token_type), /^bearer$/i, 'token_type Bearer');
  assert.ok(typeof ts.expires_at === 'number' && ts.expires_in > 0, `expires_in positive (${ts.expires_in})`);
  assert.ok(ts.id_token, 'id_token in the token response');

  const c = r.claims;
  const now = Math.floor(Date.now() / 1000);
  assert.equal(c.iss, world.proxy.issuer, 'iss');
  assert.ok(c.aud === sp.config.client_id || (Array.isArray(c.aud) && c.aud.includes(sp.config.client_id)), `aud ${JSON.stringify(c.aud)}`);
  assert.ok(Number.isInteger(c.exp) && c.exp > now - 300, `exp ${c.exp}`);
  assert.ok(Number.isInteger(c.iat) && c.iat <= now + 300, `iat ${c.iat}`);
  assert.equal(c.sub, world.ids.usagers.michel, 'sub is the usager the aidant chose');
  if (r.checks.nonce) assert.equal(c.nonce, r.checks.nonce, 'nonce');
  else assert.equal(c.nonce, undefined, 'no nonce in the ID token when none was sent');

  const header = r.idTokenHeader;
  assert.equal(header.alg, sp.config.id_token_signed_response_alg, 'the registered signing alg');
  assert.ok(header.kid, 'the ID token names its key (kid)');
  // Independently of openid-client: jose, the published JWKS, the kid.
  const { payload } = await jose.jwtVerify(ts.id_token, remoteJwks, { issuer: world.proxy.issuer, audience: sp.config.client_id, clockTolerance: 5 });
  assert.equal(payload.sub, c.sub);
  if (c.at_hash !== undefined) {
    const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[header.alg.slice(-3)];
    const digest = createHash(hash).update(ts.access_token, 'ascii').digest();
    assert.equal(c.at_hash, digest.subarray(0, digest.length / 2).toString('base64url'), 'at_hash');
  }

  assert.equal(r.userinfoError, null, `userinfo failed: ${r.userinfoError?.message}`);
  assert.equal(r.userinfo.sub, c.sub, 'userinfo sub = ID token sub');
}

/** Standard claim types in a userinfo answer (ValidateUserInfoStandardClaims, EnsureUserInfo*). */
function assertStandardClaims(u) {
  const types = {
    sub: 'string', name: 'string', given_name: 'string', family_name: 'string', middle_name: 'string', nickname: 'string',
    preferred_username: 'string', profile: 'string', picture: 'string', website: 'string', email: 'string',
    email_verified: 'boolean', gender: 'string', birthdate: 'string', zoneinfo: 'string', locale: 'string',
    phone_number: 'string', phone_number_verified: 'boolean', address: 'object', updated_at: 'number',
  };
  assert.equal(typeof u.sub, 'string', 'userinfo contains sub');
  for (const [k, v] of Object.entries(u)) {
    if (types[k]) assert.equal(typeof v, types[k], `userinfo ${k} must be a ${types[k]}`);
  }
  if (u.birthdate !== undefined) assert.match(u.birthdate, /^(\d{4}|\d{4}-\d{2}-\d{2}|0000-\d{2}-\d{2})$/, 'birthdate format');
}

async function userinfo(accessToken, { method = 'GET', inBody = false } = {}) {
  const headers = { accept: 'application/json' };
  let body;
  if (inBody) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams({ access_token: accessToken }).toString();
  } else {
    headers.authorization = `Bearer ${accessToken}`;
  }
  const res = await rawRequest(discovery.userinfo_endpoint, { method, headers, body });
  let json = null;
  try { json = JSON.parse(res.body); } catch { /* not JSON */ }
  return { ...res, json };
}

async function tokenRequest(sp, form) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams(form);
  if (sp.config.token_endpoint_auth_method === 'client_secret_post') {
    body.set('client_id', sp.config.client_id);
    body.set('client_secret', sp.config.client_secret);
  } else {
    const id = encodeURIComponent(sp.config.client_id);
    const secret = encodeURIComponent(sp.config.client_secret);
    headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  }
  const res = await rawRequest(discovery.token_endpoint, { method: 'POST', headers, body: body.toString() });
  let json = null;
  try { json = JSON.parse(res.body); } catch { /* not JSON */ }
  return { ...res, json };
}

/** AbstractOIDCCAuthCodeReuse.checkResponse: 400, JSON, invalid_grant, well-formed. */
function assertInvalidGrant(res, what) {
  assert.equal(res.status, 400, `${what}: HTTP ${res.status} ${res.body}`);
  assert.match(res.contentType, /^application\/json/, `${what}: JSON content type (${res.contentType})`);
  assert.equal(res.json?.error, 'invalid_grant', `${what}: ${res.body}`);
  assertErrorSyntax(res.json, what);
}

/** An error sent back to the client's redirect_uri, with state and iss, and no code. */
function assertErrorAtClient(r, allowed, { state } = {}) {
  const t = trace(r);
  assert.ok(r.callbackParams, `expected an error redirect to the client:\n${t}`);
  assert.equal(r.callbackParams.code, undefined, `a code was issued:\n${t}`);
  assert.ok(allowed.includes(r.callbackParams.error), `error ${JSON.stringify(r.callbackParams.error)} is not one of ${allowed.join(', ')}:\n${t}`);
  assertErrorSyntax(r.callbackParams, 'authorization error');
  // CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint (a warning in the suite)
  const unexpected = Object.keys(r.callbackParams).filter((k) => !['error', 'error_description', 'error_uri', 'state', 'session_state', 'iss'].includes(k));
  assert.deepEqual(unexpected, [], 'only the parameters of an error response');
  if (state !== undefined) assert.equal(r.callbackParams.state, state, 'state returned unchanged');
  assert.equal(r.callbackParams.iss, world.proxy.issuer, 'iss (RFC 9207)');
}

/** An HTML page shown by the OP (its error or confirmation screen): not a redirect to the client. */
function assertPageNotClient(final, steps, what) {
  const lines = steps.map((s) => `${s.method} ${s.url} → ${s.status}${s.location ? ` → ${s.location}` : ''}`).join('\n');
  assert.ok(!steps.some((s) => s.atClient), `${what}: the browser was sent to the client:\n${lines}`);
  assert.ok(final, `${what}: no page:\n${lines}`);
  assert.ok(final.status >= 200 && final.status < 500, `${what}: HTTP ${final.status}:\n${lines}`);
  assert.match(final.contentType, /text\/html/, `${what}: an HTML page (${final.contentType})`);
}

// Shannon entropy estimate of the suite (AbstractEnsureMinimumEntropy): bits per char × length.
function shannonBits(s) {
  const occ = new Map();
  for (const ch of s) occ.set(ch, (occ.get(ch) || 0) + 1);
  let e = 0;
  for (const n of occ.values()) { const p = n / s.length; e -= p * Math.log2(p); }
  return e * s.length;
}

// ---------------------------------------------------------------------------------------------
// oidcc-basic-certification-test-plan

describe('oidcc-basic-certification-test-plan (Basic OP: response_type=code, client_secret_basic, static client)', () => {
  // oidcc-codereuse-30seconds waits 30 s between the two uses of a code: it starts now and runs
  // alongside the other modules; its `it` collects the outcome.
  let reuse30;
  before(() => {
    reuse30 = (async () => {
      const r = await oidf();
      await assertCodeFlow(r);
      const before30 = await userinfo(r.tokenSet.access_token);
      await sleep(30_000);
      const replay = await tokenRequest(basic, { grant_type: 'authorization_code', code: r.code, redirect_uri: REDIRECT });
      const after30 = await userinfo(r.tokenSet.access_token);
      return { before30, replay, after30 };
    })();
    reuse30.catch(() => {}); // reported by the module's test
  });

  it('oidcc-server: happy code flow — code of ≥128 bits and enough entropy, state, token response, valid signed ID token (kid in the JWKS), userinfo with the same sub', async () => {
    const r = await oidf();
    await assertCodeFlow(r);
    // EnsureMinimumAuthorizationCodeLength / Entropy (RFC 6749 §10.10, RFC 6819 §5.1.4.2.2)
    assert.ok(Buffer.byteLength(r.code) * 8 >= 128, `code of ${Buffer.byteLength(r.code) * 8} bits`);
    assert.ok(shannonBits(r.code) > 96, `code entropy ${shannonBits(r.code).toFixed(1)} bits`);
    // CheckForKeyIdInServerJWKs: every key of the JWKS has a kid, and the ID token's is one of them.
    const jwks = JSON.parse((await rawRequest(discovery.jwks_uri)).body);
    assert.ok(jwks.keys.every((k) => k.kid), 'every server key has a kid');
    assert.ok(jwks.keys.some((k) => k.kid === r.idTokenHeader.kid), 'the ID token kid is in the JWKS');
    // EnsureIdTokenDoesNotContainName (warning): name only where asked.
    assert.equal(r.claims.name, undefined, 'no name claim in the ID token');

    // The token response itself (OIDC Core §3.1.3.3): 200 JSON, Cache-Control: no-store.
    const raw = await oidf({ exchange: false });
    assertAuthorized(raw);
    const res = await tokenRequest(basic, { grant_type: 'authorization_code', code: raw.code, redirect_uri: REDIRECT });
    assert.equal(res.status, 200, res.body);
    assert.match(res.contentType, /^application\/json/, 'JSON token response');
    assert.match(res.headers.get('cache-control') || '', /no-store/, 'Cache-Control: no-store');
    assert.equal(typeof res.json.access_token, 'string');
    assert.match(res.json.token_type, /^bearer$/i);
    assert.ok(Number.isInteger(res.json.expires_in) && res.json.expires_in > 0, `expires_in ${res.json.expires_in}`);
    const { payload } = await jose.jwtVerify(res.json.id_token, remoteJwks, { issuer: world.proxy.issuer, audience: CLIENT.client_id, clockTolerance: 5 });
    assert.equal(payload.nonce, raw.checks.nonce);
    assert.equal(payload.sub, world.ids.usagers.michel);
  });

  it('oidcc-response-type-missing: a request without response_type gets an error page or invalid_request / unsupported_response_type at the redirect_uri', async () => {
    const r = await oidf({ authParams: { response_type: undefined }, choose: () => assert.fail('no choice page expected') });
    assert.equal(r.code, null, `a code was issued:\n${trace(r)}`);
    if (r.callbackParams) {
      assertErrorAtClient(r, ['invalid_request', 'unsupported_response_type'], { state: r.checks.state });
    } else {
      assertPageNotClient(r.final, r.steps, 'response_type missing');
      assert.ok(r.final.status >= 400, 'an error page');
    }
  });

  it('oidcc-idtoken-signature: the ID token names its key (kid) and is signed RS256 for a client registered with RS256, the OIDC default (module runs only with dynamic registration)', async () => {
    const r = await oidf();
    await assertCodeFlow(r);
    assert.equal(r.idTokenHeader.alg, 'RS256', 'EnsureIdTokenSignatureIsRS256');
    assert.ok(r.idTokenHeader.kid, 'EnsureIdTokenContainsKid');
    const jwks = JSON.parse((await rawRequest(discovery.jwks_uri)).body);
    const jwk = jwks.keys.find((k) => k.kid === r.idTokenHeader.kid);
    assert.ok(jwk, 'the kid names a published key');
    assert.equal(jwk.kty, 'RSA');
    await jose.compactVerify(r.tokenSet.id_token, await jose.importJWK(jwk, 'RS256'));
  });

  it('oidcc-idtoken-unsigned: skipped by the suite unless discovery lists alg "none": id_token_signing_alg_values_supported does not, and no ID token is unsigned', async () => {
    assert.ok(Array.isArray(discovery.id_token_signing_alg_values_supported));
    assert.ok(!discovery.id_token_signing_alg_values_supported.includes('none'), 'alg none not advertised');
    const r = await oidf({ sp: secretPost });
    await assertCodeFlow(r, secretPost);
    assert.notEqual(r.idTokenHeader.alg, 'none');
  });

  it('oidcc-userinfo-get: GET to the userinfo endpoint with the Bearer header answers 200 JSON with valid standard claims and the ID token sub', async () => {
    const r = await oidf({ scope: 'openid profile email' });
    await assertCodeFlow(r);
    const res = await userinfo(r.tokenSet.access_token, { method: 'GET' });
    assert.equal(res.status, 200, res.body);
    assert.match(res.contentType, /^application\/json/);
    assertStandardClaims(res.json);
    assert.equal(res.json.sub, r.claims.sub);
  });

  it('oidcc-userinfo-post-header: POST to the userinfo endpoint with the Bearer header answers 200 JSON with the ID token sub', async () => {
    const r = await oidf({ scope: 'openid profile email' });
    await assertCodeFlow(r);
    const res = await userinfo(r.tokenSet.access_token, { method: 'POST' });
    assert.equal(res.status, 200, res.body);
    assert.match(res.contentType, /^application\/json/);
    assertStandardClaims(res.json);
    assert.equal(res.json.sub, r.claims.sub);
  });

  it('oidcc-userinfo-post-body: POST with access_token in the form body either answers the claims or a clean 4xx error (optional form, a warning in the suite)', async () => {
    const r = await oidf({ scope: 'openid profile' });
    await assertCodeFlow(r);
    const res = await userinfo(r.tokenSet.access_token, { method: 'POST', inBody: true });
    if (res.status >= 200 && res.status < 300) {
      assertStandardClaims(res.json);
      assert.equal(res.json.sub, r.claims.sub);
    } else {
      assert.ok(res.status === 400 || res.status === 401, `a 400/401 error, got ${res.status} ${res.body}`);
      assert.match(res.headers.get('www-authenticate') || '', /^Bearer\b/, 'RFC 6750 §3: WWW-Authenticate: Bearer');
    }
  });

  it('oidcc-ensure-request-without-nonce-succeeds-for-code-flow: without a nonce the code flow still issues a code (and an ID token without nonce)', async () => {
    const r = await oidf({ nonce: false });
    assert.ok(!new URL(r.authorizationUrl).searchParams.has('nonce'));
    await assertCodeFlow(r);
  });

  it('oidcc-scope-profile: scope openid profile (advertised) succeeds; userinfo has valid standard claims, the same sub, and the profile claims this OP releases', async () => {
    assert.ok(discovery.scopes_supported.includes('profile'), 'profile advertised (else skipped)');
    const r = await oidf({ scope: 'openid profile' });
    await assertCodeFlow(r);
    assertStandardClaims(r.userinfo);
    assert.equal(r.userinfo.given_name, 'Michel');
    assert.equal(r.userinfo.family_name, 'DUPONT');
    assert.equal(r.userinfo.email, undefined, 'email was not asked');
  });

  it('oidcc-scope-email: scope openid email (advertised) succeeds; userinfo has a valid email and the same sub', async () => {
    assert.ok(discovery.scopes_supported.includes('email'), 'email advertised (else skipped)');
    const r = await oidf({ scope: 'openid email' });
    await assertCodeFlow(r);
    assertStandardClaims(r.userinfo);
    assert.equal(r.userinfo.email, 'michel.dupont@example.org');
  });

  it('oidcc-scope-address: skipped because scopes_supported lacks address; an address request still succeeds, the scope ignored', async () => {
    assert.ok(!discovery.scopes_supported.includes('address'), 'address not advertised');
    const r = await oidf({ scope: 'openid address' });
    await assertCodeFlow(r);
    assert.equal(r.userinfo.address, undefined);
    assert.equal(r.claims.address, undefined);
  });

  it('oidcc-scope-phone: skipped because scopes_supported lacks phone; a phone request still succeeds, the scope ignored', async () => {
    assert.ok(!discovery.scopes_supported.includes('phone'), 'phone not advertised');
    const r = await oidf({ scope: 'openid phone' });
    await assertCodeFlow(r);
    assert.equal(r.userinfo.phone_number, undefined);
  });

  it('oidcc-scope-all: skipped because scopes_supported lacks address and phone; openid address email phone profile still succeeds with the email and profile claims', async () => {
    const all = ['openid', 'address', 'email', 'phone', 'profile'];
    assert.ok(!all.every((s) => discovery.scopes_supported.includes(s)), 'not all advertised');
    const r = await oidf({ scope: all.join(' ') });
    await assertCodeFlow(r);
    assertStandardClaims(r.userinfo);
    assert.equal(r.userinfo.email, 'michel.dupont@example.org');
    assert.equal(r.userinfo.given_name, 'Michel');
  });

  it('oidcc-ensure-other-scope-order-succeeds: scope "email openid" (reversed order) succeeds (RFC 6749 §3.3)', async () => {
    const r = await oidf({ scope: 'email openid' });
    await assertCodeFlow(r);
    assert.equal(r.userinfo.email, 'michel.dupont@example.org');
  });

  for (const display of ['page', 'popup']) {
    it(`oidcc-display-${display}: display=${display} does not cause an error; the aidant gets the normal login page and the flow succeeds`, async () => {
      const r = await oidf({ authParams: { display } });
      assert.ok(r.upstreamLogin, `the login page was not shown:\n${trace(r)}`);
      await assertCodeFlow(r);
    });
  }

  it('oidcc-prompt-login: a second authorization with prompt=login in the same browser asks the aidant to log in again; auth_time differs', async () => {
    const browser = new OidfBrowser();
    const first = await oidf({ browser });
    await assertCodeFlow(first);
    await sleep(1100); // a human takes more than a second to log in again
    const second = await oidf({ browser, authParams: { prompt: 'login' } });
    assert.ok(second.upstreamLogin, `no second login page (ExpectSecondLoginPage):\n${trace(second)}`);
    await assertCodeFlow(second);
    if (first.claims.auth_time !== undefined && second.claims.auth_time !== undefined) {
      assert.notEqual(second.claims.auth_time, first.claims.auth_time, 'CheckIdTokenAuthTimeClaimsDifferIfPresent');
    }
  });

  it('oidcc-prompt-none-not-logged-in: prompt=none without a session redirects at once with an error that needs a user interface, the 128-character state intact', async () => {
    const state = longState();
    const r = await oidf({ state, authParams: { prompt: 'none' }, choose: () => assert.fail('prompt=none must not show a page') });
    assert.equal(r.upstreamLogin, null, 'no login page with prompt=none');
    assertErrorAtClient(r, UI_REQUIRED, { state });
  });

  it('oidcc-prompt-none-logged-in: after a first authorization, prompt=none in the same browser succeeds without any page; same sub, same auth_time', async () => {
    const browser = new OidfBrowser();
    const first = await oidf({ browser });
    await assertCodeFlow(first);
    const second = await oidf({ browser, authParams: { prompt: 'none' }, choose: () => assert.fail('prompt=none must not show the choice page') });
    assert.equal(second.upstreamLogin, null, 'no login page with prompt=none');
    await assertCodeFlow(second);
    assert.equal(second.claims.sub, first.claims.sub, 'CheckIdTokenSubConsistentForSecondAuthorization');
    if (first.claims.auth_time !== undefined) assert.equal(second.claims.auth_time, first.claims.auth_time, 'CheckIdTokenAuthTimeClaimsSameIfPresent');
  });

  it('oidcc-max-age-1: after 2 s, max_age=1 makes the aidant log in again; the second ID token has an auth_time, later than the first and recent', async () => {
    const browser = new OidfBrowser();
    const first = await oidf({ browser });
    await assertCodeFlow(first);
    await sleep(2000);
    const second = await oidf({ browser, authParams: { max_age: 1 } });
    assert.ok(second.upstreamLogin, `no second login page (ExpectSecondLoginPage):\n${trace(second)}`);
    await assertCodeFlow(second);
    const { auth_time: t2 } = second.claims;
    assert.ok(Number.isInteger(t2), 'CheckIdTokenAuthTimeClaimPresentDueToMaxAge');
    if (first.claims.auth_time !== undefined) assert.ok(t2 > first.claims.auth_time, `CheckSecondIdTokenAuthTimeIsLaterIfPresent: ${t2} ≤ ${first.claims.auth_time}`);
    assert.ok(Math.abs(Math.floor(Date.now() / 1000) - t2) <= 60, `CheckIdTokenAuthTimeIsRecentIfPresent: ${t2}`);
  });

  it('oidcc-max-age-10000: max_age=15000 then max_age=10000 in the same browser: auth_time in both ID tokens, no second login, same auth_time and sub', async () => {
    const browser = new OidfBrowser();
    const first = await oidf({ browser, authParams: { max_age: 15000 } });
    await assertCodeFlow(first);
    assert.ok(Number.isInteger(first.claims.auth_time), 'auth_time in the first ID token');
    const second = await oidf({ browser, authParams: { max_age: 10000 } });
    assert.equal(second.upstreamLogin, null, `the aidant was asked to log in again:\n${trace(second)}`);
    await assertCodeFlow(second);
    assert.ok(Number.isInteger(second.claims.auth_time), 'auth_time in the second ID token');
    assert.equal(second.claims.auth_time, first.claims.auth_time, 'same auth_time');
    assert.equal(second.claims.sub, first.claims.sub, 'same sub');
  });

  it('oidcc-ensure-request-with-unknown-parameter-succeeds: extra=foobar is ignored (RFC 6749 §3.1)', async () => {
    const r = await oidf({ authParams: { extra: 'foobar' } });
    await assertCodeFlow(r);
  });

  it('oidcc-id-token-hint: a second authorization with prompt=none and the first ID token as id_token_hint succeeds without any page; same sub and auth_time', async () => {
    const browser = new OidfBrowser();
    const first = await oidf({ browser });
    await assertCodeFlow(first);
    const second = await oidf({
      browser,
      authParams: { prompt: 'none', id_token_hint: first.tokenSet.id_token },
      choose: () => assert.fail('prompt=none must not show the choice page'),
    });
    assert.equal(second.upstreamLogin, null, 'no login page with prompt=none');
    await assertCodeFlow(second);
    assert.equal(second.claims.sub, first.claims.sub, 'same sub');
    if (first.claims.auth_time !== undefined) assert.equal(second.claims.auth_time, first.claims.auth_time, 'same auth_time');
  });

  it('oidcc-login-hint: login_hint=buffy@<issuer host> does not cause an error', async () => {
    const r = await oidf({ authParams: { login_hint: `buffy@${new URL(world.proxy.issuer).hostname}` } });
    assert.ok(r.upstreamLogin, 'a fresh login page');
    await assertCodeFlow(r);
  });

  it('oidcc-ui-locales: ui_locales=se does not cause an error', async () => {
    const r = await oidf({ authParams: { ui_locales: 'se' } });
    await assertCodeFlow(r);
  });

  it('oidcc-claims-locales: claims_locales=se does not cause an error', async () => {
    const r = await oidf({ authParams: { claims_locales: 'se' } });
    await assertCodeFlow(r);
  });

  it('oidcc-ensure-request-with-acr-values-succeeds: acr_values with the advertised acr_values_supported succeeds; the acr returned is one of them', async () => {
    const asked = discovery.acr_values_supported?.length ? discovery.acr_values_supported : ['1', '2'];
    const r = await oidf({ authParams: { acr_values: asked.join(' ') } });
    await assertCodeFlow(r);
    assert.ok(asked.includes(r.claims.acr), `acr ${r.claims.acr} is one of ${asked.join(' ')} (a warning in the suite)`);
  });

  it('oidcc-codereuse: a code used a second time at once gets 400 invalid_grant as JSON', async () => {
    const r = await oidf();
    await assertCodeFlow(r);
    const replay = await tokenRequest(basic, { grant_type: 'authorization_code', code: r.code, redirect_uri: REDIRECT });
    assertInvalidGrant(replay, 'code reuse');
  });

  it('oidcc-codereuse-30seconds: a code used again 30 s later gets 400 invalid_grant, and the access token it issued is revoked', async () => {
    const { before30, replay, after30 } = await reuse30;
    assert.equal(before30.status, 200, `userinfo before the reuse: ${before30.status}`);
    assertInvalidGrant(replay, 'code reuse after 30 s');
    assert.equal(after30.status, 401, `access token still accepted after the code reuse (a warning in the suite): ${after30.status} ${after30.body}`);
  });

  it('oidcc-ensure-registered-redirect-uri: an unregistered redirect_uri gets an error page at the OP, never a redirect', async () => {
    const bad = `${REDIRECT}/${randomBytes(8).toString('hex')}`; // CreateBadRedirectUri: random, unregistered
    const r = await oidf({ sp: { ...basic, redirectUri: bad }, choose: () => assert.fail('no choice page expected') });
    assert.equal(r.callbackUrl, null, `redirected to the unregistered URI:\n${trace(r)}`);
    assertPageNotClient(r.final, r.steps, 'unregistered redirect_uri');
    assert.ok(r.final.status >= 400, `an error page, got ${r.final.status}`);
  });

  it('oidcc-ensure-post-request-succeeds: the authorization request sent as a form POST succeeds and comes back to the redirect_uri', async () => {
    const r = await oidf({ method: 'POST' });
    assert.equal(r.steps[0].method, 'POST');
    await assertCodeFlow(r);
  });

  it('oidcc-server-client-secret-post: happy code flow for a client authenticating with client_secret_post', async () => {
    const r = await oidf({ sp: secretPost });
    assert.equal(secretPost.client.token_endpoint_auth_method, 'client_secret_post');
    await assertCodeFlow(r, secretPost);
  });

  it('oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported: a request_uri to an unsigned request object gets request_uri_not_supported (request_uri_parameter_supported is false) (module runs only with dynamic registration)', async () => {
    assert.equal(discovery.request_uri_parameter_supported, false, 'request_uri_parameter_supported: false');
    assert.ok(!(discovery.request_object_signing_alg_values_supported ?? []).includes('none'));
    const checksState = generators.state();
    const object = await basic.client.requestObject({
      response_type: 'code', client_id: CLIENT.client_id, scope: 'openid', redirect_uri: REDIRECT, state: checksState, nonce: generators.nonce(),
    }, { sign: 'none' });
    let fetched = 0;
    const server = createServer((req, res) => { fetched++; res.writeHead(200, { 'content-type': 'application/oauth-authz-req+jwt' }); res.end(object); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try {
      const requestUri = `http://127.0.0.1:${server.address().port}/request.jwt`;
      const r = await oidf({ authParams: { request_uri: requestUri, state: undefined, nonce: undefined }, choose: () => assert.fail('no choice page expected') });
      assertErrorAtClient(r, ['request_uri_not_supported']);
      assert.equal(fetched, 0, 'the OP fetched a request_uri it does not support');
    } finally {
      server.close();
    }
  });

  it('oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported: signed request objects only (none not advertised), so an unsigned one is rejected as unsupported', async () => {
    assert.equal(discovery.request_parameter_supported, true);
    assert.ok(!discovery.request_object_signing_alg_values_supported.includes('none'), 'alg none not offered');
    const object = await basic.client.requestObject({
      response_type: 'code', client_id: CLIENT.client_id, scope: 'openid', redirect_uri: REDIRECT, state: generators.state(), nonce: generators.nonce(),
    }, { sign: 'none' });
    // BuildRequestObjectRedirectToAuthorizationEndpoint: response_type, client_id, scope and
    // redirect_uri also as parameters; state and nonce only inside the object.
    const r = await oidf({ authParams: { request: object, state: undefined, nonce: undefined }, choose: () => assert.fail('no choice page expected') });
    assertErrorAtClient(r, ['request_not_supported']);
  });

  it('oidcc-claims-essential: claims={"userinfo":{"name":{"essential":true}}} succeeds; name is not put in the ID token', async () => {
    assert.equal(discovery.claims_parameter_supported, true);
    const r = await oidf({ scope: 'openid profile', claims: { userinfo: { name: { essential: true } } } });
    await assertCodeFlow(r);
    assertStandardClaims(r.userinfo);
    assert.equal(r.claims.name, undefined, 'EnsureIdTokenDoesNotContainName');
  });

  it('oidcc-ensure-request-object-with-redirect-uri: an invalid redirect_uri parameter next to a request object is never used: error page, no redirect to either URI', async () => {
    const object = await basic.client.requestObject({
      response_type: 'code', client_id: CLIENT.client_id, scope: 'openid', redirect_uri: REDIRECT, state: generators.state(), nonce: generators.nonce(),
    }, { sign: 'none' });
    const invalid = `${SP_ORIGIN}/test/a/idp-proxy/invalid-redirect`;
    const r = await oidf({ sp: { ...basic, redirectUri: invalid }, authParams: { request: object, state: undefined, nonce: undefined }, choose: () => assert.fail('no choice page expected') });
    assert.equal(r.callbackUrl, null, `redirected to the invalid redirect_uri:\n${trace(r)}`);
    // EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri: no request_not_supported at
    // the registered URI either (OidfBrowser marks any visit of the client).
    assertPageNotClient(r.final, r.steps, 'invalid redirect_uri with a request object');
    assert.ok(r.final.status >= 400, `an error page (ExpectRedirectUriErrorPage), got ${r.final.status}`);
  });

  it('oidcc-refresh-token: skipped as no refresh token is issued; discovery does not list the refresh_token grant, which the token endpoint refuses', async () => {
    const r = await oidf({ scope: 'openid offline_access' });
    await assertCodeFlow(r);
    assert.equal(r.tokenSet.refresh_token, undefined, 'no refresh_token issued');
    assert.ok(!(discovery.grant_types_supported ?? ['authorization_code', 'implicit']).includes('refresh_token'), 'EnsureServerConfigurationDoesNotSupportRefreshToken');
    const res = await tokenRequest(basic, { grant_type: 'refresh_token', refresh_token: 'none-was-issued' });
    assert.equal(res.status, 400, res.body);
    assert.ok(['unsupported_grant_type', 'invalid_grant'].includes(res.json?.error), res.body);
  });

  it('oidcc-ensure-request-with-valid-pkce-succeeds: a request with valid PKCE S256 succeeds, for a client without PKCE required and for one (the default) with', async () => {
    for (const sp of [basic, pkceSp]) {
      const r = await oidf({ sp, pkce: true });
      assert.ok(new URL(r.authorizationUrl).searchParams.get('code_challenge_method') === 'S256');
      await assertCodeFlow(r, sp);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// oidcc-config-certification-test-plan

describe('oidcc-config-certification-test-plan (Config OP: discovery, static client)', () => {
  it('oidcc-discovery-endpoint-verification: discovery answers 200 JSON; issuer matches; required metadata present and well-formed; endpoints https; JWKS keys public, valid and usable', async () => {
    const wellKnown = `${world.proxy.issuer}/.well-known/openid-configuration`;
    const res = await rawRequest(wellKnown);
    assert.equal(res.status, 200, 'EnsureDiscoveryEndpointResponseStatusCodeIs200');
    assert.match(res.contentType, /^application\/json/, 'CheckDiscoveryEndpointReturnedJsonContentType');
    const raw = JSON.parse(res.body);

    // openid-client's discovery (it checks the issuer against the URL it came from)
    const issuer = await Issuer.discover(world.proxy.issuer);
    const m = issuer.metadata;
    for (const [k, v] of Object.entries(raw)) assert.deepEqual(m[k], v, `openid-client reads ${k} as served`);

    // CheckDiscEndpointDiscoveryUrl, CheckDiscEndpointIssuer, CheckDiscEndpointIssuerIsValidUrl
    assert.equal(m.issuer, world.proxy.issuer, 'issuer = the discovery URL without /.well-known/openid-configuration');
    const iss = assertHttpsUrl(m.issuer, 'issuer');
    assert.equal(iss.search, '', 'issuer without query');
    assert.equal(iss.username + iss.password, '', 'issuer without userinfo');

    // OIDCCCheckDiscEndpointResponseTypesSupported (static client: one OIDC response type)
    assert.ok(Array.isArray(m.response_types_supported) && m.response_types_supported.includes('code'), 'response_types_supported includes code');
    // CheckDiscEndpointSubjectTypesSupported
    assert.ok(Array.isArray(m.subject_types_supported) && m.subject_types_supported.some((t) => ['public', 'pairwise'].includes(t)), 'subject_types_supported');
    // OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported
    assert.ok(Array.isArray(m.id_token_signing_alg_values_supported) && m.id_token_signing_alg_values_supported.includes('RS256'), 'id_token_signing_alg_values_supported includes RS256');
    // OIDCCCheckDiscEndpointUserinfoSigningAlgValuesSupported (if present: an array)
    if (m.userinfo_signing_alg_values_supported !== undefined) assert.ok(Array.isArray(m.userinfo_signing_alg_values_supported));

    // CheckDiscEndpointAuthorizationEndpoint / TokenEndpoint / UserinfoEndpoint, CheckJwksUri,
    // CheckDiscEndpointAllEndpointsAreHttps (every *_endpoint)
    assertHttpsUrl(m.authorization_endpoint, 'authorization_endpoint');
    assertHttpsUrl(m.token_endpoint, 'token_endpoint');
    assertHttpsUrl(m.userinfo_endpoint, 'userinfo_endpoint');
    assertHttpsUrl(m.jwks_uri, 'jwks_uri');
    for (const [k, v] of Object.entries(raw)) if (k.endsWith('_endpoint')) assertHttpsUrl(v, k);
    if (m.registration_endpoint !== undefined) assertHttpsUrl(m.registration_endpoint, 'registration_endpoint');

    // FetchServerKeys, ValidateServerJWKs, EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys,
    // and the keys are usable (jose imports each one for its algorithm)
    const jwksRes = await rawRequest(m.jwks_uri);
    assert.equal(jwksRes.status, 200);
    const jwks = JSON.parse(jwksRes.body);
    assert.ok(Array.isArray(jwks.keys) && jwks.keys.length > 0, 'a non-empty keys array');
    const kids = new Set();
    for (const k of jwks.keys) {
      assert.ok(['RSA', 'EC', 'OKP'].includes(k.kty), `asymmetric key type (${k.kty})`);
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) assert.ok(!(priv in k), `private member ${priv} in ${k.kid}`);
      for (const member of ['n', 'e', 'x', 'y']) {
        if (k[member] !== undefined) assert.match(k[member], /^[A-Za-z0-9_-]+$/, `${k.kid}.${member} is unpadded base64url`);
      }
      assert.ok(k.kid, 'every key has a kid (CheckForKeyIdInServerJWKs)');
      assert.ok(!kids.has(k.kid), `kid ${k.kid} is unique`);
      kids.add(k.kid);
      if (k.use !== undefined) assert.ok(['sig', 'enc'].includes(k.use), `use ${k.use}`);
      const alg = k.alg ?? (k.kty === 'EC' ? { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[k.crv] : k.kty === 'OKP' ? 'EdDSA' : 'RS256');
      const key = await jose.importJWK(k, alg);
      assert.equal(key.type, 'public', `${k.kid} is a public key`);
    }
    for (const alg of m.id_token_signing_alg_values_supported.filter((a) => a !== 'none')) {
      const kty = { RS: 'RSA', PS: 'RSA', ES: 'EC', Ed: 'OKP' }[alg.slice(0, 2)];
      assert.ok(jwks.keys.some((k) => (k.use ?? 'sig') === 'sig' && (k.alg === alg || (!k.alg && k.kty === kty))), `a published signing key for ${alg}`);
    }

    // CheckDiscEndpointRequestParameterSupported / RequestUriParameterSupported (booleans if present),
    // CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256 (if present)
    for (const k of ['request_parameter_supported', 'request_uri_parameter_supported', 'claims_parameter_supported']) {
      if (m[k] !== undefined) assert.equal(typeof m[k], 'boolean', k);
    }
    if (m.request_object_signing_alg_values_supported !== undefined) assert.ok(m.request_object_signing_alg_values_supported.includes('RS256'));
    // OIDCCCheckDiscEndpointClaimsSupported (recommended; an array)
    assert.ok(Array.isArray(m.claims_supported), 'claims_supported');
    // OIDCCCheckDiscEndpointGrantTypesSupported: if present, a non-empty array (with the code grant)
    if (m.grant_types_supported !== undefined) {
      assert.ok(Array.isArray(m.grant_types_supported) && m.grant_types_supported.length > 0);
      assert.ok(m.grant_types_supported.includes('authorization_code'));
    }
    // CheckDiscEndpointScopesSupportedContainsOpenId, CheckDiscEndpointScopesSupportedSyntax
    assert.ok(Array.isArray(m.scopes_supported) && m.scopes_supported.includes('openid'), 'scopes_supported includes openid');
    for (const s of m.scopes_supported) assert.match(s, /^[\x21\x23-\x5B\x5D-\x7E]+$/, `scope token ${s}`);
    // CheckDiscEndpointLocalesSyntax / LocalesCanonicalCasing
    for (const k of ['ui_locales_supported', 'claims_locales_supported']) {
      if (m[k] === undefined) continue;
      assert.ok(Array.isArray(m[k]), k);
      for (const tag of m[k]) {
        assert.match(tag, /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/, `${k}: BCP 47 tag ${tag}`);
        assert.equal(tag.split('-')[0], tag.split('-')[0].toLowerCase(), `${k}: canonical casing of ${tag}`);
      }
    }
    // EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray
    if (m.code_challenge_methods_supported !== undefined) assert.ok(Array.isArray(m.code_challenge_methods_supported));
    // What the OP supports is what it says: a usable flow with this metadata (Config OP's
    // "Discovered issuer matches ID Token iss value").
    const r = await oidf();
    await assertCodeFlow(r);
    assert.equal(r.claims.iss, m.issuer);
  });
});

// ---------------------------------------------------------------------------------------------
// oidcc-rp-initiated-logout-certification-test-plan

describe('oidcc-rp-initiated-logout-certification-test-plan (RP-Initiated OP, client_secret_basic)', () => {
  /** A normal authorization (128-character state, as AbstractOIDCCRpInitiatedLogout). */
  async function loggedIn() {
    const browser = new OidfBrowser();
    const r = await oidf({ browser, state: longState() });
    await assertCodeFlow(r);
    return { browser, idToken: r.tokenSet.id_token, first: r };
  }

  /**
   * Sends the browser to the end_session_endpoint with `params`; confirms the upstream IdP's
   * "log out?" page when it comes (the aidant clicks "Oui"). `redirected` is where the client
   * got the browser back, if it did.
   */
  async function endSession(browser, params) {
    const url = new URL(discovery.end_session_endpoint);
    for (const [k, v] of Object.entries(params)) if (v !== undefined && k !== 'confirm') url.searchParams.set(k, v);
    const upstreamOrigin = new URL(world.upstream.issuer).origin;
    let nav = await browser.navigate(url.toString());
    const steps = [...nav.steps];
    // idp-proxy's own "Se déconnecter ?" page, when the request does not name the session:
    // the aidant confirms (OIDF: a confirmation page is acceptable for these modules).
    const confirmation = nav.final.status === 200 && !nav.final.atClient
      && parseForms(nav.final.body, nav.final.url).find((f) => f.method === 'post' && new URL(f.action).pathname === '/end_session');
    if (confirmation && params.confirm !== false) {
      nav = await browser.navigate(confirmation.action, { method: 'POST', form: formFields(confirmation) });
      steps.push(...nav.steps);
    }
    for (let guard = 0; guard < 3; guard++) {
      const here = new URL(nav.final.url);
      if (nav.final.atClient || here.origin !== upstreamOrigin || nav.final.status !== 200) break;
      const form = parseForms(nav.final.body, here).find((f) => f.method === 'post');
      if (!form) break;
      const fields = formFields(form);
      fields.set('logout', 'yes');
      nav = await browser.navigate(form.action, { method: 'POST', form: fields });
      steps.push(...nav.steps);
    }
    const redirected = nav.final.atClient ? new URL(nav.final.url) : null;
    return { steps, final: redirected ? null : nav.final, redirected, trace: steps.map((s) => `${s.method} ${s.url} → ${s.status}${s.location ? ` → ${s.location}` : ''}`).join('\n') };
  }

  /** Logged out: prompt=none fails with a "user interface needed" error, and a new authorization makes the aidant log in. */
  async function assertLoggedOut(browser) {
    const state = longState();
    const none = await oidf({ browser, state, authParams: { prompt: 'none' }, choose: () => assert.fail('prompt=none must not show a page') });
    assertErrorAtClient(none, UI_REQUIRED, { state });
    const again = await oidf({ browser, choose: null });
    assert.ok(again.upstreamLogin, `the aidant was not asked to log in again after logging out:\n${trace(again)}`);
  }

  function assertPostLogoutRedirect(out, { state }) {
    assert.ok(out.redirected, `not sent back to the post_logout_redirect_uri:\n${out.trace}\n${textOf(out.final?.body ?? '').slice(0, 300)}`);
    assert.equal(`${out.redirected.origin}${out.redirected.pathname}`, POST_LOGOUT, 'the registered post_logout_redirect_uri');
    if (state === undefined) assert.equal(out.redirected.searchParams.get('state'), null, 'CheckNoPostLogoutState');
    else assert.equal(out.redirected.searchParams.get('state'), state, 'CheckPostLogoutState: state unchanged');
    const unexpected = [...out.redirected.searchParams.keys()].filter((k) => k !== 'state');
    assert.deepEqual(unexpected, [], 'CheckForUnexpectedParametersInPostLogoutRedirect');
  }

  function assertErrorOrConfirmation(out, what) {
    assert.equal(out.redirected, null, `${what}: the OP redirected to the client (${out.redirected}):\n${out.trace}`);
    assertPageNotClient(out.final, out.steps, what);
    const confirmation = out.final.status === 200 && parseForms(out.final.body, out.final.url).some((f) => f.method === 'post');
    assert.ok(out.final.status >= 400 || confirmation, `${what}: an error page or a logout confirmation, got ${out.final.status}: ${textOf(out.final.body).slice(0, 200)}`);
  }

  function assertLoggedOutPage(out, what) {
    assert.equal(out.redirected, null, `${what}: the OP redirected to the client (${out.redirected}):\n${out.trace}`);
    assertPageNotClient(out.final, out.steps, what);
    assert.equal(out.final.status, 200, `${what}: a "logged out" page (ExpectSuccessfulLogoutPage), got ${out.final.status}`);
  }

  it('oidcc-rp-initiated-logout-discovery-endpoint-verification: discovery has an https end_session_endpoint, and every *_endpoint is https', async () => {
    assertHttpsUrl(discovery.end_session_endpoint, 'end_session_endpoint');
    for (const [k, v] of Object.entries(discovery)) if (k.endsWith('_endpoint')) assertHttpsUrl(v, k);
  });

  it('oidcc-rp-initiated-logout: id_token_hint, registered post_logout_redirect_uri and state: back to that URI with the state alone; then prompt=none fails and the aidant must log in again', async () => {
    const { browser, idToken } = await loggedIn();
    const state = generators.state();
    const out = await endSession(browser, { id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT, state });
    assertPostLogoutRedirect(out, { state });
    await assertLoggedOut(browser);
  });

  it('oidcc-rp-initiated-logout-bad-post-logout-redirect-uri: an unregistered post_logout_redirect_uri is never redirected to: error page or confirmation', async () => {
    const { browser, idToken } = await loggedIn();
    const out = await endSession(browser, {
      id_token_hint: idToken, post_logout_redirect_uri: `${SP_ORIGIN}/test/a/idp-proxy/not_registered_post_logout`, state: generators.state(),
    });
    assertErrorOrConfirmation(out, 'unregistered post_logout_redirect_uri');
  });

  it('oidcc-rp-initiated-logout-modified-id-token-hint: an id_token_hint changed to alg "none" is refused: no redirect, error page or confirmation', async () => {
    const { browser, idToken } = await loggedIn();
    const [, payload] = idToken.split('.');
    const header = { ...jose.decodeProtectedHeader(idToken), alg: 'none' };
    const unsigned = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${payload}.`;
    // Left on the confirmation page: it must not lead back to the client.
    const out = await endSession(browser, { id_token_hint: unsigned, post_logout_redirect_uri: POST_LOGOUT, state: generators.state(), confirm: false });
    assertErrorOrConfirmation(out, 'alg none id_token_hint');
  });

  it('oidcc-rp-initiated-logout-no-id-token-hint: post_logout_redirect_uri and state without id_token_hint: no redirect, error page or confirmation', async () => {
    const { browser } = await loggedIn();
    const out = await endSession(browser, { post_logout_redirect_uri: POST_LOGOUT, state: generators.state() });
    assertErrorOrConfirmation(out, 'no id_token_hint');
  });

  it('oidcc-rp-initiated-logout-no-params: end_session without parameters logs the aidant out and shows a "logged out" page', async () => {
    const { browser } = await loggedIn();
    const out = await endSession(browser, {});
    assertLoggedOutPage(out, 'no parameters');
    await assertLoggedOut(browser);
  });

  it('oidcc-rp-initiated-logout-no-post-logout-redirect-uri: id_token_hint and state only: logged out, a "logged out" page, no redirect', async () => {
    const { browser, idToken } = await loggedIn();
    const out = await endSession(browser, { id_token_hint: idToken, state: generators.state() });
    assertLoggedOutPage(out, 'no post_logout_redirect_uri');
    await assertLoggedOut(browser);
  });

  it('oidcc-rp-initiated-logout-no-state: id_token_hint and post_logout_redirect_uri without state: back to that URI with no state; then prompt=none fails', async () => {
    const { browser, idToken } = await loggedIn();
    const out = await endSession(browser, { id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT });
    assertPostLogoutRedirect(out, { state: undefined });
    await assertLoggedOut(browser);
  });

  it('oidcc-rp-initiated-logout-only-state: state alone: logged out, a "logged out" page, no redirect', async () => {
    const { browser } = await loggedIn();
    const out = await endSession(browser, { state: generators.state() });
    assertLoggedOutPage(out, 'only state');
    await assertLoggedOut(browser);
  });

  it('oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri: the registered post_logout_redirect_uri with ?foo=bar added is not an exact match: no redirect, error page or confirmation', async () => {
    const { browser, idToken } = await loggedIn();
    const out = await endSession(browser, { id_token_hint: idToken, post_logout_redirect_uri: `${POST_LOGOUT}?foo=bar`, state: generators.state() });
    assertErrorOrConfirmation(out, 'query added to post_logout_redirect_uri');
  });

  it('oidcc-rp-initiated-logout-bad-id-token-hint: an id_token_hint signed by another key (even under the OP\'s kid) is refused: no redirect, error page', async () => {
    const { browser, idToken } = await loggedIn();
    const real = jose.decodeJwt(idToken);
    const { privateKey } = await jose.generateKeyPair('RS256');
    const forged = await new jose.SignJWT({ ...real })
      .setProtectedHeader({ alg: 'RS256', kid: jose.decodeProtectedHeader(idToken).kid, typ: 'JWT' })
      .sign(privateKey);
    const out = await endSession(browser, { id_token_hint: forged, post_logout_redirect_uri: POST_LOGOUT, state: generators.state(), confirm: false });
    assertErrorOrConfirmation(out, 'id_token_hint signed by another key');
  });
});
