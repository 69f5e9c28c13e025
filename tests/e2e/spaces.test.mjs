// The people's own pages: the usager's space (FranceConnect login, the mandates they gave,
// what was done in their name, ending a mandate), the aidant's space (the usagers they follow,
// ending a mandate at the usager's request), the organisation's journal (counts and filters),
// a mandate given until a chosen day, and the retention purge leaving the journal verifiable.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { Browser, formFields, makeSp, parseForms, runDemarche, startWorld, textOf, trace } from './harness.mjs';
import { IMPORT, SIRET_A, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

// ---------------------------------------------------------------------------------------------
// Helpers: what a person sees and does in a browser

const origin = (u) => new URL(u).origin;
const DAY_MS = 86_400_000;
const FR_DAY = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', day: '2-digit', month: '2-digit', year: 'numeric' });
const ISO_DAY = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit' });
/** The day `days` from now, Paris time, as French pages write it ("24/08/2026"). */
const frenchDay = (days = 0) => FR_DAY.format(new Date(Date.now() + days * DAY_MS));
/** The same day as a date field takes it ("2026-08-24"). */
const isoDay = (days = 0) => ISO_DAY.format(new Date(Date.now() + days * DAY_MS));
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Mandate ids of the seeded world, in import file order (michel, lucie, paul, nadia, rose,
 *  ines, then any added: `extra`). */
function importedMandates(world) {
  const ids = world.proxy.summary?.mandates;
  assert.ok(Array.isArray(ids) && ids.length >= 6, `import summary: ${JSON.stringify(world.proxy.summary)}`);
  const [michel, lucie, paul, nadia, rose, ines, ...extra] = ids.map(String);
  return { michel, lucie, paul, nadia, rose, ines, extra };
}

/** The page's tables: caption, header cells and body rows as the texts of their cells. */
function tables(html) {
  const cells = (s, tag) => [...s.matchAll(new RegExp(`<${tag}\\b[^>]*>([\\s\\S]*?)<\\/${tag}>`, 'gi'))].map((c) => textOf(c[1]));
  return [...html.matchAll(/<table\b[^>]*>([\s\S]*?)<\/table>/gi)].map((m) => {
    const t = m[1];
    const caption = textOf(t.match(/<caption\b[^>]*>([\s\S]*?)<\/caption>/i)?.[1] ?? '');
    const head = cells(t.match(/<thead\b[^>]*>([\s\S]*?)<\/thead>/i)?.[1] ?? '', 'th');
    const body = t.match(/<tbody\b[^>]*>([\s\S]*?)<\/tbody>/i)?.[1] ?? '';
    const rows = [...body.matchAll(/<tr\b[^>]*>([\s\S]*?)<\/tr>/gi)].map((r) => cells(r[1], 't[dh]'));
    return { caption, head, rows };
  });
}

/** The page cut at its <h2> headings: heading text → the HTML up to the next heading. */
function sections(html) {
  const out = {};
  for (const part of html.split(/<h2\b[^>]*>/i).slice(1)) {
    const [title, ...rest] = part.split(/<\/h2>/i);
    out[textOf(title)] = rest.join('</h2>');
  }
  return out;
}

/** The text of the page's notice (role=status), if any. */
const notice = (html) => {
  const m = html.match(/<div class="info" role="status">([\s\S]*?)<\/div>/i);
  return m ? textOf(m[1]) : null;
};

/** An error page: in French, with nothing internal shown. */
function assertFrenchError(page, status, message) {
  const text = textOf(page.body);
  assert.equal(page.status, status, `${page.url}: ${text.slice(0, 300)}`);
  assert.match(page.contentType, /text\/html/, `an HTML page, not ${page.contentType}: ${text.slice(0, 200)}`);
  assert.match(page.body, /<html lang="fr">/, `a French page: ${text.slice(0, 200)}`);
  assert.match(text, message);
  assert.doesNotMatch(text, /panicked|backtrace|src\/|Error\(|unwrap|Parse error|missing field/i, 'no internals shown');
}

/** Opens `path` as `aidant` in `browser`, logging in at the aidants' IdP if asked to. */
async function aidantPage(world, browser, path, aidant) {
  let nav = await browser.navigate(`${world.proxy.issuer}${path}`);
  if (origin(nav.final.url) === origin(world.upstream.issuer)) {
    const login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
    assert.ok(login, `the aidants' login page:\n${nav.final.body.slice(0, 500)}`);
    nav = await browser.navigate(login.action, { method: 'POST', form: { sub: aidant } });
  }
  return nav.final;
}

/**
 * The aidant fills "Nouveau mandat" and the usager logs in at FranceConnect on the aidant's
 * device: the page that follows (the recap, or the form again with an error).
 */
async function startMandate(world, { browser = new Browser(), aidant = 'abdel', usager, demarches = ['argent'], duree = '365', jusquau } = {}) {
  const page = await aidantPage(world, browser, '/mandats/nouveau', aidant);
  assert.equal(page.status, 200, textOf(page.body).slice(0, 300));
  const form = parseForms(page.body, page.url).find((f) => f.action.endsWith('/mandats/nouveau'));
  assert.ok(form, 'the new-mandate form');
  const fields = formFields(form);
  for (const d of demarches) fields.append('demarches', d);
  if (duree) fields.set('duree', duree);
  if (jusquau !== undefined) fields.set('jusquau', jusquau);
  let nav = await browser.navigate(form.action, { method: 'POST', form: fields });
  if (origin(nav.final.url) !== origin(world.franceconnect.issuer)) return { browser, page: nav.final, form };
  const login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
  nav = await browser.navigate(login.action, { method: 'POST', form: { sub: usager } });
  return { browser, page: nav.final, form };
}

/** The usager ticks the consent box on the recap: the attestation page and the mandate id. */
async function confirmMandate({ browser, page }) {
  const form = parseForms(page.body, page.url).find((f) => f.action.includes('/mandats/recapitulatif/'));
  assert.ok(form, `a recap form:\n${textOf(page.body).slice(0, 500)}`);
  const fields = formFields(form);
  fields.set('consent', 'yes');
  const attestation = (await browser.navigate(form.action, { method: 'POST', form: fields })).final;
  assert.equal(attestation.status, 200, textOf(attestation.body).slice(0, 300));
  const id = attestation.url.match(/\/mandats\/([0-9a-f-]{36})\/attestation$/)?.[1];
  assert.ok(id, attestation.url);
  return { attestation, mandateId: id };
}

/**
 * The usager, on their own device, opens /mon-espace, follows "S'identifier avec
 * FranceConnect" and logs in there as `sub`. Returns the navigation (its steps show the
 * FranceConnect logout round trip) and the page it ends on.
 */
async function usagerLogin(world, browser, sub) {
  const start = (await browser.navigate(`${world.proxy.issuer}/mon-espace`)).final;
  assert.equal(start.status, 200);
  assert.match(textOf(start.body), /identifiez-vous avec FranceConnect/);
  const href = start.body.match(/<a\b[^>]*href="([^"]*\/mon-espace\/connexion)"/)?.[1];
  assert.ok(href, 'a link to log in with FranceConnect');
  let nav = await browser.navigate(new URL(href, start.url).toString());
  assert.equal(origin(nav.final.url), origin(world.franceconnect.issuer), 'sent to FranceConnect');
  const login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
  assert.ok(login, 'the FranceConnect login page');
  nav = await browser.navigate(login.action, { method: 'POST', form: { sub } });
  return { nav, page: nav.final };
}

/** The "end this mandate" form of a page, for `mandateId` (action ending with `suffix`). */
function endForm(page, suffix) {
  return parseForms(page.body, page.url).find((f) => f.method === 'post' && f.action.endsWith(suffix)) ?? null;
}

/** Posts `form` with `confirm=yes` (the box ticked) unless `confirm` is false; `edit` may change the fields. */
async function submitEnd(browser, form, { confirm = true, edit } = {}) {
  const fields = formFields(form);
  if (confirm) fields.set('confirm', 'yes');
  if (edit) edit(fields);
  return (await browser.navigate(form.action, { method: 'POST', form: fields })).final;
}

function demarcheWith(world, sp) {
  return (opts) => runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, ...opts });
}

