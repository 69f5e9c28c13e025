// Clients with keys (#4): ID tokens and userinfo signed with every algorithm discovery
// advertises and encrypted with every key-management algorithm it advertises, each opened and
// verified by an independent JOSE library (jose); a certified RP (openid-client) completing
// the flow with private_key_jwt and encrypted responses; and the RFC 7523 negatives of
// private_key_jwt and client_secret_jwt, on the introspection endpoint (same authentication).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createPublicKey } from 'node:crypto';

import { jose, makeSp, rawRequest, runDemarche, startWorld, trace } from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function keyPair(alg, kid, use) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const pub = { ...(await jose.exportJWK(publicKey)), kid, alg, use };
  return { alg, kid, publicKey, privateKey, pub, priv: { ...(await jose.exportJWK(privateKey)), kid, alg, use } };
}

/** A client's JWKS behind its own jwks_uri, counting fetches; `keys` can change at run time. */
async function jwksServer(keys) {
  const state = { keys, fetches: 0 };
  const server = createServer((req, res) => {
    state.fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.uri = `http://127.0.0.1:${server.address().port}/jwks`;
  state.close = () => new Promise((r) => server.close(r));
  return state;
}

const SIGNING = ['ES256', 'RS256', 'PS256'];
const ENCRYPTION = [null, 'RSA-OAEP-256', 'ECDH-ES'];

describe('signed and encrypted responses, and clients authenticating with keys', () => {
  let world;
  let enc; // the clients' encryption keys
  let sig; // private_key_jwt signing keys of the "pkjwt" client
  let other; // another client's key
  let served;
  const dir = mkdtempSync(join(tmpdir(), 'idp-proxy-client-keys-'));
  const sharedSecret = randomBytes(32).toString('base64url');
  const combos = SIGNING.flatMap((s) => ENCRYPTION.map((e) => ({ s, e, id: `sp-${s}-${e ?? 'plain'}`.toLowerCase() })));

  before(async () => {
    enc = {
      'RSA-OAEP-256': await keyPair('RSA-OAEP-256', 'enc-rsa', 'enc'),
      'ECDH-ES': await keyPair('ECDH-ES', 'enc-ec', 'enc'),
    };
    sig = { rs: await keyPair('RS256', 'sig-rs', 'sig'), ps: await keyPair('PS256', 'sig-ps', 'sig'), es: await keyPair('ES256', 'sig-es', 'sig') };
    other = await keyPair('ES256', 'other-es', 'sig');
    served = await jwksServer([sig.rs.pub, sig.es.pub, enc['RSA-OAEP-256'].pub, enc['ECDH-ES'].pub]);
    writeFileSync(join(dir, 'secret'), sharedSecret);
    const encJwks = { keys: [enc['RSA-OAEP-256'].pub, enc['ECDH-ES'].pub] };
    const clients = combos.map(({ s, e, id }) => ({
      ...SP1,
      client_id: id,
      id_token_signed_response_alg: s,
      userinfo_signed_response_alg: s,
      jwks: encJwks,
      ...(e ? {
        id_token_encrypted_response_alg: e, id_token_encrypted_response_enc: 'A256GCM',
        userinfo_encrypted_response_alg: e, userinfo_encrypted_response_enc: 'A256GCM',
      } : {}),
    }));
    clients.push(
      { ...SP1, client_id: 'pkjwt', client_secret: undefined, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: served.uri,
        id_token_encrypted_response_alg: 'RSA-OAEP-256', userinfo_signed_response_alg: 'PS256', userinfo_encrypted_response_alg: 'ECDH-ES' },
      { ...SP1, client_id: 'pkjwt-es', client_secret: undefined, token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [other.pub] } },
      { ...SP1, client_id: 'csjwt', client_secret: undefined, token_endpoint_auth_method: 'client_secret_jwt', client_secret_file: join(dir, 'secret') },
      SP1,
    );
    world = await startWorld({ clients, importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS });
  });

  after(async () => {
    await world?.stop();
    await served?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ourKeys = () => jose.createRemoteJWKSet(new URL(`${world.proxy.issuer}/jwks`));

  /** Opens (if encrypted) and verifies one of our JWTs as the client registered it. */
  async function open(token, { s, e, aud }) {
    let jws = token;
    if (e) {
      const { plaintext, protectedHeader } = await jose.compactDecrypt(token, enc[e].privateKey);
      assert.equal(protectedHeader.alg, e);
      assert.equal(protectedHeader.enc, 'A256GCM');
      assert.equal(protectedHeader.cty, 'JWT', 'a signed JWT inside');
      jws = new TextDecoder().decode(plaintext);
    } else {
      assert.equal(token.split('.').length, 3, 'a JWS, not encrypted');
    }
    const { payload, protectedHeader } = await jose.jwtVerify(jws, ourKeys(), { issuer: world.proxy.issuer, audience: aud, algorithms: [s] });
    assert.equal(protectedHeader.alg, s);
    return payload;
  }

  it('advertises exactly the algorithms it offers', async () => {
    const d = await (await fetch(`${world.proxy.issuer}/.well-known/openid-configuration`)).json();
    assert.deepEqual(d.id_token_signing_alg_values_supported, SIGNING);
    assert.deepEqual(d.userinfo_signing_alg_values_supported, SIGNING);
    assert.deepEqual(d.id_token_encryption_alg_values_supported, ['RSA-OAEP-256', 'ECDH-ES']);
    assert.deepEqual(d.id_token_encryption_enc_values_supported, ['A256GCM']);
    assert.deepEqual(d.userinfo_encryption_alg_values_supported, ['RSA-OAEP-256', 'ECDH-ES']);
    assert.deepEqual(d.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt']);
    assert.ok(!d.token_endpoint_auth_signing_alg_values_supported.includes('none'));
    const jwks = await (await fetch(`${world.proxy.issuer}/jwks`)).json();
    for (const s of SIGNING) assert.ok(jwks.keys.some((k) => k.alg === s && k.use === 'sig'), `a published ${s} key`);
  });

  for (const combo of combos) {
    it(`ID token and userinfo signed ${combo.s}, ${combo.e ? `encrypted ${combo.e} + A256GCM` : 'not encrypted'}, open with jose`, async () => {
      const sp = await makeSp(world.proxy, { ...SP1, client_id: combo.id });
      const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, exchange: false });
      assert.ok(r.code, trace(r));
      const res = await rawRequest(`${world.proxy.issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${combo.id}:${SP1.client_secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: r.code, redirect_uri: sp.redirectUri, code_verifier: r.checks.code_verifier }).toString(),
      });
      assert.equal(res.status, 200, res.body);
      const tokens = JSON.parse(res.body);
      const idToken = await open(tokens.id_token, { ...combo, aud: combo.id });
      assert.equal(idToken.nonce, r.checks.nonce);
      assert.equal(idToken.act?.sub !== undefined, true, 'act inside');
      const ui = await rawRequest(`${world.proxy.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(ui.status, 200, ui.body);
      assert.match(ui.contentType, /^application\/jwt/);
      const userinfo = await open(ui.body, { ...combo, aud: combo.id });
      assert.equal(userinfo.sub, idToken.sub);
      assert.deepEqual(userinfo.act, idToken.act);
    });
  }

  it('lets a certified RP (openid-client) log in with private_key_jwt, a key from jwks_uri, and encrypted responses', async () => {
    const { issuer } = await makeSp(world.proxy, SP1);
    const client = new issuer.Client({
      client_id: 'pkjwt', redirect_uris: SP1.redirect_uris, response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'PS256',
      id_token_signed_response_alg: 'ES256', id_token_encrypted_response_alg: 'RSA-OAEP-256', id_token_encrypted_response_enc: 'A256GCM',
      userinfo_signed_response_alg: 'PS256', userinfo_encrypted_response_alg: 'ECDH-ES', userinfo_encrypted_response_enc: 'A256GCM',
    }, { keys: [sig.ps.priv, enc['RSA-OAEP-256'].priv, enc['ECDH-ES'].priv] });
    // The PS256 key is not served yet: the first assertion names an unknown kid, which makes
    // idp-proxy fetch the client's jwks_uri again (the client rotated).
    served.keys = [...served.keys, sig.ps.pub];
    const sp = { issuer, client, config: SP1, redirectUri: SP1.redirect_uris[0] };
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp });
    assert.ok(r.claims?.sub, trace(r));
    assert.ok(r.claims.act, 'act in the decrypted ID token');
    assert.equal(r.userinfo?.sub, r.claims.sub, r.userinfoError?.message);
  });

  // --- private_key_jwt and client_secret_jwt negatives, on /introspect ----------------------

  async function assertion({ key = sig.rs, clientId = 'pkjwt', header = {}, claims = {}, alg = key.alg } = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new jose.SignJWT({ jti: randomBytes(12).toString('hex'), ...claims })
      .setProtectedHeader({ alg, kid: key.kid, ...header })
      .setIssuer(claims.iss ?? clientId).setSubject(claims.sub ?? clientId)
      .setAudience(claims.aud ?? `${world.proxy.issuer}/token`)
      .setIssuedAt(now).setExpirationTime(claims.exp ?? now + 60)
      .sign(key.privateKey);
  }

  async function introspectWith(jwt, extra = {}) {
    const res = await rawRequest(`${world.proxy.issuer}/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'x', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt, ...extra }).toString(),
    });
    return { status: res.status, body: JSON.parse(res.body || '{}') };
  }

  const refused = (r, what) => {
    assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, 'invalid_client', what);
  };

  it('accepts a good assertion once, and refuses it replayed (jti)', async () => {
    const jwt = await assertion();
    assert.deepEqual(await introspectWith(jwt), { status: 200, body: { active: false } });
    refused(await introspectWith(jwt), 'replayed jti');
    // The issuer itself is an accepted audience too.
    assert.equal((await introspectWith(await assertion({ claims: { aud: world.proxy.issuer } }))).status, 200);
  });

  it('refuses a wrong audience, an expired or too long-lived assertion, and one without jti', async () => {
    refused(await introspectWith(await assertion({ claims: { aud: 'https://elsewhere.example/token' } })), 'wrong aud');
    const now = Math.floor(Date.now() / 1000);
    refused(await introspectWith(await assertion({ claims: { exp: now - 120 } })), 'expired');
    refused(await introspectWith(await assertion({ claims: { exp: now + 3600 } })), 'exp too far');
    const noJti = await new jose.SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: sig.rs.kid })
      .setIssuer('pkjwt').setSubject('pkjwt').setAudience(`${world.proxy.issuer}/token`).setExpirationTime(now + 60).sign(sig.rs.privateKey);
    refused(await introspectWith(noJti), 'no jti');
  });

  it('refuses alg none, HS256 keyed with the public key, an unknown kid and another client\'s key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'pkjwt', sub: 'pkjwt', aud: `${world.proxy.issuer}/token`, exp: now + 60, jti: randomBytes(8).toString('hex') };
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    refused(await introspectWith(none), 'alg none');
    // The classic confusion: the client's public key (as PEM text) used as an HMAC secret.
    const pem = createPublicKey({ key: sig.rs.pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const hs = await new jose.SignJWT({ ...claims, jti: randomBytes(8).toString('hex') })
      .setProtectedHeader({ alg: 'HS256', kid: sig.rs.kid }).sign(new TextEncoder().encode(pem));
    refused(await introspectWith(hs), 'HS256 keyed with the public key');
    const before = served.fetches;
    const stranger = await keyPair('RS256', 'never-published', 'sig');
    refused(await introspectWith(await assertion({ key: stranger })), 'unknown kid');
    refused(await introspectWith(await assertion({ key: stranger })), 'unknown kid again');
    assert.ok(served.fetches - before <= 1, `an unknown kid refetches the client's keys at most once in a while (${served.fetches - before})`);
    refused(await introspectWith(await assertion({ key: other })), 'another client\'s key');
    // A request object (typ oauth-authz-req+jwt) is never a client assertion (RFC 9101 §10.8).
    refused(await introspectWith(await assertion({ header: { typ: 'oauth-authz-req+jwt' } })), 'a request object as assertion');
    // pkjwt-es registered ES256 only: its own key, with RS256 header, never verifies.
    refused(await introspectWith(await assertion({ key: sig.rs, clientId: 'pkjwt-es' })), 'an algorithm the client did not register');
  });

  it('keeps a client to the method it registered', async () => {
    // sp-1 registered client_secret_basic: an assertion is not its method.
    const key = await keyPair('RS256', 'sp1', 'sig');
    refused(await introspectWith(await assertion({ key, clientId: SP1.client_id })), 'assertion for a basic client');
    // pkjwt registered private_key_jwt: a secret is not its method.
    const post = await rawRequest(`${world.proxy.issuer}/introspect`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'x', client_id: 'pkjwt', client_secret: 'anything' }).toString(),
    });
    assert.equal(post.status, 401);
  });

  it('accepts client_secret_jwt signed with the shared secret, and nothing else', async () => {
    const now = Math.floor(Date.now() / 1000);
    const make = (secret, alg = 'HS256') => new jose.SignJWT({ jti: randomBytes(8).toString('hex') })
      .setProtectedHeader({ alg }).setIssuer('csjwt').setSubject('csjwt')
      .setAudience(`${world.proxy.issuer}/token`).setExpirationTime(now + 60)
      .sign(new TextEncoder().encode(secret));
    assert.equal((await introspectWith(await make(sharedSecret))).status, 200);
    refused(await introspectWith(await make('not-the-secret-not-the-secret-xx')), 'wrong secret');
    refused(await introspectWith(await make(sharedSecret, 'HS512')), 'HS512 not registered');
  });
});
