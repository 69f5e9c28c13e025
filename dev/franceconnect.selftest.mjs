// Self-test of the development FranceConnect (dev/franceconnect.mjs): `node --test dev/franceconnect.selftest.mjs`.
//
// DEVELOPMENT ONLY. It plays a relying party: a tiny HTTP server publishing the RP's JWKS (its
// public encryption keys, generated here with jose), a browser (fetch with manual redirects and
// a cookie jar) and openid-client v5 holding the RP's private keys. It checks what idp-proxy will
// rely on: encrypted-then-signed ID token and userinfo, the identité pivot, acr/nonce, "Annuler",
// the required parameters, prompt=login and RP-initiated logout.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

import { Issuer, generators, custom } from 'openid-client';
import * as jose from 'jose';

import { startFranceConnect, DEMO_USAGERS, defaultClients } from './franceconnect.mjs';

custom.setHttpOptionsDefaults({ timeout: 10_000 });

// ---------------------------------------------------------------------------------------------
// A browser: fetch with redirect "manual" and a cookie jar per host:port (path-aware).

class Browser {
  constructor() { this.jar = new Map(); }

  store(url, res) {
    for (const header of res.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const eq = pair.indexOf('=');
      const cookie = { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), path: '/', expired: false };
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'path') cookie.path = v;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) cookie.expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) cookie.expired = true;
      }
      if (!this.jar.has(url.host)) this.jar.set(url.host, new Map());
      const bucket = this.jar.get(url.host);
      const key = `${cookie.name};${cookie.path}`;
      if (cookie.expired) bucket.delete(key); else bucket.set(key, cookie);
    }
  }

  cookieHeader(url) {
    const matches = (p, c) => p === c || (p.startsWith(c) && (c.endsWith('/') || p[c.length] === '/'));
    return [...(this.jar.get(url.host)?.values() || [])]
      .filter((c) => matches(url.pathname, c.path))
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  cookieNames(origin) {
    return [...(this.jar.get(new URL(origin).host)?.values() || [])].map((c) => c.name);
  }

  async request(href, { method = 'GET', form } = {}) {
    const url = new URL(href);
    const headers = { accept: 'text/html' };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    this.store(url, res);
    const location = res.headers.get('location');
    return {
      status: res.status,
      url,
      location: location ? new URL(location, url) : null,
      contentType: res.headers.get('content-type') || '',
      body: await res.text(),
    };
  }

  /** Follows redirects (as GET) until a non-redirect, or a Location starting with `stopAt`. */
  async navigate(href, { method = 'GET', form, stopAt } = {}) {
    let step = await this.request(href, { method, form });
    for (let i = 0; [301, 302, 303, 307, 308].includes(step.status); i++) {
      if (stopAt && step.location.href.startsWith(stopAt)) return { stoppedAt: step.location, final: step };
      if (i > 20) throw new Error('too many redirects');
      step = await this.request(step.location.href);
    }
    return { stoppedAt: null, final: step };
  }
}

function forms(html) {
  const out = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attr = (name) => (new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(m[1]) || [])[1];
    const buttons = [...m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map((b) => ({
      name: (/\bname="([^"]*)"/.exec(b[1]) || [])[1],
      value: (/\bvalue="([^"]*)"/.exec(b[1]) || [])[1],
      text: b[2].replace(/<[^>]*>/g, '').trim(),
    }));
    out.push({ method: (attr('method') || 'get').toLowerCase(), action: attr('action'), buttons });
  }
  return out;
}

const b64json = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

// ---------------------------------------------------------------------------------------------
// The RP stand-in: its JWKS (an RSA signing key it would use as an OP, first, to prove the
// provider picks the `use: "enc"` key; an RSA-OAEP-256 key; an ECDH-ES P-256 key).

let rp; let rpBase; let fc; let issuer; let fcOrigin;
const rpKeys = {};
let jwksFetches = 0;

const CLIENTS = {};