/** A démarche with `mandateId` for `demarche` that must succeed: its ID token claims. */
async function assertUsable(demarche, mandateId, name, { aidant = 'abdel' } = {}) {
  const r = await demarche({ aidant, choose: (o) => o.find((x) => x.mandateId === mandateId && x.demarche === name) ?? null });
  assert.ok(r.claims, `the démarche with ${mandateId}:${name} must succeed\n${trace(r)}`);
  assert.equal(r.claims.mandate?.id, mandateId);
  return r.claims;
}

/**
 * A démarche with `mandateId` that must be refused: the mandate is no longer offered, and a
 * forged choice of it gets no code, only the refusal on the page.
 */
async function assertRefused(demarche, mandateId, name, refusal, { aidant = 'abdel' } = {}) {
  let offered = null;
  const r = await demarche({ aidant, choose: (o) => { offered = o; return `${mandateId}:${name}`; } });
  assert.ok(offered, `the interaction page was reached\n${trace(r)}`);
  assert.ok(!offered.some((x) => x.mandateId === mandateId), 'an ended mandate is no longer offered');
  assert.equal(r.code, null, `no code for an ended mandate\n${trace(r)}`);
  assert.ok(r.final && r.final.status >= 400 && r.final.status < 500, trace(r));
  assert.match(textOf(r.final.body), refusal);
}

// ---------------------------------------------------------------------------------------------

