// idp-proxy as FranceConnect's identity provider "Aidants Connect", called exactly as
// FranceConnect's core calls its identity providers: the development FranceConnect
// (dev/franceconnect.mjs + dev/franceconnect-core.mjs) reproduces each call and check of
// france-connect/sources @ fbf65bf, cited there rule by rule (../shared/FRANCECONNECT.md in the
// steering repo): discovery and JWKS at every login, client_secret_post, no PKCE,
// prompt=login, one acr_values, scope "openid profile email birth", the rep_scope claims
// request with the service's perimeter, openid-client 5's ID-token checks, TokenResultDto, the
// identity DTO, acr ≥ asked and ∈ allowedAcr, and the Aidants Connect rep_scope rule. FranceConnect
// is registered at idp-proxy with config/franceconnect.example.toml as it ships.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  Browser, FRANCECONNECT_IDP_SECRET, Issuer, formFields, generators, parseForms, startWorld, textOf,
} from './harness.mjs';
import { IMPORT, SIRET_A, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';
import {
  eventOf, fcTrace, franceConnectSp, spWithPerimeter, throughFranceConnect, wayBackForm,
} from './through-franceconnect.mjs';

// FranceConnect's DelegationScope enum (back/apps/core-fcp/src/enums/delegation-scope.enum.ts).
const DELEGATION_SCOPE = [
  'Papier-Citoyenneté-Elections', 'Famille-Scolarité', 'Social-Santé', 'Travail-Formation', 'Logement',
  'Transports-Mobilité', 'Argent-Impots-Consommation', 'Justice', 'Etranger-Europe', 'Loisirs-Sport-Culture',
];
const ALL_KEYS = ['papiers', 'famille', 'social', 'travail', 'logement', 'transports', 'argent', 'justice', 'etranger', 'loisirs'];

// Service providers behind FranceConnect, each with the perimeter FranceConnect registered.
const SP_LOGEMENT = spWithPerimeter('sp-logement', ['Logement']);
const SP_EMPTY = spWithPerimeter('sp-empty', []);
// No rep_scope in its registration: FranceConnect's mongoose schema types it `string[]`
// (service-provider-adapter-mongo.schema.ts), so it reads as [] and is sent as such.
const SP_NONE = spWithPerimeter('sp-none');
const SP_EACH = DELEGATION_SCOPE.map((scope, i) => spWithPerimeter(`sp-scope-${i}`, [scope]));

// Yasmine gave Centre social des Acacias a mandate for every démarche; an aidant is disabled.
const WORLD_IMPORT = {
  ...IMPORT,
  aidants: [...IMPORT.aidants,
    { subject: 'ancien', email: 'ancien@acacias.example', given_name: 'Paul', family_name: 'ANCIEN', organisations: [SIRET_A], active: false }],
  usagers: [...IMPORT.usagers,
    { ref: 'yasmine', franceconnect_sub: 'fc-yasmine', given_name: 'Yasmine', family_name: 'BENSAID', birthdate: '1988-04-02', gender: 'female', birthplace: '13055', birthcountry: '99100', email: 'yasmine.bensaid@example.org' }],
  mandates: [...IMPORT.mandates,
    { usager: 'yasmine', organisation: SIRET_A, created_by: 'abdel', demarches: ALL_KEYS, days: 365, consent_acr: 'eidas1' }],
};
const ACCOUNTS = [...UPSTREAM_ACCOUNTS, { sub: 'ancien', email: 'ancien@acacias.example', given_name: 'Paul', family_name: 'ANCIEN' }];

describe('idp-proxy as FranceConnect\'s identity provider', () => {
  let world;
  const sps = {};

  before(async () => {
    world = await startWorld({
      clients: [SP1],
      importToml: WORLD_IMPORT,
      upstreamAccounts: ACCOUNTS,
      franceconnect: { serviceProviders: [SP_LOGEMENT, SP_EMPTY, SP_NONE, ...SP_EACH] },
    });
    for (const sp of [SP_LOGEMENT, SP_EMPTY, SP_NONE, ...SP_EACH]) sps[sp.client_id] = await franceConnectSp(world.franceconnect, sp);
  });

  after(async () => world?.stop());

  const yasmine = (options) => options.find((o) => o.label.includes('Yasmine')) ?? null;

  /** FranceConnect accepted idp-proxy's answer and the service got FranceConnect's claims. */
  function assertAccepted(r, what) {
    const trace = fcTrace(r, world);
    assert.ok(eventOf(r, 'verified'), `${what}: FranceConnect verified the answer\n${trace}`);
    assert.equal(eventOf(r, 'rejected'), undefined, trace);
    assert.ok(r.claims?.sub, `${what}: the service received FranceConnect's ID token\n${trace}`);
    return eventOf(r, 'verified');
  }

  /** idp-proxy's dead end went back to FranceConnect's callback with `error`, the description
   *  of this dead end, and the right state. */
  function assertReturned(r, error, description, what) {
    const trace = fcTrace(r, world);
    const back = eventOf(r, 'idp-error');
    assert.ok(back, `${what}: FranceConnect heard back (state checked by checkState)\n${trace}`);
    assert.equal(back.error, error, trace);
    assert.equal(back.error_description, description, trace);
    assert.equal(eventOf(r, 'idp-error-refused'), undefined, trace);
    const sent = new URL(eventOf(r, 'redirect-to-idp').url);
    assert.equal(back.state, sent.searchParams.get('state'), 'the state FranceConnect sent');
    // handleIdpError restarts the interaction: the person is back on FranceConnect's page.
    assert.equal(r.fcChoices, 2, trace);
    return back;
  }

  it('is asked as FranceConnect\'s core asks: no PKCE, prompt=login, one acr, its scopes, the perimeter', async () => {
    const r = await throughFranceConnect({ world, sp: sps['sp-logement'], choose: yasmine });
    const sent = new URL(eventOf(r, 'redirect-to-idp').url);
    assert.equal(sent.origin, new URL(world.proxy.issuer).origin);
    const q = Object.fromEntries(sent.searchParams);
    assert.equal(q.client_id, 'franceconnect');
    assert.equal(q.scope, 'openid profile email birth');
    assert.equal(q.prompt, 'login');
    assert.equal(q.acr_values, 'eidas1');
    assert.equal(q.code_challenge, undefined, 'FranceConnect sends no PKCE');
    assert.match(q.state, /^[0-9a-f]{64}$/);
    assert.match(q.nonce, /^[0-9a-f]{64}$/);
    assert.deepEqual(JSON.parse(q.claims), { id_token: { rep_scope: { essential: true, values: ['Logement'] } } });
    assert.ok(r.claims, fcTrace(r, world));
  });

  it('completes a démarche for a service whose perimeter is ["Logement"]: the choice offers Logement only', async () => {
    const r = await throughFranceConnect({ world, sp: sps['sp-logement'], choose: yasmine });
    const offered = r.proxyPage.page.options.map((o) => o.demarche);
    assert.ok(offered.length > 0 && offered.every((d) => d === 'logement'), `only Logement: ${offered}`);
    assert.match(r.proxyPage.text, /Annuler et revenir sur FranceConnect/);
    const verified = assertAccepted(r, 'Logement');
    assert.deepEqual(verified.rep_scope, ['Logement'], 'answered in FranceConnect\'s strings');
    assert.equal(verified.acr, 'eidas1');
  });

  for (const [sp, what] of [['sp-empty', 'an empty perimeter ([])'], ['sp-none', 'no perimeter registered']]) {
    it(`completes a démarche for a service with ${what}: every démarche of the structure is offered`, async () => {
      const r = await throughFranceConnect({ world, sp: sps[sp], choose: (o) => o.find((x) => x.label.includes('Michel') && x.demarche === 'social') });
      const sent = JSON.parse(new URL(eventOf(r, 'redirect-to-idp').url).searchParams.get('claims'));
      assert.deepEqual(sent.id_token.rep_scope.values, []);
      const offered = new Set(r.proxyPage.page.options.map((o) => o.demarche));
      for (const d of ['argent', 'social', 'logement', 'justice']) assert.ok(offered.has(d), `${d} offered: ${[...offered]}`);
      const verified = assertAccepted(r, what);
      assert.deepEqual(verified.rep_scope, ['Social-Santé']);
    });
  }

  it('understands and answers every DelegationScope value', async () => {
    for (const [i, scope] of DELEGATION_SCOPE.entries()) {
      const r = await throughFranceConnect({ world, sp: sps[`sp-scope-${i}`], choose: yasmine });
      const verified = assertAccepted(r, scope);
      assert.deepEqual(verified.rep_scope, [scope], scope);
    }
  });

  it('answers what FranceConnect\'s DTOs accept, and the service gets FranceConnect\'s claims, not act', async () => {
    const r = await throughFranceConnect({ world, sp: sps['sp-empty'], choose: yasmine });
    const { identity, idTokenClaims } = assertAccepted(r, 'DTOs');
    // What idp-proxy answered: acr alphanumeric and within allowedAcr, identity DTO-shaped.
    assert.equal(idTokenClaims.acr, 'eidas1');
    assert.equal(idTokenClaims.iss, world.proxy.issuer);
    assert.ok(idTokenClaims.act, 'idp-proxy names the aidant to FranceConnect');
    assert.equal(identity.email, 'yasmine.bensaid@example.org');
    assert.equal(identity.birthdate, '1988-04-02');
    assert.equal(identity.birthplace, '13055');
    // What the service behind FranceConnect receives (buildFromRnippIdentity + idp_id).
    const u = r.userinfo;
    assert.equal(u.given_name, 'Yasmine');
    assert.equal(u.idp_birthdate, '1988-04-02');
    assert.equal(u.idp_id, 'aidants-connect');
    assert.notEqual(u.sub, idTokenClaims.sub, 'FranceConnect\'s own sub');
    for (const claim of ['act', 'mandate', 'rep_scope']) {
      assert.equal(u[claim], undefined, `${claim} does not reach the service`);
      assert.equal(r.claims[claim], undefined, `${claim} is not in FranceConnect's ID token`);
    }
  });

  describe('every dead end goes back to FranceConnect with access_denied and its state', () => {
    it('the aidant cancels on the choice page', async () => {
      const r = await throughFranceConnect({ world, sp: sps['sp-logement'], goBack: true });
      assertReturned(r, 'access_denied', 'the aidant cancelled', 'cancel');
    });

    it('a way back sends only the reason of the page that showed it', async () => {
      const browser = new Browser();
      const r = await throughFranceConnect({ world, sp: sps['sp-logement'], browser, choose: () => null });
      const back = wayBackForm(r.proxyPage.html, new URL(r.proxyPage.url));
      const forged = formFields(back);
      assert.equal(forged.get('reason'), 'cancelled');
      forged.set('reason', 'upstream_unavailable');
      const first = world.franceconnect.events.length;
      const refused = (await browser.navigate(back.action, { method: 'POST', form: forged })).final;
      assert.equal(refused.status, 400);
      assert.equal(world.franceconnect.events.length, first, 'FranceConnect heard nothing');
      // The page's own form still works: the request was not spent.
      await browser.navigate(back.action, { method: 'POST', form: formFields(back) });
      const returned = world.franceconnect.events.slice(first).find((e) => e.type === 'idp-error');
      assert.equal(returned?.error, 'access_denied');
    });

    it('nobody to act for', async () => {
      // Sophie's structure holds no Logement mandate for anyone but Nadia: Loisirs has none.
      const r = await throughFranceConnect({ world, sp: sps['sp-scope-9'], aidant: 'sophie', choose: () => null });
      assert.match(r.proxyPage.text, /Aucune personne accompagnée/);
      assert.ok(wayBackForm(r.proxyPage.html, r.proxyPage.url), 'a way back on the empty page');
      const back = await throughFranceConnect({ world, sp: sps['sp-scope-9'], aidant: 'sophie', goBack: true });
      assertReturned(back, 'access_denied', 'no usager has a mandate for what this service asks', 'nobody');
    });

    it('an aidant unknown to idp-proxy, and a disabled one', async () => {
      for (const aidant of ['inconnu', 'ancien']) {
        const r = await throughFranceConnect({ world, sp: sps['sp-logement'], aidant, goBack: true });
        assertReturned(r, 'access_denied', 'the aidant is not an active aidant of an authorised structure', aidant);
      }
    });

    it('the aidant cancels at their identity provider: straight back, no page', async () => {
      const r = await throughFranceConnect({ world, sp: sps['sp-logement'], aidant: null });
      assertReturned(r, 'access_denied', "the aidant's identity provider refused the login", 'upstream cancel');
      assert.equal(r.proxyPage, null, 'no idp-proxy page was shown');
    });

    it('is journaled as an abandoned authorization: the client, and the aidant when known', async () => {
      // seq,date,action,demarche,service,aidant,organisation,usager,mandat; newest first.
      const rows = async () => (await world.proxy.cli(['journal', 'export'])).split('\n').slice(1)
        .filter(Boolean).map((l) => l.split(','));
      const last = Math.max(...(await rows()).map((r) => Number(r[0])));
      await throughFranceConnect({ world, sp: sps['sp-logement'], goBack: true });
      await throughFranceConnect({ world, sp: sps['sp-logement'], aidant: 'inconnu', goBack: true });
      const added = (await rows()).filter((r) => Number(r[0]) > last);
      const abandoned = added.filter((r) => r[2] === 'authorization_abandoned').reverse();
      assert.equal(abandoned.length, 2, added.map((r) => r.join(',')).join('\n'));
      const [cancelled, unknown] = abandoned;
      assert.equal(cancelled[4], 'franceconnect');
      assert.equal(cancelled[5], 'Abdel KARIM', 'the aidant who cancelled');
      assert.equal(unknown[4], 'franceconnect');
      assert.equal(unknown[5], '', 'an identity idp-proxy does not know names no aidant');
    });
  });

  it('an acr above allowed_acr: FranceConnect greys Aidants Connect out, and idp-proxy answers unmet_authentication_requirements before any page', async () => {
    // FranceConnect shows an identity provider whose highest allowedAcr is below the service's
    // level as inactive (core-fcp.controller.ts getInteraction).
    const r = await throughFranceConnect({ world, sp: sps['sp-logement'], acr: 'eidas2' });
    assert.match(r.fcChoice.html, /<button type="submit" disabled[^>]*>S'identifier avec Aidants Connect/);
    assert.equal(eventOf(r, 'redirect-to-idp'), undefined, 'FranceConnect never calls it');
    // Asked anyway, as FranceConnect's core would ask (getAcrToAskToIdp: the service's eidas2).
    const issuer = await Issuer.discover(world.proxy.issuer);
    const fcAtProxy = new issuer.Client({
      client_id: 'franceconnect',
      client_secret: FRANCECONNECT_IDP_SECRET,
      redirect_uris: [`${world.franceconnect.issuer}/oidc-callback`],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const state = generators.state();
    const url = fcAtProxy.authorizationUrl({ scope: 'openid profile email birth', acr_values: 'eidas2', prompt: 'login', state, nonce: generators.nonce() });
    const nav = await new Browser().navigate(url, { stopAt: (u) => u.pathname.endsWith('/oidc-callback') });
    assert.equal(nav.steps.length, 1, 'answered at once, no page');
    const answer = nav.stoppedAt.searchParams;
    assert.equal(answer.get('error'), 'unmet_authentication_requirements');
    assert.equal(answer.get('state'), state);
    assert.equal(answer.get('iss'), world.proxy.issuer);
  });

  it('ends the aidant\'s session when FranceConnect logs out (RP-initiated, id_token_hint, state)', async () => {
    const browser = new Browser();
    const r = await throughFranceConnect({ world, sp: sps['sp-empty'], choose: yasmine, browser });
    assertAccepted(r, 'before logout');
    const sp = sps['sp-empty'];
    const logout = sp.client.endSessionUrl({ id_token_hint: r.tokenSet.id_token, post_logout_redirect_uri: sp.config.post_logout_redirect_uris[0], state: 'sp-state' });
    const first = world.franceconnect.events.length;
    const stopAt = (u) => u.href.startsWith(sp.config.post_logout_redirect_uris[0]);
    let nav = await browser.navigate(logout, { stopAt });
    const steps = [...nav.steps];
    // The development aidant IdP asks whether to end its own session too (oidc-provider's
    // logout page): yes.
    const upstreamPage = !nav.stoppedAt && new URL(nav.final.url).origin === new URL(world.upstream.issuer).origin;
    if (upstreamPage) {
      const form = parseForms(nav.final.body, nav.final.url).find((f) => f.method === 'post');
      const fields = formFields(form);
      fields.set('logout', 'yes');
      nav = await browser.navigate(form.action, { method: 'POST', form: fields, stopAt });
      steps.push(...nav.steps);
    }
    const events = world.franceconnect.events.slice(first);
    const toIdp = events.find((e) => e.type === 'idp-logout');
    assert.ok(toIdp, JSON.stringify(events));
    const q = new URL(toIdp.url).searchParams;
    assert.ok(q.get('id_token_hint'));
    assert.equal(q.get('post_logout_redirect_uri'), `${world.franceconnect.issuer}/client/logout-callback`);
    assert.ok(events.some((e) => e.type === 'idp-logout-callback' && e.known), 'idp-proxy sent the browser back with the state');
    assert.ok(nav.stoppedAt, 'the service\'s post-logout URI is reached');
    assert.equal(nav.stoppedAt.searchParams.get('state'), 'sp-state');
    assert.ok(!steps.some((s) => s.status === 200 && s.url.startsWith(world.proxy.issuer)), 'no confirmation page: the hint names the session');
    // The aidant's session at idp-proxy is over: a new login is asked.
    const again = await throughFranceConnect({ world, sp: sps['sp-empty'], choose: () => null, browser });
    assert.ok(again.steps.some((s) => s.url.startsWith(world.upstream.issuer)), 'logged in again at the identity provider');
  });
});

/** A seeded world with one service behind FranceConnect (perimeter []), for one describe. */
function worldBehindFranceConnect(config) {
  const w = {};
  before(async () => {
    w.world = await startWorld({
      clients: [SP1],
      importToml: IMPORT,
      upstreamAccounts: UPSTREAM_ACCOUNTS,
      franceconnect: { serviceProviders: [SP_EMPTY] },
      config,
    });
    w.sp = await franceConnectSp(w.world.franceconnect, SP_EMPTY);
  });
  after(async () => w.world?.stop());
  return w;
}

describe('mandates for FranceConnect\'s identity provider: presumed birthdate, no email', () => {
  const w = worldBehindFranceConnect();

  it('asks the email FranceConnect did not give, keeps the presumed idp_birthdate, and FranceConnect accepts the answer', async () => {
    const { world, sp } = w;
    // Moussa KEITA at the development FranceConnect: idp_birthdate 1958-00-00, no email.
    const browser = new Browser();
    let nav = await browser.navigate(`${world.proxy.issuer}/mandats/nouveau`);
    let login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
    nav = await browser.navigate(login.action, { method: 'POST', form: { sub: 'abdel' } });
    const form = parseForms(nav.final.body, nav.final.url).find((f) => f.action.endsWith('/mandats/nouveau'));
    const fields = formFields(form);
    fields.append('demarches', 'logement');
    fields.set('duree', '365');
    nav = await browser.navigate(form.action, { method: 'POST', form: fields });
    login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
    nav = await browser.navigate(login.action, { method: 'POST', form: { sub: 'fc-moussa' } });
    const recap = nav.final;
    const text = textOf(recap.body);
    assert.match(text, /Moussa KEITA\s*, né en 1958/, text.slice(0, 400));
    assert.match(text, /FranceConnect n'a pas transmis d'adresse électronique/);
    const recapForm = parseForms(recap.body, recap.url).find((f) => f.action.includes('/mandats/recapitulatif/'));
    assert.ok(recapForm.inputs.some((i) => i.name === 'email' && i.type === 'email'), 'an email field');

    // A wrong address: the same page, what was typed kept, nothing created.
    const bad = formFields(recapForm);
    bad.set('email', 'moussa.keita');
    bad.set('consent', 'yes');
    const refused = (await browser.navigate(recapForm.action, { method: 'POST', form: bad })).final;
    assert.equal(refused.status, 400);
    assert.match(textOf(refused.body), /adresse électronique valide/);
    assert.match(refused.body, /value="moussa\.keita"/);

    const good = formFields(recapForm);
    good.set('email', 'moussa.keita@example.org');
    good.set('consent', 'yes');
    const attestation = (await browser.navigate(recapForm.action, { method: 'POST', form: good })).final;
    assert.equal(attestation.status, 200, textOf(attestation.body).slice(0, 300));
    assert.match(attestation.url, /\/attestation$/);

    const r = await throughFranceConnect({ world, sp, choose: (o) => o.find((x) => x.label.includes('Moussa')) });
    const { identity } = eventOf(r, 'verified') ?? assert.fail(fcTrace(r, world));
    assert.equal(identity.birthdate, '1958-00-00', 'the presumed date, as FranceConnect\'s IsIdpBirthdate accepts it');
    assert.equal(identity.email, 'moussa.keita@example.org');
    assert.equal(identity.birthplace, undefined, 'born abroad');
    // The RNIPP completes a presumed date with 01; idp_birthdate keeps the identity provider's.
    assert.equal(r.userinfo.birthdate, '1958-01-01');
    assert.equal(r.userinfo.idp_birthdate, '1958-00-00');
  });
});

describe('an expired authorization still finds its way back', () => {
  const w = worldBehindFranceConnect({ session: { interaction_ttl_secs: 2 } });

  it('past interaction_ttl_secs, the page says so and goes back with access_denied', async () => {
    const { world, sp } = w;
    const browser = new Browser();
    const r = await throughFranceConnect({ world, sp, browser, choose: () => null });
    const choice = r.proxyPage;
    assert.equal(choice.status, 200, fcTrace(r, world));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const page = (await browser.navigate(choice.url)).final;
    assert.equal(page.status, 400);
    assert.match(textOf(page.body), /Demande expirée/);
    const back = wayBackForm(page.body, new URL(page.url));
    assert.ok(back, 'a way back on the expired page');
    const first = world.franceconnect.events.length;
    await browser.navigate(back.action, { method: 'POST', form: formFields(back) });
    const returned = world.franceconnect.events.slice(first).find((e) => e.type === 'idp-error');
    assert.equal(returned?.error, 'access_denied', JSON.stringify(world.franceconnect.events.slice(first)));
    assert.equal(returned.error_description, 'the authorization request expired');
  });
});

describe('the aidants\' identity provider down: back to FranceConnect with temporarily_unavailable', () => {
  const w = worldBehindFranceConnect();

  it('fails at the code exchange: a French page, and its way back tells FranceConnect', async () => {
    const { world, sp } = w;
    const browser = new Browser();
    const r = await throughFranceConnect({
      world, sp, browser, pauseAt: (u) => u.pathname === '/login/callback',
    });
    assert.ok(r.pausedAt, fcTrace(r, world));
    await world.upstream.close();
    const page = (await browser.navigate(r.pausedAt.href)).final;
    assert.equal(page.status, 503);
    assert.match(textOf(page.body), /Connexion impossible pour le moment/);
    const back = wayBackForm(page.body, new URL(page.url));
    assert.ok(back, 'a way back on the outage page');
    assert.match(textOf(page.body), /Annuler et revenir sur FranceConnect/);
    const first = world.franceconnect.events.length;
    await browser.navigate(back.action, { method: 'POST', form: formFields(back) });
    const returned = world.franceconnect.events.slice(first).find((e) => e.type === 'idp-error');
    assert.equal(returned?.error, 'temporarily_unavailable', JSON.stringify(world.franceconnect.events.slice(first)));
    const sent = new URL(r.events.find((e) => e.type === 'redirect-to-idp').url);
    assert.equal(returned.state, sent.searchParams.get('state'));
  });
});

describe('the aidants\' identity provider unreachable from the start', () => {
  const w = worldBehindFranceConnect();

  it('a French page at once, whose way back (in a browser new to idp-proxy) tells FranceConnect', async () => {
    const { world, sp } = w;
    // Never discovered: idp-proxy meets the outage when it first needs the provider.
    await world.upstream.close();
    const r = await throughFranceConnect({ world, sp, choose: () => null });
    assert.equal(r.proxyPage?.status, 503, fcTrace(r, world));
    assert.match(r.proxyPage.text, /Connexion impossible pour le moment/);
    const back = wayBackForm(r.proxyPage.html, new URL(r.proxyPage.url));
    assert.ok(back, 'a way back on the outage page');
    const first = world.franceconnect.events.length;
    await r.browser.navigate(back.action, { method: 'POST', form: formFields(back) });
    const returned = world.franceconnect.events.slice(first).find((e) => e.type === 'idp-error');
    assert.equal(returned?.error, 'temporarily_unavailable', JSON.stringify(world.franceconnect.events.slice(first)));
  });
});