async function makeKey(alg, use, kidPrefix, opts = {}) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...opts });
  const pub = await jose.exportJWK(publicKey);
  const kid = `${kidPrefix}-${(await jose.calculateJwkThumbprint(pub)).slice(0, 8)}`;
  return {
    public: { ...pub, kid, use, alg },
    private: { ...(await jose.exportJWK(privateKey)), kid, use, alg },
  };
}

before(async () => {
  rpKeys.sig = await makeKey('RS256', 'sig', 'rp-sig');
  rpKeys.rsa = await makeKey('RSA-OAEP-256', 'enc', 'rp-enc-rsa');
  rpKeys.ec = await makeKey('ECDH-ES', 'enc', 'rp-enc-ec', { crv: 'P-256' });
  rpKeys.rsa2 = await makeKey('RSA-OAEP-256', 'enc', 'rp-enc-rsa2');

  rp = createServer((req, res) => {
    const keys = {
      '/jwks': [rpKeys.sig.public, rpKeys.rsa.public],
      '/jwks-ec': [rpKeys.ec.public],
      '/jwks-two': [rpKeys.rsa2.public, rpKeys.rsa.public],
    }[req.url];
    if (!keys) { res.statusCode = 404; return res.end(); }
    jwksFetches++;
    res.setHeader('Content-Type', 'application/jwk-set+json');
    res.setHeader('Cache-Control', 'public, max-age=300');
    return res.end(JSON.stringify({ keys }));
  });
  await new Promise((resolve) => rp.listen(0, '127.0.0.1', resolve));
  rpBase = `http://127.0.0.1:${rp.address().port}`;

  const [def] = defaultClients(rpBase); // the default client, as idp-proxy would be registered
  CLIENTS.enc = { ...def, client_id: 'rp-enc' };
  CLIENTS.plain = {
    client_id: 'rp-plain',
    client_secret: 'plain-secret',
    redirect_uris: [`${rpBase}/plain/callback`],
    post_logout_redirect_uris: [`${rpBase}/plain/logout-callback`],
    id_token_signed_response_alg: 'RS256',
    // no *_encrypted_response_*, no jwks_uri; userinfo still signed (ES256, the default)
  };
  CLIENTS.ecdh = {
    client_id: 'rp-ecdh',
    client_secret: 'ecdh-secret',
    redirect_uris: [`${rpBase}/ecdh/callback`],
    id_token_encrypted_response_alg: 'ECDH-ES',
    id_token_encrypted_response_enc: 'A256GCM',
    userinfo_encrypted_response_alg: 'ECDH-ES',
    userinfo_encrypted_response_enc: 'A256GCM',
    jwks_uri: `${rpBase}/jwks-ec`,
  };

  // Two RSA-OAEP-256 encryption keys published.
  CLIENTS.two = { ...CLIENTS.enc, client_id: 'rp-two', redirect_uris: [`${rpBase}/two/callback`], jwks_uri: `${rpBase}/jwks-two` };
  // Its JWKS cannot be fetched (nothing listens on port 9).
  CLIENTS.broken = { ...CLIENTS.enc, client_id: 'rp-broken', redirect_uris: [`${rpBase}/broken/callback`], jwks_uri: 'http://127.0.0.1:9/jwks' };

  fc = await startFranceConnect({ port: 0, quiet: true, clients: Object.values(CLIENTS) });
  issuer = await Issuer.discover(fc.issuer);
  fcOrigin = new URL(fc.issuer).origin;
});

after(async () => {
  await fc?.close();
  await new Promise((resolve) => (rp ? rp.close(resolve) : resolve()));
});

/**
 * openid-client for one registered client. The RP must expect what the provider defaults to:
 * ES256 signatures for the ID token and userinfo, client_secret_post.
 */