describe('the usager’s space', () => {
  let world;
  let sp;
  let demarche;
  let ids;

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, franceconnect: true });
    sp = await makeSp(world.proxy, SP1);
    demarche = demarcheWith(world, sp);
    ids = importedMandates(world);
  });

  after(async () => world?.stop());

  it('shows the usager the mandate they gave and what was done with it, and lets them end it', async () => {
    // The aidant's device: Jeanne gives Abdel's organisation a mandate for two démarches.
    const recap = await startMandate(world, { aidant: 'abdel', usager: 'fc-jeanne', demarches: ['argent', 'social'] });
    const { mandateId } = await confirmMandate(recap);

    // A démarche with it: the service learns it is Jeanne, and that Abdel acts for her.
    const claims = await assertUsable(demarche, mandateId, 'social');
    assert.equal(claims.given_name, 'Jeanne');
    assert.equal(claims.family_name, 'MARTIN');
    assert.ok(claims.act && typeof claims.act === 'object', 'act claim present');
    assert.equal(claims.act.given_name, 'Abdel');

    // Jeanne's own device: /mon-espace, FranceConnect, then back to her space.
    const jeanne = new Browser();
    const { nav, page } = await usagerLogin(world, jeanne, 'fc-jeanne');
    // FranceConnect's session was closed on the way (she may be on a shared device).
    const visited = nav.steps.map((s) => new URL(s.url));
    const callbackAt = visited.findIndex((u) => u.pathname === '/franceconnect/callback');
    assert.ok(callbackAt >= 0, 'the FranceConnect callback');
    assert.ok(visited.slice(callbackAt + 1).some((u) => u.origin === origin(world.franceconnect.issuer)), 'FranceConnect logout after the login');
    assert.ok(visited.some((u) => u.pathname === '/franceconnect/logout-callback'), 'back from FranceConnect logout');
    assert.equal(new URL(page.url).pathname, '/mon-espace');
    assert.equal(page.status, 200);

    const text = textOf(page.body);
    assert.match(text, /Vous êtes identifié avec FranceConnect : Jeanne MARTIN/);
    const running = textOf(sections(page.body)['Mandats en cours'] ?? '');
    assert.match(running, /Centre social des Acacias/);
    assert.match(running, /Argent/);
    assert.match(running, /Social - Santé/);
    assert.match(running, new RegExp(`Donné le ${escapeRe(frenchDay())}, valable jusqu'au ${escapeRe(frenchDay(365))}`));
    assert.equal(sections(page.body)['Mandats terminés'], undefined, 'nothing ended yet');

    // Everything done in her name: the mandate given, the démarche, by whom, for which service.
    const [history] = tables(page.body);
    assert.deepEqual(history.head, ['Date', 'Action', 'Démarche', 'Service', 'Aidant', 'Structure']);
    const used = history.rows.filter((r) => r[1] === 'Démarche effectuée');
    assert.equal(used.length, 1, JSON.stringify(history.rows));
    assert.deepEqual(used[0].slice(2), ['Social - Santé', 'Service de test', 'Abdel KARIM', 'Centre social des Acacias']);
    assert.match(used[0][0], new RegExp(`^${escapeRe(frenchDay())} à \\d\\d:\\d\\d$`));
    assert.ok(history.rows.some((r) => r[1] === 'Mandat donné' && r[4] === 'Abdel KARIM'), JSON.stringify(history.rows));
    // Only Jeanne's entries: nobody else's name or démarche.
    assert.doesNotMatch(text, /DUPONT|HAMDI|PETIT/);

    const form = endForm(page, `/mon-espace/mandats/${mandateId}/fin`);
    assert.ok(form, 'an end form for the running mandate');
    assert.ok(form.inputs.some((i) => i.name === 'confirm' && i.type === 'checkbox' && !i.checked), 'a confirmation box, not ticked');

    // Submitted without ticking the box: nothing ends.
    const unticked = await submitEnd(jeanne, form, { confirm: false });
    assert.equal(unticked.status, 200);
    assert.equal(notice(unticked.body), null);
    assert.ok(endForm(unticked, `/mon-espace/mandats/${mandateId}/fin`), 'still running');

    // Another page's (or a forger's) csrf: refused, nothing ends.
    const forged = await submitEnd(jeanne, form, { edit: (f) => f.set('csrf', 'not-the-csrf-of-this-session') });
    assertFrenchError(forged, 400, /Demande expirée/);

    // Nadia's mandate (another usager, another organisation): not Jeanne's to end.
    const notHers = await submitEnd(jeanne, { ...form, action: `${world.proxy.issuer}/mon-espace/mandats/${ids.nadia}/fin` });
    assertFrenchError(notHers, 403, /Ce mandat n'est pas l'un des vôtres/);
    const unknown = await submitEnd(jeanne, { ...form, action: `${world.proxy.issuer}/mon-espace/mandats/00000000-0000-4000-8000-000000000000/fin` });
    assertFrenchError(unknown, 403, /Ce mandat n'est pas l'un des vôtres/);
    await assertUsable(demarche, ids.nadia, 'logement', { aidant: 'sophie' });
    // Hers still runs after all that.
    await assertUsable(demarche, mandateId, 'argent');

    // Ticked: the mandate ends.
    const ended = await submitEnd(jeanne, form);
    assert.equal(ended.status, 200);
    assert.equal(new URL(ended.url).pathname + new URL(ended.url).search, '/mon-espace?termine=1');
    assert.equal(notice(ended.body), "Le mandat a pris fin. Plus aucun aidant ne peut l'utiliser.");
    const parts = sections(ended.body);
    assert.match(textOf(parts['Mandats en cours']), /Vous n'avez aucun mandat en cours/);
    assert.equal(endForm(ended, `/mon-espace/mandats/${mandateId}/fin`), null, 'no end form any more');
    assert.ok(parts['Mandats terminés'], 'an ended-mandates list');
    const endedText = textOf(parts['Mandats terminés']);
    assert.match(endedText, new RegExp(`Centre social des Acacias — donné le ${escapeRe(frenchDay())}, terminé le ${escapeRe(frenchDay())} \\(`));
    assert.match(endedText, /Argent/);
    assert.match(endedText, /Social - Santé/);
    const [history2] = tables(ended.body);
    assert.equal(history2.rows[0][1], 'Fin du mandat', `newest first: ${JSON.stringify(history2.rows)}`);
    assert.equal(history2.rows[0][5], 'Centre social des Acacias');
    assert.equal(history2.rows.filter((r) => r[1] === 'Démarche effectuée').length, 2, 'both démarches shown');

    // No aidant can use it any more.
    await assertRefused(demarche, mandateId, 'argent', /révoqué/);

    // Logging out closes the space: the old form's csrf no longer works.
    const logout = parseForms(ended.body, ended.url).find((f) => f.action.endsWith('/mon-espace/deconnexion'));
    const out = (await jeanne.navigate(logout.action, { method: 'POST', form: formFields(logout) })).final;
    assert.equal(out.status, 200);
    assert.match(textOf(out.body), /Vous êtes déconnecté/);
    const stale = await submitEnd(jeanne, form);
    assertFrenchError(stale, 400, /Demande expirée/);
  });

  it('tells a person who never gave a mandate so, and logs them out', async () => {
    // Amina never gave a mandate in this world.
    const amina = new Browser();
    const { page } = await usagerLogin(world, amina, 'fc-amina');
    assert.equal(page.status, 200);
    assert.equal(new URL(page.url).pathname, '/mon-espace');
    const text = textOf(page.body);
    assert.match(text, /Vous n'avez donné aucun mandat/);
    assert.doesNotMatch(text, /Centre social|Tilleuls|Démarche effectuée/);

    const logout = parseForms(page.body, page.url).find((f) => f.action.endsWith('/mon-espace/deconnexion'));
    assert.ok(logout, 'a logout button');
    const out = (await amina.navigate(logout.action, { method: 'POST', form: formFields(logout) })).final;
    assert.equal(out.status, 200);
    assert.match(textOf(out.body), /Vous êtes déconnecté/);
    // Back to the login page, not to her (empty) space.
    const again = (await amina.navigate(`${world.proxy.issuer}/mon-espace`)).final;
    assert.equal(again.status, 200);
    assert.match(textOf(again.body), /identifiez-vous avec FranceConnect/);
    assert.doesNotMatch(textOf(again.body), /aucun mandat/);
  });

  it('refuses an end request without its csrf field with a French page', async () => {
    // The same forged post on the usager's side: refused, in French, the mandate still runs.
    const michel = new Browser();
    const { page } = await usagerLogin(world, michel, 'fc-michel');
    const form = endForm(page, `/mon-espace/mandats/${ids.michel}/fin`);
    assert.ok(form, 'Michel’s mandate, with its end form');
    const refused = await submitEnd(michel, form, { edit: (f) => f.delete('csrf') });
    assertFrenchError(refused, 400, /Demande expirée|Demande invalide/);
    await assertUsable(demarche, ids.michel, 'argent');
  });

  it('shows a person the mandate imported for them, by their FranceConnect identity', async () => {
    // Michel's mandate came from the import (his FranceConnect subject known): he finds it.
    const { page } = await usagerLogin(world, new Browser(), 'fc-michel');
    const running = textOf(sections(page.body)['Mandats en cours'] ?? '');
    assert.match(textOf(page.body), /Michel DUPONT/);
    assert.match(running, /Centre social des Acacias/);
    assert.ok(endForm(page, `/mon-espace/mandats/${ids.michel}/fin`), 'his imported mandate, with its end form');
  });
});

