// prompt=none (OIDC Core §3.1.2.1) for an OP where an aidant chooses for whom they act: answered
// without a page only for the usager and démarche the aidant chose for this client in this
// session, re-checked and journaled like any use; anything else gets the standard error.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { Browser, makeSp, runDemarche, trace } from './harness.mjs';
import { SP1, SP2, startSeededWorld } from './world.mjs';

describe('prompt=none', () => {
  let world;
  let sp1;
  let sp2;

  before(async () => {
    world = await startSeededWorld();
    sp1 = await makeSp(world.proxy, SP1);
    sp2 = await makeSp(world.proxy, SP2);
  });

  after(async () => world?.stop());

  const noPage = () => assert.fail('prompt=none must not show the choice page');
  const uses = async () => (await world.proxy.cli(['journal', 'export'])).split('\n').filter((l) => l.split(',')[2] === 'mandate_used').length;

  /** A first démarche in a fresh browser, choosing Michel for `demarche` (via SP1). */
  async function first(demarche = 'argent') {
    const browser = new Browser();
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sp1, browser,
      choose: (o) => o.find((x) => x.label.includes('Michel') && x.demarche === demarche) });
    assert.ok(r.claims?.sub, trace(r));
    return { browser, r };
  }

  const silent = (browser, { sp = sp1, authParams = {}, claims } = {}) => runDemarche({
    proxy: world.proxy, upstream: world.upstream, sp, browser, choose: noPage, claims, authParams: { prompt: 'none', ...authParams } });

  it('reissues, without a page, for the same usager and démarche, and journals the use', async () => {
    const { browser, r } = await first();
    const before = await uses();
    const again = await silent(browser, { authParams: { id_token_hint: r.tokenSet.id_token } });
    assert.equal(again.upstreamLogin, null);
    assert.equal(again.claims?.sub, r.claims.sub, trace(again));
    assert.deepEqual(again.claims.act, r.claims.act);
    assert.deepEqual(again.claims.rep_scope, r.claims.rep_scope);
    assert.equal(await uses(), before + 1, 'the silent use is journaled too');
  });

  it('journals a silent answer only when its client redeems the code', async () => {
    // Any site can send the aidant's browser to /authorize?prompt=none…: the code goes to the
    // client, which never redeems a code it did not ask for; nothing may be journaled.
    const { browser } = await first();
    const before = await uses();
    const forged = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sp1, browser, choose: noPage,
      authParams: { prompt: 'none' }, exchange: false });
    assert.ok(forged.code, trace(forged));
    assert.equal(await uses(), before, 'nothing journaled for an unredeemed silent code');
  });

  it('journals a silent code once, even when two token requests race for it', async () => {
    const { browser } = await first();
    const before = await uses();
    const silentCode = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sp1, browser, choose: noPage,
      authParams: { prompt: 'none' }, exchange: false });
    assert.ok(silentCode.code, trace(silentCode));
    const redeem = () => fetch(`${world.proxy.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${SP1.client_id}:${SP1.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code: silentCode.code, redirect_uri: sp1.redirectUri,
        code_verifier: silentCode.checks.code_verifier,
      }),
    }).then(async (res) => ({ status: res.status, body: await res.json() }));
    const answers = await Promise.all([redeem(), redeem(), redeem()]);
    assert.ok(answers.filter((a) => a.status === 200).length <= 1, JSON.stringify(answers));
    for (const a of answers.filter((x) => x.status !== 200)) assert.equal(a.body.error, 'invalid_grant', JSON.stringify(a));
    assert.equal(await uses(), before + 1, 'one journal entry for one code');
  });

  it('answers login_required without a session, interaction_required without an earlier choice for this client', async () => {
    const none = await silent(new Browser());
    assert.equal(none.error?.error, 'login_required', trace(none));
    const { browser } = await first();
    const other = await silent(browser, { sp: sp2 });
    assert.equal(other.error?.error, 'interaction_required', trace(other));
  });

  it('refuses a hint for another client, or naming another usager', async () => {
    const { browser, r } = await first();
    const forSp2 = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sp2, browser: new Browser() });
    const foreign = await silent(browser, { authParams: { id_token_hint: forSp2.tokenSet.id_token } });
    assert.equal(foreign.error?.error, 'invalid_request', trace(foreign));
    // A hint naming a usager other than the one chosen in this session: only the page can say.
    const { r: rose } = await (async () => {
      const b = new Browser();
      const x = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sp1, browser: b,
        choose: (o) => o.find((y) => !y.label.includes('Michel')) });
      assert.ok(x.claims?.sub, trace(x));
      return { r: x };
    })();
    assert.notEqual(rose.claims.sub, r.claims.sub);
    const switched = await silent(browser, { authParams: { id_token_hint: rose.tokenSet.id_token } });
    assert.equal(switched.error?.error, 'interaction_required', trace(switched));
  });

  it('refuses a démarche this request does not allow, and a mandate ended since', async () => {
    const { browser, r } = await first('argent');
    // The client now asks for the social perimeter only: the earlier choice (argent) is outside.
    const narrowed = await silent(browser, { claims: { id_token: { rep_scope: { essential: true, values: ['social'] } } } });
    assert.equal(narrowed.error?.error, 'interaction_required', trace(narrowed));
    await world.proxy.cli(['mandates', 'revoke', r.claims.mandate.id, '--reason', 'test']);
    const ended = await silent(browser);
    assert.equal(ended.error?.error, 'interaction_required', trace(ended));
  });
});