function rpClient(name) {
  const { post_logout_redirect_uris: _p, jwks_uri: _j, ...meta } = CLIENTS[name];
  const keys = {
    enc: [rpKeys.rsa.private],
    broken: [rpKeys.rsa.private],
    ecdh: [rpKeys.ec.private],
    two: [rpKeys.rsa.private, rpKeys.rsa2.private],
  }[name];
  return new issuer.Client({
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'ES256',
    userinfo_signed_response_alg: 'ES256',
    ...meta,
  }, keys ? { keys } : undefined);
}

/** Starts an authorization request as FranceConnect v2 wants it. */
function authorize(client, { scope = 'openid identite_pivot email', extra = {}, omit = [] } = {}) {
  const checks = {
    state: generators.state(),
    nonce: generators.nonce(),
    code_verifier: generators.codeVerifier(),
  };
  const params = {
    scope,
    state: checks.state,
    nonce: checks.nonce,
    code_challenge: generators.codeChallenge(checks.code_verifier),
    code_challenge_method: 'S256',
    acr_values: 'eidas1',
    prompt: 'login',
    ...extra,
  };
  for (const k of omit) delete params[k];
  for (const [k, v] of Object.entries(params)) if (v === undefined) delete params[k];
  return { url: client.authorizationUrl(params), checks };
}

/** Browser: authorization request → login page → click the usager → stop at the redirect URI. */
async function login(browser, client, sub, opts) {
  const { url, checks } = authorize(client, opts);
  const toPage = await browser.navigate(url, { stopAt: client.redirect_uris[0] });
  assert.equal(toPage.stoppedAt, null, 'the login page is shown');
  const page = toPage.final;
  assert.equal(page.status, 200);
  const loginForm = forms(page.body).find((f) => f.buttons.some((b) => b.value === sub));
  assert.ok(loginForm, `a button for ${sub}`);
  const done = await browser.navigate(new URL(loginForm.action, page.url).href, {
    method: 'POST', form: { sub }, stopAt: client.redirect_uris[0],
  });
  assert.ok(done.stoppedAt, `redirected back to the RP, got ${done.final.status} ${done.final.body.slice(0, 300)}`);
  return { callback: done.stoppedAt, checks, page };
}

/** Exchanges the code with openid-client, keeping the raw (possibly encrypted) ID token. */
async function exchange(client, callback, checks) {
  let rawIdToken;
  const grant = client.grant.bind(client);
  client.grant = async (...args) => {
    const tokenSet = await grant(...args);
    rawIdToken = tokenSet.id_token;
    return tokenSet;
  };
  const params = client.callbackParams(callback.href);
  const tokenSet = await client.callback(client.redirect_uris[0], params, { ...checks, response_type: 'code' });
  return { tokenSet, rawIdToken, params };
}

async function rawUserinfo(accessToken) {
  const res = await fetch(issuer.userinfo_endpoint, {
    headers: { authorization: `Bearer ${accessToken}`, accept: 'application/jwt' },
  });
  return { status: res.status, contentType: res.headers.get('content-type') || '', body: await res.text() };
}

// ---------------------------------------------------------------------------------------------

test('discovery looks like FranceConnect v2', () => {
  const m = issuer.metadata;
  assert.match(m.issuer, /\/api\/v2$/);
  assert.equal(m.authorization_endpoint, `${m.issuer}/authorize`);
  assert.equal(m.token_endpoint, `${m.issuer}/token`);
  assert.equal(m.userinfo_endpoint, `${m.issuer}/userinfo`);
  assert.equal(m.end_session_endpoint, `${m.issuer}/session/end`);
  assert.equal(m.jwks_uri, `${m.issuer}/jwks`);
  assert.equal(m.authorization_response_iss_parameter_supported, true);
  assert.deepEqual(m.acr_values_supported, ['eidas1']);
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  for (const s of ['openid', 'given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry', 'email', 'preferred_username', 'profile', 'birth', 'identite_pivot']) {
    assert.ok(m.scopes_supported.includes(s), s);
  }
  assert.deepEqual(m.id_token_encryption_enc_values_supported, ['A256GCM']);
  assert.ok(m.userinfo_encryption_alg_values_supported.includes('RSA-OAEP-256'));
  assert.deepEqual(DEMO_USAGERS.map((u) => u.sub).slice(0, 3), ['fc-michel', 'fc-jeanne', 'fc-amina']);
});