describe('the aidant’s space', () => {
  let world;
  let demarche;
  let ids;

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, franceconnect: true });
    demarche = demarcheWith(world, await makeSp(world.proxy, SP1));
    ids = importedMandates(world);
  });

  after(async () => world?.stop());

  it('lists the organisation’s running mandates and lets the aidant end one at the usager’s request', async () => {
    const abdel = new Browser();
    const page = await aidantPage(world, abdel, '/espace-aidant', 'abdel');
    assert.equal(page.status, 200);
    assert.equal(new URL(page.url).pathname, '/espace-aidant');
    assert.match(textOf(page.body), /Connecté en tant que Abdel KARIM — Centre social des Acacias/);
    const followed = textOf(sections(page.body)['Les personnes que vous accompagnez'] ?? '');
    // Running mandates of Acacias (Farid's included); not expired, revoked or Tilleuls' ones.
    for (const name of ['Michel DUPONT', 'Rose PETIT', 'Inès GARCIA']) assert.match(followed, new RegExp(name));
    for (const name of ['Lucie BERNARD', 'Paul LEROY', 'Nadia HAMDI']) assert.doesNotMatch(followed, new RegExp(name));

    const form = endForm(page, `/mandats/${ids.rose}/fin`);
    assert.ok(form, 'an end form for Rose’s mandate');

    // Without the csrf field (a forged cross-site post): refused, Rose's mandate runs. (Its
    // page is checked in the next test.)
    const noCsrf = await submitEnd(abdel, form, { edit: (f) => f.delete('csrf') });
    assert.equal(noCsrf.status, 400, `refused: ${noCsrf.status} ${noCsrf.body.slice(0, 200)}`);
    // With someone else's csrf: refused too.
    const wrong = await submitEnd(abdel, form, { edit: (f) => f.set('csrf', 'forged') });
    assertFrenchError(wrong, 400, /Demande expirée/);
    // Box not ticked: back to the page, nothing ended.
    const unticked = await submitEnd(abdel, form, { confirm: false });
    assert.equal(unticked.status, 200);
    assert.ok(endForm(unticked, `/mandats/${ids.rose}/fin`), 'Rose still followed');
    await assertUsable(demarche, ids.rose, 'argent');

    // Sophie (Tilleuls), with her own valid session and csrf, cannot end Acacias' mandate.
    const sophie = new Browser();
    const hers = await aidantPage(world, sophie, '/espace-aidant', 'sophie');
    assert.match(textOf(hers.body), /Maison France services des Tilleuls/);
    assert.doesNotMatch(textOf(hers.body), /Rose PETIT|Michel DUPONT/, 'Acacias’ usagers are not hers');
    const sophiesForm = endForm(hers, `/mandats/${ids.nadia}/fin`);
    assert.ok(sophiesForm, 'Sophie follows Nadia');
    const foreign = await submitEnd(sophie, { ...sophiesForm, action: `${world.proxy.issuer}/mandats/${ids.michel}/fin` });
    assertFrenchError(foreign, 403, /Ce mandat n'a pas été donné à votre structure/);
    await assertUsable(demarche, ids.michel, 'argent');

    // Abdel ends Rose's mandate.
    const ended = await submitEnd(abdel, form);
    assert.equal(ended.status, 200);
    assert.equal(new URL(ended.url).pathname + new URL(ended.url).search, '/espace-aidant?termine=1');
    assert.equal(notice(ended.body), "Le mandat a pris fin. Plus aucun aidant ne peut l'utiliser.");
    const now = textOf(sections(ended.body)['Les personnes que vous accompagnez'] ?? '');
    assert.doesNotMatch(now, /Rose PETIT/);
    assert.match(now, /Michel DUPONT/);
    // His own actions: the end, newest first, and the démarches he did.
    const [actions] = tables(ended.body);
    assert.deepEqual(actions.head, ['Date', 'Action', 'Personne', 'Démarche', 'Service']);
    assert.deepEqual(actions.rows[0].slice(1, 3), ['Fin du mandat', 'Rose PETIT']);
    assert.ok(actions.rows.some((r) => r[1] === 'Démarche effectuée' && r[2] === 'Michel DUPONT' && r[3] === 'Argent' && r[4] === 'Service de test'), JSON.stringify(actions.rows));
    await assertRefused(demarche, ids.rose, 'argent', /révoqué/);
    // Ending it again (an old tab): the page, no error.
    const twice = await submitEnd(abdel, form);
    assert.equal(twice.status, 200);
  });

  it('refuses an end request without its csrf field with a French page', async () => {
    // A cross-site form posting to /mandats/{id}/fin without the hidden field lands the aidant
    // on this page: it must say what happened in French, like every other refusal.
    const abdel = new Browser();
    const page = await aidantPage(world, abdel, '/espace-aidant', 'abdel');
    const form = endForm(page, `/mandats/${ids.michel}/fin`);
    const refused = await submitEnd(abdel, form, { edit: (f) => f.delete('csrf') });
    assertFrenchError(refused, 400, /Demande expirée|Demande invalide/);
    await assertUsable(demarche, ids.michel, 'argent');
  });

  // Issue #12, partial changes (../shared/field/: mandates adjusted with the person, not
  // redone): a démarche added (the person consents again through FranceConnect, the form
  // starts from the running mandate), one démarche ended by the aidant or by the person, the
  // rest running on.
  it('adds a démarche from the running mandate, then ends one démarche, the rest still serving', async () => {
    const abdel = new Browser();
    const first = await confirmMandate(await startMandate(world, { browser: abdel, usager: 'fc-amina', demarches: ['argent', 'social'] }));
    let page = await aidantPage(world, abdel, '/espace-aidant', 'abdel');
    const add = page.body.match(new RegExp(`href="(/mandats/nouveau\\?depuis=${first.mandateId})"`))?.[1];
    assert.ok(add, 'an « Ajouter une démarche » link');
    page = (await abdel.navigate(`${world.proxy.issuer}${add}`)).final;
    const form = parseForms(page.body, page.url).find((f) => f.action.endsWith('/mandats/nouveau'));
    const fields = formFields(form);
    assert.deepEqual([...fields.getAll('demarches')].sort(), ['argent', 'social'], 'its démarches ticked');
    assert.equal(fields.get('duree'), 'date', 'the same end day');
    assert.match(fields.get('jusquau'), /^\d{4}-\d{2}-\d{2}$/);
    fields.append('demarches', 'logement');
    let nav = await abdel.navigate(form.action, { method: 'POST', form: fields });
    const login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
    nav = await abdel.navigate(login.action, { method: 'POST', form: { sub: 'fc-amina' } });
    const recap = textOf(nav.final.body);
    assert.match(recap, /démarches ajoutées : Logement/);
    assert.match(recap, /démarches conservées : Social - Santé, Argent/);
    const second = await confirmMandate({ browser: abdel, page: nav.final });
    await assertUsable(demarche, second.mandateId, 'logement');

    // The aidant ends « Argent » at the person's request: the mandate runs on for the others.
    page = await aidantPage(world, abdel, '/espace-aidant', 'abdel');
    const one = endForm(page, `/mandats/${second.mandateId}/fin-demarche`);
    assert.ok(one, 'a form ending one démarche');
    const retired = await submitEnd(abdel, one, { edit: (f) => f.set('demarche', 'argent') });
    assert.equal(new URL(retired.url).search, '?retire=1');
    assert.equal(notice(retired.body), 'La démarche a été retirée du mandat. Le reste du mandat continue.');
    const forged = await demarche({ aidant: 'abdel', choose: () => `${second.mandateId}:argent` });
    assert.equal(forged.code, null, 'no code for the ended démarche');
    await assertUsable(demarche, second.mandateId, 'social');
    // A form naming no démarche ends nothing.
    const none = await submitEnd(abdel, one, { edit: (f) => f.delete('demarche') });
    assert.equal(none.status, 400);
    await assertUsable(demarche, second.mandateId, 'social');

    // The person, in their own space, ends « Logement »; « Social - Santé » remains.
    const amina = new Browser();
    const space = (await usagerLogin(world, amina, 'fc-amina')).page;
    const hers = endForm(space, `/mon-espace/mandats/${second.mandateId}/fin-demarche`);
    assert.ok(hers, 'her form ending one démarche');
    const after = await submitEnd(amina, hers, { edit: (f) => f.set('demarche', 'logement') });
    assert.equal(notice(after.body), 'La démarche a été retirée du mandat. Le reste du mandat continue.');
    await assertUsable(demarche, second.mandateId, 'social');
    const csv = await world.proxy.cli(['journal', 'export']);
    assert.equal(csv.split('\n').filter((l) => l.split(',')[2] === 'demarche_ended').length, 2, csv);
  });

  // Issue #12, the shared computer: « Se déconnecter » on every aidant page ends the session
  // here and at the aidants' IdP (RP-Initiated Logout 1.0 §2, as the development IdP,
  // oidc-provider, implements it: a confirmation form at its end_session_endpoint).
  it('offers « Se déconnecter » on every aidant page; it ends the session here and at the IdP', async () => {
    const abdel = new Browser();
    const { mandateId } = await confirmMandate(await startMandate(world, { browser: abdel, usager: 'fc-jean-pierre', demarches: ['transports'] }));
    for (const path of ['/espace-aidant', '/mandats/nouveau', '/structure/journal', `/mandats/${mandateId}/attestation`]) {
      const page = await aidantPage(world, abdel, path, 'abdel');
      const form = parseForms(page.body, page.url).find((f) => f.action.endsWith('/end_session'));
      assert.ok(form, `a logout form on ${path}`);
      assert.ok(form.buttons.some((b) => b.text === 'Se déconnecter'), path);
    }
    const page = await aidantPage(world, abdel, '/espace-aidant', 'abdel');
    const form = parseForms(page.body, page.url).find((f) => f.action.endsWith('/end_session'));
    let nav = await abdel.navigate(form.action, { method: 'POST', form: formFields(form) });
    const atIdp = nav.steps.some((st) => origin(st.url) === origin(world.upstream.issuer));
    if (origin(nav.final.url) === origin(world.upstream.issuer)) {
      const confirm = parseForms(nav.final.body, nav.final.url).find((f) => f.method === 'post');
      const fields = formFields(confirm);
      fields.set('logout', 'yes');
      nav = await abdel.navigate(confirm.action, { method: 'POST', form: fields });
    }
    assert.ok(atIdp, 'through the IdP\'s logout');
    assert.match(textOf(nav.final.body), /Vous êtes déconnecté/);
    // The next aidant page asks for a login again, at the IdP.
    const after = await abdel.navigate(`${world.proxy.issuer}/espace-aidant`);
    assert.equal(origin(after.final.url), origin(world.upstream.issuer), 'logged out here and there');
  });

  it('sends an aidant without a session to log in first', async () => {
    const nav = await new Browser().navigate(`${world.proxy.issuer}/espace-aidant`);
    assert.equal(origin(nav.final.url), origin(world.upstream.issuer));
  });
});

