// Giving a mandate through FranceConnect (v2 style: ID token and userinfo signed then
// encrypted to idp-proxy's key), then using it for a démarche, then ending it — and the ways
// it must fail without storing anything.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { Browser, formFields, makeSp, parseForms, runDemarche, startWorld, textOf } from './harness.mjs';
import { IMPORT, SIRET_A, SIRET_B, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

describe('a mandate given through FranceConnect', () => {
  let world;
  let sp;

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, franceconnect: true });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  const origin = (u) => new URL(u).origin;

  /** The aidant opens "Nouveau mandat" (logging in upstream if needed) and submits the form;
   *  the usager logs in at FranceConnect (or cancels). Returns the browser's last page. */
  async function startMandate({ browser = new Browser(), aidant = 'abdel', demarches = ['argent'], duree = '365', usager = 'fc-jeanne', cancel = false } = {}) {
    let nav = await browser.navigate(`${world.proxy.issuer}/mandats/nouveau`);
    if (origin(nav.final.url) === origin(world.upstream.issuer)) {
      const login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
      nav = await browser.navigate(login.action, { method: 'POST', form: { sub: aidant } });
    }
    assert.equal(nav.final.status, 200, nav.final.body.slice(0, 500));
    const form = parseForms(nav.final.body, nav.final.url).find((f) => f.action.endsWith('/mandats/nouveau'));
    assert.ok(form, 'the new-mandate form');
    const fields = formFields(form);
    for (const d of demarches) fields.append('demarches', d);
    if (duree) fields.set('duree', duree);
    nav = await browser.navigate(form.action, { method: 'POST', form: fields });
    if (origin(nav.final.url) !== origin(world.franceconnect.issuer)) return { browser, page: nav.final };
    const forms = parseForms(nav.final.body, nav.final.url);
    if (cancel) {
      const abort = forms.find((f) => f.action.includes('/abort'));
      nav = await browser.navigate(abort.action, { method: 'POST', form: formFields(abort) });
    } else {
      const login = forms.find((f) => f.buttons.some((b) => b.name === 'sub'));
      nav = await browser.navigate(login.action, { method: 'POST', form: { sub: usager } });
    }
    return { browser, page: nav.final };
  }

  async function confirm({ browser, page }) {
    const form = parseForms(page.body, page.url).find((f) => f.action.includes('/mandats/recapitulatif/'));
    assert.ok(form, `a recap form:\n${page.body.slice(0, 800)}`);
    const fields = formFields(form);
    fields.set('consent', 'yes');
    const nav = await browser.navigate(form.action, { method: 'POST', form: fields });
    return nav.final;
  }

  it('creates the usager and the mandate, shows the attestation, and the mandate serves a démarche until ended', async () => {
    const started = await startMandate({ usager: 'fc-jeanne', demarches: ['argent', 'social'] });
    const recap = textOf(started.page.body);
    assert.match(recap, /Vous, Jeanne MARTIN\s*, née le 03\/02\/1951, donnez mandat à Centre social des Acacias/);
    assert.match(recap, /Argent/);
    assert.match(recap, /mettre fin à tout moment/);

    const attestation = await confirm(started);
    assert.equal(attestation.status, 200);
    assert.match(attestation.url, /\/mandats\/[0-9a-f-]{36}\/attestation$/);
    const text = textOf(attestation.body);
    assert.match(text, /Attestation de mandat/);
    assert.match(text, /Jeanne MARTIN/);
    assert.match(text, new RegExp(SIRET_A));
    assert.match(text, /Code de vérification/);
    const mandateId = attestation.url.match(/mandats\/([0-9a-f-]{36})\//)[1];

    // The new mandate serves a démarche, and the ID token names Jeanne.
    const used = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: (o) => o.find((x) => x.mandateId === mandateId && x.demarche === 'social') });
    assert.equal(used.claims?.given_name, 'Jeanne', JSON.stringify(used.tokenError || used.final?.status));
    assert.equal(used.claims.mandate.id, mandateId);

    // Ended, it serves no more.
    await world.proxy.cli(['mandates', 'revoke', mandateId, '--reason', 'fin']);
    const refused = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: () => `${mandateId}:social` });
    assert.equal(refused.code, null);
  });

  it('attaches a second mandate of the same person, from another organisation, to the same usager', async () => {
    const a = await confirm(await startMandate({ aidant: 'abdel', usager: 'fc-amina', demarches: ['social'] }));
    const b = await confirm(await startMandate({ aidant: 'sophie', usager: 'fc-amina', demarches: ['logement'] }));
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.match(textOf(b.body), new RegExp(SIRET_B));
    const csv = await world.proxy.cli(['journal', 'export']);
    const created = csv.split('\n').filter((l) => l.split(',')[2] === 'mandate_created' && l.includes('Amina DIALLO'));
    assert.equal(created.length, 2, csv);
    // One usager: the same name appears for both organisations, and born abroad means no birthplace was required.
    assert.ok(created.some((l) => l.includes('Acacias')) && created.some((l) => l.includes('Tilleuls')));
  });

  it('stores nothing when the usager cancels at FranceConnect', async () => {
    // The aidant's own login is journaled; nothing about a mandate or a usager may be.
    const mandates = async () => (await world.proxy.cli(['journal', 'export']))
      .split('\n').filter((l) => !l.includes(',aidant_login,')).join('\n');
    const before = await mandates();
    const cancelled = await startMandate({ usager: 'fc-michel', cancel: true });
    assert.equal(cancelled.page.status, 403);
    assert.match(textOf(cancelled.page.body), /annulée/i);
    assert.equal(await mandates(), before, 'no journal entry');
  });

  it('refuses a replayed FranceConnect callback', async () => {
    const started = await startMandate({ usager: 'fc-michel' });
    const callback = started.browser.history.find((s) => s.url.includes('/franceconnect/callback?'));
    assert.ok(callback, 'the callback was visited');
    const replay = await started.browser.navigate(callback.url);
    assert.equal(replay.final.status, 400);
    assert.match(textOf(replay.final.body), /expiré/);
  });

  it('asks again for a form without démarche', async () => {
    const r = await startMandate({ demarches: [] });
    assert.equal(r.page.status, 400);
    assert.match(textOf(r.page.body), /Choisissez au moins une démarche/);
  });
});