test('encrypted client: amina logs in; ID token and userinfo are JWE(JWS ES256)', async () => {
  const client = rpClient('enc');
  const browser = new Browser();
  const { callback, checks, page } = await login(browser, client, 'fc-amina');

  // The login page.
  assert.match(page.body, /FranceConnect \(développement\) — Connexion de la personne accompagnée/);
  assert.doesNotMatch(page.body, /<script/i);
  const pageForms = forms(page.body);
  const loginForm = pageForms.find((f) => f.buttons.some((b) => b.name === 'sub'));
  assert.equal(loginForm.method, 'post');
  assert.match(loginForm.action, /^\/interaction\/[^/]+\/login$/);
  assert.deepEqual(loginForm.buttons.map((b) => b.value), DEMO_USAGERS.map((u) => u.sub));
  assert.ok(pageForms.some((f) => f !== loginForm && f.buttons.some((b) => b.text === 'Annuler')));
  assert.ok(browser.cookieNames(fcOrigin).includes('_fc_session'), 'own cookie names');

  // RFC 9207 iss, state.
  assert.equal(callback.searchParams.get('iss'), fc.issuer);
  assert.equal(callback.searchParams.get('state'), checks.state);
  assert.ok(callback.searchParams.get('code'));

  const fetchesBefore = jwksFetches;
  const { tokenSet, rawIdToken } = await exchange(client, callback, checks);

  // Raw ID token: compact JWE, RSA-OAEP-256 / A256GCM, cty JWT, to the RP's enc key.
  const parts = rawIdToken.split('.');
  assert.equal(parts.length, 5, 'a 5-part JWE');
  const jweHeader = b64json(parts[0]);
  assert.equal(jweHeader.alg, 'RSA-OAEP-256');
  assert.equal(jweHeader.enc, 'A256GCM');
  assert.equal(jweHeader.cty, 'JWT');
  assert.equal(jweHeader.kid, rpKeys.rsa.public.kid, 'encrypted to the use=enc key, not the signing key');
  assert.equal(jweHeader.iss, fc.issuer); // oidc-provider also copies iss/aud into the JWE header
  assert.equal(jweHeader.aud, 'rp-enc');
  assert.ok(jwksFetches > fetchesBefore || fetchesBefore > 0, 'the provider fetched the RP JWKS');

  // Decrypt independently with jose, then verify the inner JWS against the provider's JWKS.
  const rsaPrivate = await jose.importJWK(rpKeys.rsa.private, 'RSA-OAEP-256');
  const { plaintext, protectedHeader } = await jose.compactDecrypt(rawIdToken, rsaPrivate, {
    keyManagementAlgorithms: ['RSA-OAEP-256'], contentEncryptionAlgorithms: ['A256GCM'],
  });
  assert.equal(protectedHeader.cty, 'JWT');
  const jws = new TextDecoder().decode(plaintext);
  assert.equal(jws.split('.').length, 3);
  assert.equal(tokenSet.id_token, jws, 'openid-client replaced the JWE by the inner JWS');
  const fcJwks = jose.createRemoteJWKSet(new URL(issuer.jwks_uri));
  const { payload: idt, protectedHeader: jwsHeader } = await jose.jwtVerify(jws, fcJwks, {
    issuer: fc.issuer, audience: 'rp-enc', algorithms: ['ES256'],
  });
  assert.equal(jwsHeader.alg, 'ES256');
  assert.match(jwsHeader.kid, /^dev-franceconnect-es256-/);
  assert.equal(idt.sub, 'fc-amina');
  assert.equal(idt.nonce, checks.nonce);
  assert.equal(idt.acr, 'eidas1');
  assert.equal(idt.amr, undefined, 'amr only on request');
  assert.equal(typeof idt.auth_time, 'number');
  for (const c of ['given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry', 'email']) {
    assert.equal(idt[c], undefined, `no ${c} in the ID token`);
  }
  // openid-client agrees (it checked nonce, iss, aud, signature).
  assert.equal(tokenSet.claims().sub, 'fc-amina');
  assert.equal(tokenSet.claims().acr, 'eidas1');

  // Userinfo: application/jwt, JWE(JWS) likewise.
  const raw = await rawUserinfo(tokenSet.access_token);
  assert.equal(raw.status, 200);
  assert.match(raw.contentType, /^application\/jwt/);
  const uParts = raw.body.split('.');
  assert.equal(uParts.length, 5);
  const uHeader = b64json(uParts[0]);
  assert.deepEqual([uHeader.alg, uHeader.enc, uHeader.cty], ['RSA-OAEP-256', 'A256GCM', 'JWT']);
  const inner = new TextDecoder().decode((await jose.compactDecrypt(raw.body, rsaPrivate)).plaintext);
  const { payload: ui, protectedHeader: uiJws } = await jose.jwtVerify(inner, fcJwks, { issuer: fc.issuer, audience: 'rp-enc' });
  assert.equal(uiJws.alg, 'ES256');
  assert.equal(ui.sub, 'fc-amina');

  const userinfo = await client.userinfo(tokenSet); // openid-client: decrypt + verify
  for (const claims of [ui, userinfo]) {
    assert.equal(claims.sub, 'fc-amina');
    assert.equal(claims.given_name, 'Amina');
    assert.equal(claims.family_name, 'DIALLO');
    assert.equal(claims.birthdate, '1984-07-19');
    assert.equal(claims.gender, 'female');
    assert.equal(claims.birthcountry, '99341');
    assert.equal('birthplace' in claims, false, 'born abroad: no birthplace');
    assert.equal(claims.email, 'amina.diallo@example.org');
    assert.equal('preferred_username' in claims, false, 'not requested');
  }
});