// Another Michel DUPONT (born another day): a different person with the same name.
const WITH_HOMONYM = {
  ...IMPORT,
  usagers: [...IMPORT.usagers, { ref: 'michel2', franceconnect_sub: 'fc-michel-2', given_name: 'Michel', family_name: 'DUPONT', birthdate: '1990-05-05', gender: 'male', birthplace: '75056', birthcountry: '99100' }],
  mandates: [...IMPORT.mandates, { usager: 'michel2', organisation: SIRET_A, created_by: 'abdel', demarches: ['famille'], days: 365 }],
};

describe('the organisation’s journal', () => {
  let world;
  let demarche;
  let ids;
  let abdel;

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS });
    demarche = demarcheWith(world, await makeSp(world.proxy, SP1));
    ids = importedMandates(world);
    // Four démarches at Acacias for three people: three by Abdel, one by Farid; one at Tilleuls.
    await assertUsable(demarche, ids.michel, 'argent');
    await assertUsable(demarche, ids.michel, 'social');
    await assertUsable(demarche, ids.rose, 'argent');
    await assertUsable(demarche, ids.ines, 'social', { aidant: 'farid' });
    await assertUsable(demarche, ids.nadia, 'logement', { aidant: 'sophie' });
    abdel = new Browser();
  });

  after(async () => world?.stop());

  /** The journal page with `query`, as Abdel (or `browser`), and what it counts. */
  async function journal(query = '', browser = abdel, aidant = 'abdel') {
    const page = await aidantPage(world, browser, `/structure/journal${query}`, aidant);
    const count = (id) => Number(page.body.match(new RegExp(`id="${id}">(\\d+)<`))?.[1]);
    const all = tables(page.body);
    const byCaption = (c) => all.find((t) => t.caption === c);
    const actions = all.find((t) => t.head[1] === 'Action');
    return {
      page,
      text: textOf(page.body),
      demarches: count('count-demarches'),
      usagers: count('count-usagers'),
      byDemarche: byCaption('Démarches par catégorie')?.rows,
      byAidant: byCaption('Démarches par aidant')?.rows,
      rows: actions?.rows ?? [],
    };
  }

  it('counts the démarches and the people, by démarche and by aidant', async () => {
    const j = await journal();
    assert.equal(j.page.status, 200);
    assert.match(j.text, /Journal de Centre social des Acacias/);
    assert.equal(j.demarches, 4);
    assert.equal(j.usagers, 3);
    assert.deepEqual(j.byDemarche, [['Argent', '2'], ['Social - Santé', '2']]);
    assert.deepEqual(j.byAidant, [['Abdel KARIM', '3'], ['Farid BENALI', '1']]);
    const used = j.rows.filter((r) => r[1] === 'Démarche effectuée');
    assert.equal(used.length, 4);
    assert.ok(used.some((r) => r[2] === 'Farid BENALI' && r[3] === 'Inès GARCIA' && r[4] === 'Social - Santé' && r[5] === 'Service de test'), JSON.stringify(used));
    assert.doesNotMatch(j.text, /Nadia HAMDI|Sophie MARTIN/, 'nothing of Tilleuls');
  });

  it('narrows by démarche and by aidant', async () => {
    const argent = await journal('?demarche=argent');
    assert.equal(argent.page.status, 200);
    assert.equal(argent.demarches, 2);
    assert.equal(argent.usagers, 2, 'Michel and Rose');
    assert.deepEqual(argent.byDemarche, [['Argent', '2']]);
    assert.ok(argent.rows.length > 0 && argent.rows.every((r) => r[4] === 'Argent'), JSON.stringify(argent.rows));
    assert.deepEqual(argent.rows.map((r) => r[3]).sort(), ['Michel DUPONT', 'Rose PETIT']);
    // The form shows the filter chosen.
    assert.match(argent.page.body, /<option value="argent" selected>/);

    // Farid, picked from the form's list of the organisation's aidants.
    const form = parseForms(argent.page.body, argent.page.url).find((f) => f.action.endsWith('/structure/journal'));
    const farid = form.inputs.find((i) => i.name === 'aidant').options.find((o) => o.text === 'Farid BENALI');
    assert.ok(farid?.value, 'Farid in the aidant list');
    const his = await journal(`?aidant=${encodeURIComponent(farid.value)}`);
    assert.equal(his.demarches, 1);
    assert.equal(his.usagers, 1);
    assert.deepEqual(his.byAidant, [['Farid BENALI', '1']]);
    assert.ok(his.rows.length > 0 && his.rows.every((r) => r[2] === 'Farid BENALI'), JSON.stringify(his.rows));
    const both = await journal(`?demarche=argent&aidant=${encodeURIComponent(farid.value)}`);
    assert.equal(both.demarches, 0, 'Farid did no Argent démarche');
  });

  it('shows nothing for a period without actions, and refuses a bad date in French', async () => {
    const past = await journal('?du=2020-01-01&au=2020-12-31');
    assert.equal(past.page.status, 200);
    assert.equal(past.demarches, 0);
    assert.equal(past.usagers, 0);
    assert.equal(past.rows.length, 0);
    assert.match(past.text, /Aucune action sur cette période/);
    // Today only: everything above.
    const today = await journal(`?du=${isoDay()}&au=${isoDay()}`);
    assert.equal(today.demarches, 4);

    const bad = await journal('?du=2026-02-30&au=2026-03-01');
    assert.equal(bad.page.status, 400);
    assert.match(bad.text, /Les dates doivent être au format AAAA-MM-JJ/);
    assert.equal(bad.rows.length, 0);
    const words = await journal('?du=hier');
    assert.equal(words.page.status, 400);
    assert.match(words.text, /Les dates doivent être au format AAAA-MM-JJ/);
    const reversed = await journal('?du=2026-03-01&au=2026-02-01');
    assert.equal(reversed.page.status, 400);
    assert.match(reversed.text, /La date de début est après la date de fin/);
    const unknown = await journal('?demarche=peche');
    assert.equal(unknown.page.status, 400);
    assert.match(unknown.text, /Démarche inconnue/);
  });

  it('shows Sophie her organisation’s journal only', async () => {
    const sophie = new Browser();
    const j = await journal('', sophie, 'sophie');
    assert.equal(j.page.status, 200);
    assert.match(j.text, /Journal de Maison France services des Tilleuls/);
    assert.equal(j.demarches, 1);
    assert.equal(j.usagers, 1);
    assert.ok(j.rows.some((r) => r[3] === 'Nadia HAMDI'));
    assert.doesNotMatch(j.text, /DUPONT|PETIT|GARCIA|KARIM|BENALI|Acacias/);
    // Naming Abdel in the filter does not open Acacias' journal.
    const form = parseForms((await journal()).page.body, world.proxy.issuer).find((f) => f.action.endsWith('/structure/journal'));
    const abdelId = form.inputs.find((i) => i.name === 'aidant').options.find((o) => o.text === 'Abdel KARIM').value;
    const peek = await journal(`?aidant=${encodeURIComponent(abdelId)}`, sophie, 'sophie');
    assert.equal(peek.demarches, 0);
    assert.doesNotMatch(peek.text, /DUPONT|PETIT|KARIM/);
  });
});

