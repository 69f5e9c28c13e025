// Giving a mandate through FranceConnect (v2 style: ID token and userinfo signed then
// encrypted to idp-proxy's key), then using it for a démarche, then ending it — and the ways
// it must fail without storing anything.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

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
   *  the usager logs in at FranceConnect (or cancels). Returns the browser's last page, or,
   *  with `holdCallback`, FranceConnect's redirect to idp-proxy's callback, not followed. */
  async function startMandate({ browser = new Browser(), aidant = 'abdel', demarches = ['argent'], duree = '365', usager = 'fc-jeanne', cancel = false, holdCallback = false } = {}) {
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
      const stopAt = (u) => holdCallback && u.pathname === '/franceconnect/callback';
      nav = await browser.navigate(login.action, { method: 'POST', form: { sub: usager }, stopAt });
    }
    return { browser, page: nav.final, callback: nav.stoppedAt };
  }

  // The journal, without the aidants' own logins: nothing about a mandate or a usager may appear.
  const mandates = async () => (await world.proxy.cli(['journal', 'export']))
    .split('\n').filter((l) => !l.includes(',aidant_login,')).join('\n');

  /** The browser delivers `callback` (a URL) to idp-proxy: the page it ends on. */
  const deliver = async (browser, callback) => (await browser.navigate(callback.toString())).final;

  /** A page refusing FranceConnect's answer: clear, in French, nothing internal shown.
   *  `status` undefined: any 4xx or 5xx. */
  function assertRefused(page, status, reason) {
    const text = textOf(page.body);
    if (status) assert.equal(page.status, status, text.slice(0, 300));
    else assert.ok(page.status >= 400 && page.status < 600, `${page.status}: ${text.slice(0, 300)}`);
    assert.match(text, reason);
    assert.doesNotMatch(text, /panicked|backtrace|src\/|Error\(|unwrap/i, 'no internals shown');
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

  it('stores the usager\'s identity sealed: no name or birthdate in the database file', async () => {
    const started = await startMandate({ usager: 'fc-jeanne', demarches: ['famille'] });
    assert.equal((await confirm(started)).status, 200);
    if (!existsSync(join(world.proxy.dir, 'idp-proxy.sqlite'))) return; // PostgreSQL run: see mandate-store's suite
    // The database file and its write-ahead log, as bytes: what a stolen disk would show.
    const bytes = ['idp-proxy.sqlite', 'idp-proxy.sqlite-wal']
      .filter((f) => existsSync(join(world.proxy.dir, f)))
      .map((f) => readFileSync(join(world.proxy.dir, f)).toString('latin1'))
      .join('');
    assert.ok(bytes.includes('mandate_created'), 'the dump is real');
    // (MARTIN alone would match the aidant Sophie MARTIN: aidants' professional names are kept.)
    for (const clear of ['Jeanne', '1951-02-03', 'jeanne.martin@example.org', 'fc-jeanne', 'DURAND']) {
      assert.ok(!bytes.includes(clear), `${clear} is stored in clear`);
    }
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

  // The refusals below end on one of these pages, and leave the journal as it was.
  const NOT_VERIFIED = /Demande invalide.*La réponse de FranceConnect n'a pas pu être vérifiée\. Rien n'a été enregistré/;
  const EXPIRED = /Demande expirée.*a expiré ou a été ouverte dans un autre navigateur/;

  it('shows a clear page and stores nothing when FranceConnect answers with an error', async () => {
    const before = await mandates();
    // FranceConnect's own redirect (its state and iss), carrying an error instead of the code.
    const { browser, callback } = await startMandate({ holdCallback: true });
    assert.ok(callback, 'FranceConnect redirected to the callback');
    callback.searchParams.delete('code');
    callback.searchParams.set('error', 'server_error');
    callback.searchParams.set('error_description', 'Panne <b>interne</b>');
    const page = await deliver(browser, callback);
    assertRefused(page, undefined, /FranceConnect a signalé une erreur.*Rien n'a été enregistré/);
    // Not the person's doing: not shown as a cancellation, and FranceConnect's words are not echoed.
    assert.doesNotMatch(textOf(page.body), /annulée/i);
    assert.doesNotMatch(page.body, /Panne|server_error/);
    assert.equal(await mandates(), before, 'no journal entry');
  });

  it('refuses a state this browser never started, or one started in another browser, and stores nothing', async () => {
    const before = await mandates();
    // The aidant's browser has a login of its own in progress; a made-up state (real code and iss)…
    const { browser, callback } = await startMandate({ holdCallback: true });
    const forged = new URL(callback);
    forged.searchParams.set('state', randomBytes(16).toString('base64url'));
    assertRefused(await deliver(browser, forged), 400, EXPIRED);
    // …or another aidant's genuine callback (login CSRF: Michel's identity in this browser's mandate).
    const other = await startMandate({ aidant: 'sophie', usager: 'fc-michel', holdCallback: true });
    assertRefused(await deliver(browser, other.callback), 400, EXPIRED);
    assert.equal(await mandates(), before, 'no journal entry');
    // The foreign delivery did not burn the login under way in its own browser.
    const own = await deliver(other.browser, other.callback);
    assert.match(textOf(own.body), /Relisez et confirmez votre mandat/);
  });

  it('refuses an answer naming another issuer, or none (mix-up), and stores nothing', async () => {
    const before = await mandates();
    // A genuine code and state, but the answer claims to come from another OP (the aidants' IdP).
    const mixed = await startMandate({ holdCallback: true });
    assert.equal(mixed.callback.searchParams.get('iss'), world.franceconnect.issuer);
    mixed.callback.searchParams.set('iss', world.upstream.issuer);
    assertRefused(await deliver(mixed.browser, mixed.callback), 400, NOT_VERIFIED);
    // FranceConnect announces authorization_response_iss_parameter_supported: no iss, no trust.
    const bare = await startMandate({ holdCallback: true });
    bare.callback.searchParams.delete('iss');
    assertRefused(await deliver(bare.browser, bare.callback), 400, NOT_VERIFIED);
    assert.equal(await mandates(), before, 'no journal entry');
  });

  /** FranceConnect misbehaving as `how` (dev/franceconnect.mjs `misbehave`) for one mandate:
   *  refused with a clear page, for the reason the log must show, and nothing stored. */
  async function refusedWhenMisbehaving(how, logged) {
    const before = await mandates();
    const logFrom = world.proxy.logs().stderr.length;
    Object.assign(world.franceconnect.misbehave, how);
    let started;
    try {
      started = await startMandate();
    } finally {
      for (const key of Object.keys(how)) delete world.franceconnect.misbehave[key];
    }
    assertRefused(started.page, 400, NOT_VERIFIED);
    assert.match(world.proxy.logs().stderr.slice(logFrom), logged, 'refused for this reason, not another');
    assert.equal(await mandates(), before, 'no journal entry');
  }

  it('refuses an ID token bearing another nonce, and stores nothing', async () => {
    // PKCE ties a code to its verifier, so a swapped code cannot carry a wrong nonce: make
    // FranceConnect itself misbehave, for this test only.
    await refusedWhenMisbehaving({ idTokenNonce: 'not-the-nonce-idp-proxy-sent' }, /rejected.*nonce/i);
  });

  it('refuses a userinfo that is not the signed JWT FranceConnect v2 gives', async () => {
    // FranceConnect v2's userinfo is a signed JWT, verified by its relying parties
    // (docs.partenaires.franceconnect.gouv.fr fs-migration-diff-v1-v2; openid-client's userinfo()
    // requires application/jwt once userinfo_signed_response_alg is registered).
    await refusedWhenMisbehaving({ userinfoJson: true }, /userinfo is not the signed JWT/);
  });

  it('sends FranceConnect a nonce of 32 random bytes, state, PKCE and one acr_values', async () => {
    // FranceConnect's core draws 32 random bytes for its own nonce and asks at least 22
    // characters of its relying parties (authorize-params.dto.ts).
    const browser = new Browser();
    await startMandate({ browser, cancel: true });
    const authorize = browser.history.map((h) => new URL(h.url))
      .find((u) => u.origin === origin(world.franceconnect.issuer) && u.pathname.endsWith('/authorize'));
    const q = authorize.searchParams;
    assert.equal(Buffer.from(q.get('nonce'), 'base64url').length, 32, q.get('nonce'));
    assert.ok(q.get('state'));
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.equal(q.get('acr_values'), 'eidas1');
    assert.equal(q.get('prompt'), 'login');
    assert.ok(q.get('scope').split(' ').includes('idp_birthdate'), q.get('scope'));
  });

  it('still gives a mandate after all these refusals', async () => {
    // Nothing above left the world broken (nor FranceConnect misbehaving).
    const attestation = await confirm(await startMandate({ usager: 'fc-jean-pierre' }));
    assert.equal(attestation.status, 200);
    assert.match(textOf(attestation.body), /Attestation de mandat.*LEGRAND/);
  });

  it('asks again for a form without démarche', async () => {
    const r = await startMandate({ demarches: [] });
    assert.equal(r.page.status, 400);
    assert.match(textOf(r.page.body), /Choisissez au moins une démarche/);
  });

  // Issue #12 (the field's demands, ../shared/field/: informed consent, a way out). The form
  // pattern is the State's design system's (DSFR "erreurs de formulaire", GOV.UK's error
  // summary): a summary at the top linking to each field, what was typed kept.
  it('asks again for a form without duration, with an error summary linking to the field and the ticks kept', async () => {
    const r = await startMandate({ demarches: ['argent', 'logement'], duree: '' });
    assert.equal(r.page.status, 400);
    const html = r.page.body;
    assert.match(html, /<div class="alert" role="alert" id="erreurs">[\s\S]*<a href="#duree-1">Choisissez une durée\.<\/a>/);
    assert.match(html, /id="duree-1"/, 'the link has its target');
    assert.match(html, /value="argent" checked/);
    assert.match(html, /value="logement" checked/);
    assert.doesNotMatch(html, /value="social" checked/);
  });

  it('writes the recap for the person: each démarche with what it covers, what aidants will see, why, who knows, how long, their rights', async () => {
    const started = await startMandate({ usager: 'fc-amina', demarches: ['logement'] });
    const text = textOf(started.page.body);
    assert.match(text, /Logement \(/, 'the démarche with its examples');
    assert.match(text, /Ce que les aidants pourront faire : se connecter en votre nom/);
    assert.match(text, /Pourquoi : uniquement pour vous aider/);
    assert.match(text, /Qui le saura : chaque utilisation est notée/);
    assert.match(text, /ces notes sont gardées 2 ans/, 'retention.days (730) as a person says it');
    assert.match(text, /CNIL/);
    assert.match(text, /Je ne donne pas mandat/);
  });

  it('shows the mandate it replaces and what changes; an unticked box is said, not ignored', async () => {
    // Jean-Pierre LEGRAND gave « Argent » above; now « Social » and « Logement » for a month.
    const started = await startMandate({ usager: 'fc-jean-pierre', demarches: ['social', 'logement'], duree: '31' });
    const text = textOf(started.page.body);
    assert.match(text, /Ce mandat remplace celui en cours/);
    assert.match(text, /démarches ajoutées : Social - Santé, Logement/);
    assert.match(text, /démarches qui ne seront plus couvertes : Argent/);
    assert.doesNotMatch(text, /démarches conservées/);

    const form = parseForms(started.page.body, started.page.url).find((f) => f.action.endsWith(new URL(started.page.url).pathname));
    const unticked = await started.browser.navigate(form.action, { method: 'POST', form: formFields(form) });
    assert.equal(unticked.final.status, 400);
    assert.match(unticked.final.body, /<a href="#consent">Cochez la case pour donner mandat/);
    assert.match(textOf(unticked.final.body), /Ce mandat remplace celui en cours/, 'the recap again');
  });

  it('names the aidant, not the structure, where mandates are bound to their creator', async () => {
    await world.proxy.cli(['organisations', 'mandate-use', SIRET_A, 'creator']);
    try {
      const started = await startMandate({ usager: 'fc-amina', demarches: ['famille'] });
      const text = textOf(started.page.body);
      assert.match(text, /donnez mandat à Abdel KARIM, aidant de Centre social des Acacias pour effectuer/);
      assert.match(text, /je donne mandat à Abdel KARIM, aidant de Centre social des Acacias\./);
    } finally {
      await world.proxy.cli(['organisations', 'mandate-use', SIRET_A, 'any-aidant']);
    }
  });

  it('« Je ne donne pas mandat »: nothing stored, the running mandate unchanged, the refusal journaled, the aidant told', async () => {
    const before = await world.proxy.cli(['journal', 'export']);
    const started = await startMandate({ usager: 'fc-jean-pierre', demarches: ['social'] });
    const refuse = parseForms(started.page.body, started.page.url).find((f) => f.action.endsWith('/refus'));
    assert.ok(refuse, 'a refusal form');
    const refused = await started.browser.navigate(refuse.action, { method: 'POST', form: formFields(refuse) });
    assert.equal(refused.final.status, 200);
    const text = textOf(refused.final.body);
    assert.match(text, /Aucun mandat n'a été donné/);
    assert.match(text, /Le mandat déjà en cours ne change pas/);
    const csv = await world.proxy.cli(['journal', 'export']);
    const added = csv.split('\n').filter((l) => !before.includes(l));
    assert.ok(added.some((l) => l.split(',')[2] === 'mandate_refused' && l.includes('LEGRAND')), added.join('\n'));
    assert.ok(!added.some((l) => /mandate_created|mandate_revoked/.test(l)), added.join('\n'));
    // Spent: the same recap cannot be confirmed afterwards.
    const again = await started.browser.navigate(started.page.url);
    assert.ok(again.final.status >= 400, String(again.final.status));
  });
});