test('plain client (no encryption): JWS ID token, signed JSON userinfo; michel has a birthplace', async () => {
  const client = rpClient('plain');
  const browser = new Browser();
  const { callback, checks } = await login(browser, client, 'fc-michel', { scope: 'openid profile birth' });
  const { tokenSet, rawIdToken } = await exchange(client, callback, checks);
  assert.equal(rawIdToken.split('.').length, 3, 'a plain JWS');
  assert.equal(b64json(rawIdToken.split('.')[0]).alg, 'RS256');
  const idt = tokenSet.claims();
  assert.deepEqual([idt.sub, idt.acr, idt.nonce], ['fc-michel', 'eidas1', checks.nonce]);

  const raw = await rawUserinfo(tokenSet.access_token);
  assert.match(raw.contentType, /^application\/jwt/);
  assert.equal(raw.body.split('.').length, 3, 'userinfo signed, not encrypted');
  const ui = await client.userinfo(tokenSet);
  assert.deepEqual(
    { ...ui },
    {
      sub: 'fc-michel', given_name: 'Michel', family_name: 'DUPONT', birthdate: '1962-08-24', gender: 'male',
      birthplace: '79191', birthcountry: '99100', aud: 'rp-plain', iss: fc.issuer, iat: ui.iat, ...(ui.exp ? { exp: ui.exp } : {}),
    },
  );
});