describe('the organisation’s journal, with two people of the same name', () => {
  let world;
  let demarche;
  let ids;

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: WITH_HOMONYM, upstreamAccounts: UPSTREAM_ACCOUNTS });
    demarche = demarcheWith(world, await makeSp(world.proxy, SP1));
    ids = importedMandates(world);
  });

  after(async () => world?.stop());

  it('counts two people who share a name as two people', async () => {
    // Two different usagers, both named Michel DUPONT: "personnes accompagnées" counts people.
    const usagers = world.proxy.summary.usagers;
    assert.ok(usagers.michel && usagers.michel2 && usagers.michel !== usagers.michel2, JSON.stringify(usagers));
    await assertUsable(demarche, ids.michel, 'argent');
    await assertUsable(demarche, ids.extra[0], 'famille');
    const page = await aidantPage(world, new Browser(), '/structure/journal', 'abdel');
    assert.equal(page.status, 200);
    assert.equal(page.body.match(/id="count-demarches">(\d+)</)?.[1], '2');
    assert.equal(page.body.match(/id="count-usagers">(\d+)</)?.[1], '2', 'two people, not one name');
  });
});

describe('a mandate given until a chosen day', () => {
  let world;

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, franceconnect: true });
  });

  after(async () => world?.stop());

  it('offers a date field between tomorrow and a year ahead', async () => {
    const page = await aidantPage(world, new Browser(), '/mandats/nouveau', 'abdel');
    const form = parseForms(page.body, page.url).find((f) => f.action.endsWith('/mandats/nouveau'));
    const field = form.inputs.find((i) => i.name === 'jusquau');
    assert.equal(field?.type, 'date');
    assert.equal(field.attrs.min, isoDay(1));
    assert.equal(field.attrs.max, isoDay(365));
    assert.ok(form.inputs.some((i) => i.name === 'duree' && i.value === 'date'), 'a "until a date" choice');
    assert.match(textOf(page.body), new RegExp(`au plus tard le ${escapeRe(frenchDay(365))}`));
  });

  it('shows the chosen day on the recap and the attestation', async () => {
    const started = await startMandate(world, { usager: 'fc-jean-pierre', duree: 'date', jusquau: isoDay(40) });
    assert.equal(started.page.status, 200, textOf(started.page.body).slice(0, 300));
    assert.match(textOf(started.page.body), new RegExp(`Ce mandat est valable jusqu'au ${escapeRe(frenchDay(40))}\\s*\\.`));
    const { attestation } = await confirmMandate(started);
    assert.match(textOf(attestation.body), new RegExp(`Valable jusqu'au ${escapeRe(frenchDay(40))}`));
  });

  it('asks again for a day in the past, today, or beyond a year, before FranceConnect', async () => {
    const ASK = /Choisissez une date de fin entre demain et dans 365 jours au plus/;
    for (const jusquau of [isoDay(366), isoDay(-1), isoDay(0), '', '31/12/2026']) {
      const r = await startMandate(world, { usager: 'fc-amina', duree: 'date', jusquau });
      assert.equal(r.page.status, 400, `${jusquau}: ${textOf(r.page.body).slice(0, 200)}`);
      assert.equal(origin(r.page.url), world.proxy.issuer, 'not sent to FranceConnect');
      assert.match(textOf(r.page.body), ASK, jusquau);
    }
    // A year exactly is allowed.
    const year = await startMandate(world, { usager: 'fc-amina', duree: 'date', jusquau: isoDay(365) });
    assert.equal(year.page.status, 200);
    assert.match(textOf(year.page.body), new RegExp(`valable jusqu'au ${escapeRe(frenchDay(365))}`));
  });
});

