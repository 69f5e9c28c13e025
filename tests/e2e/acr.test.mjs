// eIDAS levels: the acr returned is what was really reached — the lower of the aidant's login
// level (as the upstream vouched for it) and the level the usager gave the mandate at — never
// below what the client asked for; otherwise `unmet_authentication_requirements` and no code.
// Abdel logs in at eidas1, Farid at eidas2 (world.mjs); Michel's mandate was given at eidas1,
// Inès's at eidas2.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeSp, runDemarche, startWorld, trace } from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS, startSeededWorld } from './world.mjs';

const STRICT = { ...SP1, client_id: 'sp-eidas2', default_acr_values: ['eidas2'] };

describe('eIDAS levels (acr)', () => {
  let world;
  let sp;
  let strict;

  before(async () => {
    world = await startSeededWorld({ clients: [SP1, STRICT] });
    sp = await makeSp(world.proxy, SP1);
    strict = await makeSp(world.proxy, STRICT);
  });

  after(async () => world?.stop());

  const pick = (id) => (options) => options.find((o) => o.mandateId === id);
  const run = ({ aidant = 'abdel', mandate = 'michel', authParams, claims, client = sp } = {}) => runDemarche({
    proxy: world.proxy, upstream: world.upstream, sp: client, aidant, authParams, claims, choose: pick(world.ids.mandates[mandate]) });
  const unmet = (r) => {
    assert.equal(r.error?.error, 'unmet_authentication_requirements', trace(r));
    assert.equal(r.code ?? null, null, 'no code');
  };

  it('advertises the eIDAS levels', () => {
    assert.deepEqual(sp.issuer.metadata.acr_values_supported, ['eidas1', 'eidas2', 'eidas3']);
  });

  it('returns the level reached: eidas1 for an eidas1 login, eidas2 when both login and consent are eidas2', async () => {
    const low = await run();
    assert.equal(low.claims?.acr, 'eidas1', trace(low));
    const high = await run({ aidant: 'farid', mandate: 'ines', authParams: { acr_values: 'eidas1' } });
    assert.equal(high.claims?.acr, 'eidas2', 'really reached, above what was asked');
    const strong = await run({ aidant: 'farid', mandate: 'ines', authParams: { acr_values: 'eidas2 eidas3' } });
    assert.equal(strong.claims?.acr, 'eidas2', trace(strong));
  });

  it('never returns a lower level than asked: the request fails instead', async () => {
    unmet(await run({ authParams: { acr_values: 'eidas2' } }));
    unmet(await run({ claims: { id_token: { acr: { essential: true, values: ['eidas2'] } } } }));
    unmet(await run({ aidant: 'farid', mandate: 'ines', authParams: { acr_values: 'eidas3' } }));
    // A client whose registered default is eidas2.
    unmet(await run({ client: strict }));
    const ok = await run({ client: strict, aidant: 'farid', mandate: 'ines' });
    assert.equal(ok.claims?.acr, 'eidas2', trace(ok));
  });

  it('refuses, on the page, a mandate given at a lower level than asked', async () => {
    // Farid's login is eidas2, but Michel gave his mandate at eidas1.
    const r = await run({ aidant: 'farid', mandate: 'michel', authParams: { acr_values: 'eidas2' } });
    assert.equal(r.code ?? null, null, trace(r));
    assert.match(r.postResponse?.body ?? r.final?.body ?? '', /identification plus forte/, trace(r));
  });

  it('fails at once when only unknown levels are asked', async () => {
    const r = await run({ authParams: { acr_values: 'urn:example:loa:high' } });
    unmet(r);
    assert.equal(r.upstreamLogin, null, 'no login for a level nobody can reach');
  });
});

describe('an aidants\' identity provider whose level is not mapped', () => {
  let world;
  let sp;

  before(async () => {
    // Abdel's identity provider vouches for a level of its own, which the configuration maps
    // to no eIDAS level (no acr_levels entry): his logins reach none.
    const accounts = UPSTREAM_ACCOUNTS.map((a) => (a.sub === 'abdel' ? { ...a, acr: 'https://idp.example/loa/own' } : a));
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: accounts });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  it('answers unmet_authentication_requirements before the choice page, even to a client that asks no level', async () => {
    // Every answer states an acr (FranceConnect's TokenResultDto requires one), eidas1 at least.
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: () => assert.fail('no choice page') });
    assert.equal(r.error?.error, 'unmet_authentication_requirements', trace(r));
    assert.equal(r.interaction, null, 'the aidant is not asked to choose anybody first');
  });

  it('is what config check warns about', async () => {
    const r = await world.proxy.cliResult(['config', 'check']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*`upstream\.aidant`: no acr_values nor acr_levels/);
  });
});