test('ECDH-ES client: the ID token is encrypted with ECDH-ES / A256GCM', async () => {
  const client = rpClient('ecdh');
  const browser = new Browser();
  const { callback, checks } = await login(browser, client, 'fc-jeanne', {
    scope: 'openid given_name family_name preferred_username',
    extra: { claims: JSON.stringify({ id_token: { amr: { essential: true } } }), acr_values: undefined },
  });
  const { tokenSet, rawIdToken } = await exchange(client, callback, checks);
  const header = b64json(rawIdToken.split('.')[0]);
  assert.deepEqual([header.alg, header.enc, header.cty, header.kid], ['ECDH-ES', 'A256GCM', 'JWT', rpKeys.ec.public.kid]);
  assert.equal(header.epk.crv, 'P-256');
  const idt = tokenSet.claims();
  assert.equal(idt.sub, 'fc-jeanne');
  assert.deepEqual(idt.amr, ['pwd'], 'amr when requested with the claims parameter');
  assert.equal(idt.acr, 'eidas1', 'acr even without acr_values');
  assert.equal(typeof idt.auth_time, 'number');
  const ui = await client.userinfo(tokenSet);
  assert.deepEqual([ui.given_name, ui.family_name, ui.preferred_username, ui.birthdate], ['Jeanne', 'MARTIN', 'DURAND', undefined]);
});

test('"Annuler" returns error=access_denied with iss and state', async () => {
  const client = rpClient('enc');
  const browser = new Browser();
  const { url, checks } = authorize(client);
  const { final: page } = await browser.navigate(url);
  assert.equal(page.status, 200);
  const cancel = forms(page.body).find((f) => f.buttons.some((b) => b.text === 'Annuler'));
  assert.match(cancel.action, /^\/interaction\/[^/]+\/abort$/);
  const { stoppedAt } = await browser.navigate(new URL(cancel.action, page.url).href, {
    method: 'POST', form: {}, stopAt: client.redirect_uris[0],
  });
  assert.ok(stoppedAt);
  assert.equal(stoppedAt.searchParams.get('error'), 'access_denied');
  assert.ok(stoppedAt.searchParams.get('error_description'));
  assert.equal(stoppedAt.searchParams.get('iss'), fc.issuer);
  assert.equal(stoppedAt.searchParams.get('state'), checks.state);
  assert.equal(stoppedAt.searchParams.get('code'), null);
});

test('state, nonce and PKCE are required (invalid_request at the redirect URI)', async () => {
  const client = rpClient('enc');
  for (const omit of [['nonce'], ['code_challenge', 'code_challenge_method']]) {
    const { url, checks } = authorize(client, { omit });
    const { stoppedAt } = await new Browser().navigate(url, { stopAt: client.redirect_uris[0] });
    assert.ok(stoppedAt, `error redirect without ${omit}`);
    assert.equal(stoppedAt.searchParams.get('error'), 'invalid_request', omit.join());
    assert.equal(stoppedAt.searchParams.get('state'), checks.state);
    assert.equal(stoppedAt.searchParams.get('iss'), fc.issuer);
  }
  const { url } = authorize(client, { omit: ['state'] });
  const { stoppedAt } = await new Browser().navigate(url, { stopAt: client.redirect_uris[0] });
  assert.equal(stoppedAt.searchParams.get('error'), 'invalid_request');
  assert.match(stoppedAt.searchParams.get('error_description'), /state/);
});

test('client_secret_basic is refused for a client_secret_post client', async () => {
  const client = rpClient('enc');
  const browser = new Browser();
  const { callback, checks } = await login(browser, client, 'fc-michel');
  const basic = new issuer.Client({ ...client.metadata, token_endpoint_auth_method: 'client_secret_basic' }, { keys: [rpKeys.rsa.private] });
  await assert.rejects(
    basic.callback(client.redirect_uris[0], basic.callbackParams(callback.href), { ...checks, response_type: 'code' }),
    (err) => err.error === 'invalid_client',
  );
});

