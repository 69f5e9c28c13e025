// Logout: a request that does not name the aidant's session (no valid id_token_hint) is
// confirmed by the aidant, so no other site can log them out; a confirmed logout reaches the
// clients that registered a back-channel logout URI with a logout token (OIDC Back-Channel
// Logout 1.0), retried when the client fails.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

import { Browser, formFields, jose, makeSp, parseForms, rawRequest, runDemarche, textOf, trace } from './harness.mjs';
import { SP1, startSeededWorld } from './world.mjs';

describe('logout', () => {
  let world;
  let sp;
  let receiver;
  const received = [];
  let failFirst = 0;

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        received.push({ at: Date.now(), body: new URLSearchParams(body), type: req.headers['content-type'] });
        if (failFirst > 0) { failFirst -= 1; res.writeHead(500); res.end(); return; }
        res.writeHead(200); res.end();
      });
    });
    await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
    const SP = { ...SP1, backchannel_logout_uri: `http://127.0.0.1:${receiver.address().port}/backchannel` };
    world = await startSeededWorld({ clients: [SP] });
    sp = await makeSp(world.proxy, SP);
  });

  after(async () => {
    await world?.stop();
    await new Promise((r) => receiver?.close(r));
  });

  const endSession = (browser, params) => {
    const url = new URL(`${world.proxy.issuer}/end_session`);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return browser.navigate(url.toString());
  };
  const loggedIn = async () => {
    const browser = new Browser();
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, browser });
    assert.ok(r.tokenSet?.id_token, trace(r));
    return { browser, r };
  };
  // prompt=none answers without a page only while the aidant's session lives here.
  const stillLoggedIn = async (browser) => {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, browser, authParams: { prompt: 'none' }, exchange: false });
    return Boolean(r.code);
  };
  /** The development IdP asks whether to end its own session too: yes. */
  const throughUpstream = async (browser, nav, stopAt) => {
    const here = new URL(nav.final.url);
    if (here.origin !== new URL(world.upstream.issuer).origin) return nav;
    const form = parseForms(nav.final.body, here).find((f) => f.method === 'post');
    if (!form) return nav;
    const fields = formFields(form);
    fields.set('logout', 'yes');
    return browser.navigate(form.action, { method: 'POST', form: fields, stopAt });
  };

  it('asks the aidant to confirm a logout that does not name the session, and keeps the session until then', async () => {
    const { browser } = await loggedIn();
    const nav = await endSession(browser, { client_id: SP1.client_id, post_logout_redirect_uri: SP1.post_logout_redirect_uris[0] });
    assert.equal(nav.final.status, 200);
    assert.match(textOf(nav.final.body), /Se déconnecter \?/);
    assert.ok(await stillLoggedIn(browser), 'a site merely linking to end_session does not log the aidant out');
    // A forged confirmation (another csrf) changes nothing either.
    const form = parseForms(nav.final.body, nav.final.url).find((f) => f.action.endsWith('/end_session'));
    const forged = formFields(form);
    forged.set('logout_confirm', 'forged');
    const again = await browser.navigate(form.action, { method: 'POST', form: forged });
    assert.match(textOf(again.final.body), /Se déconnecter \?/);
    assert.ok(await stillLoggedIn(browser));
    // The aidant confirms: logged out, and back to the registered URI.
    const stopAt = (u) => u.href.startsWith('http://127.0.0.1:9/');
    const confirmed = await throughUpstream(browser, await browser.navigate(form.action, { method: 'POST', form: formFields(form), stopAt }), stopAt);
    assert.ok(confirmed.stoppedAt?.href.startsWith(SP1.post_logout_redirect_uris[0]), `sent back to the client: ${confirmed.stoppedAt}`);
    assert.ok(!(await stillLoggedIn(browser)), 'logged out');
  });

  it('never redirects on the word of a hint that does not verify, even once the aidant confirms', async () => {
    const { browser, r } = await loggedIn();
    const [h, p] = r.tokenSet.id_token.split('.');
    const tampered = `${h}.${p}.${'A'.repeat(86)}`;
    const nav = await endSession(browser, { id_token_hint: tampered, client_id: SP1.client_id, post_logout_redirect_uri: SP1.post_logout_redirect_uris[0], state: 'x' });
    const form = parseForms(nav.final.body, nav.final.url).find((f) => f.action.endsWith('/end_session'));
    assert.ok(form, 'a confirmation page');
    assert.ok(!formFields(form).has('post_logout_redirect_uri'), 'the redirect is not carried over');
    const stopAt = (u) => u.href.startsWith('http://127.0.0.1:9/');
    const done = await throughUpstream(browser, await browser.navigate(form.action, { method: 'POST', form: formFields(form), stopAt }), stopAt);
    assert.ok(!done.stoppedAt, 'not sent to the client');
    assert.ok(!(await stillLoggedIn(browser)), 'but logged out');
  });

  it('does not touch the session cookie for a request that carries none (a cross-site POST)', async () => {
    const res = await rawRequest(`${world.proxy.issuer}/end_session`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('set-cookie'), null, 'no Set-Cookie clearing the aidant session');
  });

  it('tells the clients when a disabled aidant\'s session ends at their next page', async () => {
    const { browser, r } = await loggedIn();
    const start = received.length;
    await world.proxy.cli(['aidants', 'disable', 'abdel']);
    try {
      const page = await browser.navigate(`${world.proxy.issuer}/espace-aidant`);
      assert.equal(page.final.status, 403);
      for (let i = 0; i < 30 && received.length === start; i++) await new Promise((res) => setTimeout(res, 100));
      const token = received[start]?.body.get('logout_token');
      assert.ok(token, 'a logout token was delivered');
      assert.equal(jose.decodeJwt(token).sid, jose.decodeJwt(r.tokenSet.id_token).sid);
    } finally {
      await world.proxy.cli(['aidants', 'enable', 'abdel']);
    }
  });

  it('sends a logout token to the back-channel URI, retried after a failure', async () => {
    const { browser, r } = await loggedIn();
    const { sid } = jose.decodeJwt(r.tokenSet.id_token);
    assert.ok(sid, 'the ID token names the session (sid)');
    failFirst = 1;
    const start = received.length;
    await endSession(browser, { id_token_hint: r.tokenSet.id_token });
    for (let i = 0; i < 50 && received.length < start + 2; i++) await new Promise((res) => setTimeout(res, 100));
    const mine = received.slice(start);
    assert.equal(mine.length, 2, 'refused once, delivered on the retry');
    const token = mine[1].body.get('logout_token');
    assert.equal(mine[0].body.get('logout_token'), token, 'the same token retried');
    assert.match(mine[1].type, /application\/x-www-form-urlencoded/);
    const jwks = jose.createRemoteJWKSet(new URL(`${world.proxy.issuer}/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, { issuer: world.proxy.issuer, audience: SP1.client_id, typ: 'logout+jwt' });
    assert.equal(protectedHeader.typ, 'logout+jwt');
    assert.equal(payload.sid, sid);
    assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
    assert.ok(payload.jti && payload.iat && !('nonce' in payload));
    assert.ok(!(await stillLoggedIn(browser)), 'logged out at once: a hint naming the session needs no confirmation');
  });

  // Last: it stops the node.
  it('still delivers a logout token it owes when stopped (SIGTERM) between two attempts', async () => {
    const { browser, r } = await loggedIn();
    failFirst = 1;
    const start = received.length;
    await endSession(browser, { id_token_hint: r.tokenSet.id_token });
    for (let i = 0; i < 500 && received.length < start + 1; i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal(received.length, start + 1, 'the first attempt, refused; the retry comes a second later');
    const { child } = world.proxy;
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
    child.kill('SIGTERM');
    const exit = await exited;
    const mine = received.slice(start);
    assert.equal(mine.length, 2, 'the retry was sent before the node exited');
    assert.ok(mine[1].at <= exit.at);
    assert.equal(mine[1].body.get('logout_token'), mine[0].body.get('logout_token'), 'the same token retried');
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'a clean exit');
  });
});