describe('the retention purge', () => {
  let world;
  let demarche;
  let ids;

  before(async () => {
    // No automatic purge: what is purged is what this test asks for.
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, config: { retention: { automatic: false } } });
    demarche = demarcheWith(world, await makeSp(world.proxy, SP1));
    ids = importedMandates(world);
  });

  after(async () => world?.stop());

  const verify = async () => {
    const out = await world.proxy.cli(['journal', 'verify']);
    const m = /journal intact: (\d+) entries from seq (\d+)/.exec(out);
    assert.ok(m, out);
    return Number(m[1]);
  };

  it('purges only what is older than the retention period, and the journal stays verifiable', async () => {
    await assertUsable(demarche, ids.michel, 'argent');
    const before = await verify();

    // Every journal entry is recent; the only old thing is Lucie's mandate, expired in 2021.
    const first = await world.proxy.cli(['retention', 'purge']);
    assert.match(first, /purged: 0 journal entries, 1 mandates, 0 usagers \(older than 730 days\)/);
    // The purge itself is journaled, and the chain still verifies.
    assert.equal(await verify(), before + 1);
    const csv = await world.proxy.cli(['journal', 'export']);
    assert.equal(csv.split('\n').filter((l) => l.split(',')[2] === 'journal_purged').length, 1, csv);

    // Nothing left to purge: nothing purged, nothing journaled.
    const second = await world.proxy.cli(['retention', 'purge']);
    assert.match(second, /purged: 0 journal entries, 0 mandates, 0 usagers/);
    assert.equal(await verify(), before + 1);

    // Running mandates are untouched.
    await assertUsable(demarche, ids.michel, 'social');
    assert.ok(await verify() > before + 1, 'the new entries chain onto the purge record');
  });
});