test('prompt=login shows the page again, another usager can log in, logout returns to the RP', async () => {
  const client = rpClient('enc');
  const browser = new Browser();
  const first = await login(browser, client, 'fc-michel');
  const { tokenSet } = await exchange(client, first.callback, first.checks);

  // Same browser, FranceConnect session still alive: prompt=login → the page again; switch usager.
  const second = await login(browser, client, 'fc-jeanne');
  const { tokenSet: ts2 } = await exchange(client, second.callback, second.checks);
  assert.equal(ts2.claims().sub, 'fc-jeanne');

  // RP-initiated logout, with the decrypted (inner JWS) ID token as hint: straight back, no page.
  const state = randomBytes(8).toString('hex');
  const endUrl = client.endSessionUrl({
    id_token_hint: ts2.id_token,
    post_logout_redirect_uri: CLIENTS.enc.post_logout_redirect_uris[0],
    state,
  });
  const { stoppedAt } = await browser.navigate(endUrl, { stopAt: CLIENTS.enc.post_logout_redirect_uris[0] });
  assert.ok(stoppedAt, 'redirected to the post-logout URI');
  assert.equal(stoppedAt.searchParams.get('state'), state);
  assert.ok(!browser.cookieNames(fcOrigin).includes('_fc_session'), 'session cookie cleared');

  // The grant is gone: the access token no longer works.
  const raw = await rawUserinfo(ts2.access_token);
  assert.equal(raw.status, 401);
  assert.ok(tokenSet.access_token);

  // The raw JWE as id_token_hint is not accepted (the provider cannot decrypt it).
  const jweHint = (await (async () => {
    const again = await login(browser, client, 'fc-amina');
    return (await exchange(client, again.callback, again.checks)).rawIdToken;
  })());
  const bad = await browser.navigate(client.endSessionUrl({
    id_token_hint: jweHint, post_logout_redirect_uri: CLIENTS.enc.post_logout_redirect_uris[0],
  }), { stopAt: CLIENTS.enc.post_logout_redirect_uris[0] });
  assert.equal(bad.stoppedAt, null);
  assert.equal(bad.final.status, 400);

  // Logout with no FranceConnect session (already logged out): still straight back, no JS form.
  await browser.navigate(client.endSessionUrl({
    client_id: 'rp-enc', post_logout_redirect_uri: CLIENTS.enc.post_logout_redirect_uris[0], state: 'x1',
  }), { stopAt: CLIENTS.enc.post_logout_redirect_uris[0] });
  const again = await new Browser().navigate(client.endSessionUrl({
    client_id: 'rp-enc', post_logout_redirect_uri: CLIENTS.enc.post_logout_redirect_uris[0], state: 'x2',
  }), { stopAt: CLIENTS.enc.post_logout_redirect_uris[0] });
  assert.ok(again.stoppedAt, `no-session logout redirects, got ${again.final.status}`);
  assert.equal(again.stoppedAt.searchParams.get('state'), 'x2');
});

test('several use=enc keys of the same alg: the FIRST one in the RP JWKS is used', async () => {
  // So an RP rotating its encryption key must publish the newest first (and keep the older
  // private keys until the provider's cache of its JWKS has expired).
  const client = rpClient('two');
  const { callback, checks } = await login(new Browser(), client, 'fc-michel');
  const { rawIdToken, tokenSet } = await exchange(client, callback, checks);
  assert.equal(b64json(rawIdToken.split('.')[0]).kid, rpKeys.rsa2.public.kid);
  assert.equal(tokenSet.claims().sub, 'fc-michel');
});

test('RP JWKS unreachable at the token request: 400 invalid_client_metadata', async () => {
  // The provider fetches the RP's jwks_uri while it answers the token (and userinfo) request.
  const client = rpClient('broken');
  const { callback, checks } = await login(new Browser(), client, 'fc-michel');
  await assert.rejects(
    client.callback(client.redirect_uris[0], client.callbackParams(callback.href), { ...checks, response_type: 'code' }),
    (err) => err.error === 'invalid_client_metadata' && /JSON Web Key Set/.test(err.error_description),
  );
});

test('the committed signing keys are the ones published', async () => {
  const res = await fetch(issuer.jwks_uri);
  const { keys } = await res.json();
  assert.deepEqual(keys.map((k) => [k.kty, k.alg, k.use]).sort(), [['EC', 'ES256', 'sig'], ['RSA', 'RS256', 'sig']]);
  for (const k of keys) assert.equal(k.d, undefined, 'no private part');
});