// Issue #12: the mediator's personal code card. A structure may require the aidant's own login
// to reach a level before they create a mandate (`mandates.min_aidant_acr`); the level is the
// acr the aidants' IdP proves, mapped as for every démarche (docs/ARCHITECTURE.md, acr).
describe('a deployment asking a strong aidant login to create mandates', () => {
  let world;

  before(async () => {
    world = await startWorld({
      clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS, franceconnect: true,
      config: { mandates: { min_aidant_acr: 'eidas2' } },
    });
  });

  after(async () => world?.stop());

  it('refuses an aidant logged in below it with a clear page, before FranceConnect, and lets one at eidas2 through', async () => {
    const abdel = new Browser();
    const refused = await aidantPage(world, abdel, '/mandats/nouveau', 'abdel');
    assertFrenchError(refused, 403, /identification plus forte/);
    assert.ok(parseForms(refused.body, refused.url).every((f) => !f.action.endsWith('/mandats/nouveau')), 'no form to fill');
    // Farid's IdP login proves eidas2.
    const farid = await startMandate(world, { aidant: 'farid', usager: 'fc-amina', demarches: ['argent'] });
    assert.match(textOf(farid.page.body), /Relisez et confirmez votre mandat/);
    const { mandateId } = await confirmMandate(farid);
    assert.match(mandateId, /^[0-9a-f-]{36}$/);
  });
});

// Issue #12, the shared computer: an aidant who walks away is logged out by the idle limit
// (`session.idle_timeout_secs`), and the next page asks the IdP for a fresh login
// (`prompt=login`, OpenID Connect Core §3.1.2.1), not a silent one.
describe('an aidant idle past session.idle_timeout_secs', () => {
  let world;

  before(async () => {
    world = await startWorld({
      clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      config: { session: { idle_timeout_secs: 2 } },
    });
  });

  after(async () => world?.stop());

  it('is asked to log in again at the IdP, with prompt=login, and sees nothing meanwhile', async () => {
    const abdel = new Browser();
    const page = await aidantPage(world, abdel, '/espace-aidant', 'abdel');
    assert.match(textOf(page.body), /Connecté en tant que Abdel KARIM/);
    // Active within the limit: still in.
    const again = await abdel.navigate(`${world.proxy.issuer}/espace-aidant`);
    assert.equal(new URL(again.final.url).pathname, '/espace-aidant');
    await new Promise((r) => setTimeout(r, 3100));
    const idle = await abdel.navigate(`${world.proxy.issuer}/espace-aidant`);
    assert.equal(origin(idle.final.url), origin(world.upstream.issuer), 'sent to the IdP');
    const asked = idle.steps.map((s) => new URL(s.url)).find((u) => u.pathname.endsWith('/auth') || u.searchParams.has('client_id'));
    assert.ok(asked, idle.steps.map((s) => s.url).join('\n'));
    assert.equal(asked.searchParams.get('prompt'), 'login', asked.href);
    // The IdP's own login page (it lists its test accounts), no page of ours.
    assert.ok(parseForms(idle.final.body, idle.final.url).some((f) => f.buttons.some((b) => b.name === 'sub')), 'the IdP login');
    assert.doesNotMatch(textOf(idle.final.body), /Mon espace aidant|Michel DUPONT/, 'no aidant page shown');
  });
});
