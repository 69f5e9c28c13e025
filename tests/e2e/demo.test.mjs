// The README's first command, as a newcomer uses it: `scripts/demo` starts idp-proxy, the
// development aidant IdP and the demo service provider; a real headless Chromium walks a whole
// démarche, once with the keyboard only and once with JavaScript disabled, and sees the ID
// token with `act`. Then the "done when", in the browser and in French: an aidant gives
// a mandate for a demo usager through the development FranceConnect (form, recap, attestation),
// uses it, the usager sees it in their space (another browser) and ends it, the organisation's
// journal shows both, and the next démarche is refused — keyboard only, and again with
// JavaScript disabled; every page of ours is checked for lang="fr", one h1, a French title and
// a label on every control.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { REPO_ROOT } from './harness.mjs';
import { KEY, Session, startDriver } from './webdriver.mjs';

const PROXY = 'http://127.0.0.1:8080';
const SP = 'http://127.0.0.1:9200';
const IDP = 'http://127.0.0.1:9100';
const FC = 'http://127.0.0.1:9300';
const ORGANISATION = 'Centre social des Acacias';
const SP_NAME = 'Service en ligne de démonstration';
const DAY_MS = 86_400_000;
const FR_DAY = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', day: '2-digit', month: '2-digit', year: 'numeric' });
const ISO_DAY = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit' });
const squash = (t) => String(t ?? '').replace(/\s+/g, ' ').trim();
const escapeRe = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The demo usagers the walks below give a mandate for: at the development FranceConnect
 * (DEMO_USAGERS), none of them in config/demo-data.toml, so the mandate is theirs alone.
 */
const WALKERS = { keyboard: 'fc-jeanne', noJs: 'fc-amina', aidantEnds: 'fc-jean-pierre' };

async function demoUsager(sub) {
  const { DEMO_USAGERS } = await import(pathToFileURL(join(REPO_ROOT, 'dev', 'franceconnect.mjs')).href);
  const u = DEMO_USAGERS.find((a) => a.sub === sub);
  assert.ok(u, `${sub} is a demo usager of dev/franceconnect.mjs`);
  const demoData = readFileSync(join(REPO_ROOT, 'config', 'demo-data.toml'), 'utf8');
  assert.doesNotMatch(demoData, new RegExp(`franceconnect_sub\\s*=\\s*"${escapeRe(sub)}"`),
    `${sub} must have no mandate in config/demo-data.toml`);
  const [y, m, d] = u.birthdate.split('-');
  return {
    sub,
    name: `${u.given_name} ${u.family_name}`,
    born: `${u.gender === 'female' ? 'née' : 'né'} le ${d}/${m}/${y}`,
  };
}

/** The page of a failed step: where the browser is and what it shows. */
async function where(s) {
  try {
    return `\n  at ${await s.url()} — « ${await s.title()} »\n  page text: ${squash(await s.bodyText()).slice(0, 1500)}`;
  } catch (e) {
    return `\n  (page unreadable: ${e.message})`;
  }
}

/** Runs one step of a walk; a failure names the step and shows the page. */
async function step(s, name, fn) {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${name}: ${e.message}${await where(s)}`, { cause: e });
  }
}

/** Waits until the browser's URL passes `test` (a prefix, a RegExp or a predicate). */
async function waitUrl(s, test, what, timeout = 15_000) {
  const ok = typeof test === 'string' ? (u) => u.startsWith(test)
    : test instanceof RegExp ? (u) => test.test(u) : test;
  try {
    await s.waitFor(async () => ok(await s.url()), what, timeout);
  } catch (e) {
    throw new Error(`${e.message}${await where(s)}`);
  }
  return s.url();
}

// What a page says about itself and its controls, read in the page (the script runs through
// WebDriver, JavaScript disabled in the page or not).
const PAGE_FACTS = `
const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length)
  && getComputedStyle(e).visibility !== 'hidden';
const text = (e) => (e ? e.textContent : '').replace(/\\s+/g, ' ').trim();
const accessibleName = (e) => {
  const by = (e.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
    .map((id) => text(document.getElementById(id))).join(' ');
  const labels = e.labels ? [...e.labels].map(text).join(' ') : '';
  const own = e.tagName === 'BUTTON' ? text(e)
    : ['submit', 'button', 'reset'].includes(e.type) ? (e.value || '') : '';
  return (by + ' ' + (e.getAttribute('aria-label') || '') + ' ' + labels + ' ' + own).trim();
};
const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')].filter(visible);
return {
  lang: document.documentElement.getAttribute('lang'),
  h1: [...document.querySelectorAll('h1')].map(text),
  controls: controls.length,
  unlabelled: controls.filter((e) => !accessibleName(e)).map((e) => e.outerHTML.slice(0, 200)),
  fieldsetsWithoutLegend: [...document.querySelectorAll('fieldset')]
    .filter((f) => !text(f.querySelector(':scope > legend'))).map((f) => f.outerHTML.slice(0, 120)),
};`;

// English a page of ours should not show (its text is French).
const ENGLISH = /\b(the|and|you|your|please|error|submit|sign in|log ?in|log ?out|not found|forbidden|internal server|expired|mandate)\b/i;

/**
 * One of our pages, as a person reads it: its URL is ours, <html lang="fr">, one h1, the French
 * title, every visible control (input, date field, select, button) with a label or text, every
 * fieldset with a legend, no English. Returns the page's text (whitespace squashed).
 */
async function ourPage(s, { title, h1, controls = false }) {
  const url = await s.url();
  assert.ok(url.startsWith(`${PROXY}/`), `an idp-proxy page, not ${url}`);
  const t = await s.title();
  assert.equal(t, `${title} — idp-proxy`, 'the French title of the page');
  const facts = await s.script(PAGE_FACTS);
  assert.equal(facts.lang, 'fr', '<html lang="fr">');
  assert.equal(facts.h1.length, 1, `exactly one h1, saw ${JSON.stringify(facts.h1)}`);
  if (h1 instanceof RegExp) assert.match(facts.h1[0], h1); else assert.equal(facts.h1[0], h1 ?? title);
  assert.deepEqual(facts.unlabelled, [], 'every visible input, date field, select and button has a label or text');
  assert.deepEqual(facts.fieldsetsWithoutLegend, [], 'every fieldset has a legend');
  if (controls) assert.ok(facts.controls > 0, 'the page has its form controls');
  const text = squash(await s.bodyText());
  const english = text.match(ENGLISH);
  assert.equal(english, null, `English on a French page: « ${english?.[0]} » in « ${text.slice(Math.max(0, (english?.index ?? 0) - 60), (english?.index ?? 0) + 60)} »`);
  return text;
}

/**
 * Presses Tab until the focus is on an element matching `css`, as a keyboard user would; on
 * our pages the focus must be visible (an outline) when it gets there.
 */
async function tabTo(s, css, what, { ours = true, max = 80 } = {}) {
  for (let i = 0; i < max; i++) {
    await s.keys(KEY.TAB);
    const focus = await s.script(`const e = document.activeElement;
      return e && e.matches(arguments[0]) ? { outline: getComputedStyle(e).outlineStyle } : null;`, [css]);
    if (focus) {
      if (ours) assert.notEqual(focus.outline, 'none', `the keyboard focus on ${what} is visible`);
      return s.active();
    }
  }
  throw new Error(`Tab never reached ${what} (${css}) in ${max} presses`);
}

/** Tab to a checkbox, tick it with Space. */
async function tickWithSpace(s, css, what, opts) {
  const el = await tabTo(s, css, what, opts);
  await s.keys(KEY.SPACE);
  assert.equal(await s.selected(el), true, `${what} is ticked with Space`);
  return el;
}

/** In a focused radio group (or select), arrow down until the focused/selected value is `value`. */
async function arrowTo(s, value, what, { select } = {}) {
  for (let i = 0; i < 40; i++) {
    const current = select ? await s.property(select, 'value') : await s.attribute(await s.active(), 'value');
    if (current === value) {
      if (!select) assert.equal(await s.selected(await s.active()), true, `${what} is chosen`);
      return;
    }
    await s.keys(KEY.ARROW_DOWN);
  }
  throw new Error(`the arrow keys never reached ${what} (${value})`);
}

/** Types a day into a focused date field, in the order the browser's locale shows its parts. */
async function typeDay(s, field, iso) {
  const order = await s.script(`return new Intl.DateTimeFormat().formatToParts(new Date(2026, 11, 31))
    .filter((p) => p.type !== 'literal').map((p) => p.type)`);
  const [year, month, day] = iso.split('-');
  const parts = { year, month, day };
  await s.keys(...order.flatMap((p) => [...parts[p]]));
  assert.equal(await s.property(field, 'value'), iso, `the date field holds ${iso} (typed as ${order.join('/')})`);
}

/** The body rows of the table whose caption matches, as the texts of their cells. */
function tableRows(s, caption) {
  return s.script(`const t = [...document.querySelectorAll('table')]
      .find((x) => x.caption && new RegExp(arguments[0]).test(x.caption.textContent));
    return t ? [...t.tBodies[0].rows].map((r) => [...r.cells].map((c) => c.textContent.replace(/\\s+/g, ' ').trim())) : null;`,
  [caption]);
}

/** A definition list (dt/dd) as an object. */
function definitions(s) {
  return s.script(`return Object.fromEntries([...document.querySelectorAll('dt')]
    .map((dt) => [dt.textContent.trim(), dt.nextElementSibling.textContent.replace(/\\s+/g, ' ').trim()]))`);
}

async function waitUp(url, proc, logs) {
  for (let i = 0; i < 600; i++) {
    if (proc.exitCode !== null) throw new Error(`scripts/demo exited ${proc.exitCode}:\n${logs.join('')}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} never answered:\n${logs.join('')}`);
}

describe('the demo (README first command) in a real browser', () => {
  let demo;
  let driver;
  const logs = [];
  const sessions = new Set(); // browsers the "done when" walks keep open from one step to the next
  const dir = mkdtempSync(join(tmpdir(), 'idp-proxy-demo-'));

  before(async () => {
    // The demo's state goes to a temp dir through the documented environment overrides.
    const env = { ...process.env,
      IDP_PROXY_DATABASE__URL: `sqlite://${join(dir, 'demo.sqlite')}`,
      IDP_PROXY_KEYS__DIR: join(dir, 'keys') };
    delete env.IDP_PROXY_BIN;
    demo = spawn(join(REPO_ROOT, 'scripts', 'demo'), [], { cwd: REPO_ROOT, env, detached: true });
    demo.stdout.on('data', (d) => logs.push(String(d)));
    demo.stderr.on('data', (d) => logs.push(String(d)));
    await waitUp(`${PROXY}/.well-known/openid-configuration`, demo, logs);
    await waitUp(`${SP}/`, demo, logs);
    driver = await startDriver();
  });

  after(async () => {
    for (const s of sessions) await s.close().catch(() => {});
    driver?.stop();
    // The script and its children form one process group.
    try { process.kill(-demo.pid, 'SIGTERM'); } catch { /* already gone */ }
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves discovery', async () => {
    const d = await (await fetch(`${PROXY}/.well-known/openid-configuration`)).json();
    assert.equal(d.issuer, PROXY);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  });

  async function loginAsAbdel(s) {
    await s.go(`${SP}/`);
    await s.click(await s.find('form[action="/login"] button, a[href^="/login"]'));
    await s.waitFor(async () => (await s.url()).startsWith('http://127.0.0.1:9100/'), 'the development IdP');
    await s.click(await s.find('button[name="sub"][value="abdel"]'));
    await s.waitFor(async () => (await s.url()).startsWith(`${PROXY}/interaction/`), 'the choice page');
    assert.match(await s.title(), /Choisir la personne accompagnée/);
  }

  async function assertTokenShown(s) {
    await s.waitFor(async () => (await s.url()).startsWith(`${SP}/callback`), 'the demo SP callback');
    const text = await s.bodyText();
    assert.match(text, /Michel/);
    assert.match(text, /Abdel KARIM/, 'the aidant who acted is shown');
    assert.match(text, /Centre social des Acacias/);
    assert.match(text, /"act"/, 'the decoded ID token carries act');
  }

  it('walks a démarche with the keyboard only, every field labelled', async () => {
    const s = await Session.open(driver);
    try {
      await loginAsAbdel(s);
      await ourPage(s, { title: 'Choisir la personne accompagnée', h1: 'Pour qui faites-vous cette démarche ?', controls: true });
      // Tab into the radio group, pick the first démarche, tick the certification, submit.
      await s.keys(KEY.TAB);
      assert.equal(await s.attribute(await s.active(), 'name'), 'choice');
      await s.keys(KEY.SPACE, KEY.TAB);
      assert.equal(await s.attribute(await s.active(), 'name'), 'certify');
      await s.keys(KEY.SPACE, KEY.TAB, KEY.ENTER);
      await assertTokenShown(s);
    } finally {
      await s.close();
    }
  });

  it('walks a démarche with JavaScript disabled', async () => {
    const s = await Session.open(driver, { javascript: false });
    try {
      await loginAsAbdel(s);
      await s.click((await s.findAll('input[name="choice"]'))[0]);
      await s.click(await s.find('input[name="certify"]'));
      await s.click(await s.find('button[type="submit"]'));
      await assertTokenShown(s);
    } finally {
      await s.close();
    }
  });

  // ---------------------------------------------------------------------------------------------
  // The "done when", keyboard only: Tab, Space, Enter and the arrow keys, no click.

  /** A browser the walk keeps across its steps (closed at the end of the file). */
  async function browser(options) {
    const s = await Session.open(driver, options);
    sessions.add(s);
    return s;
  }

  async function close(s) {
    sessions.delete(s);
    await s.close();
  }

  /** At the development aidant IdP (not ours): Abdel logs in, by keyboard or by a click. */
  async function idpLogin(s, { keyboard }) {
    await waitUrl(s, `${IDP}/`, 'the development aidant IdP');
    if (keyboard) {
      await tabTo(s, 'button[name="sub"][value="abdel"]', 'Abdel at the development IdP', { ours: false });
      await s.keys(KEY.ENTER);
    } else {
      await s.click(await s.find('button[name="sub"][value="abdel"]'));
    }
  }

  /** At the development FranceConnect (not ours): the usager logs in. */
  async function franceConnectLogin(s, usager, { keyboard }) {
    await waitUrl(s, `${FC}/interaction/`, 'the development FranceConnect login page');
    assert.match(await s.bodyText(), new RegExp(escapeRe(usager.name)));
    const button = `button[name="sub"][value="${usager.sub}"]`;
    if (keyboard) {
      await tabTo(s, button, `${usager.name} at the development FranceConnect`, { ours: false });
      await s.keys(KEY.ENTER);
    } else {
      await s.click(await s.find(button));
    }
  }

  /** From the demo SP's home to idp-proxy's choice page (logging Abdel in if needed). */
  async function startDemarche(s, { keyboard }) {
    await s.go(`${SP}/`);
    if (keyboard) {
      await tabTo(s, 'form[action="/login"] button[type="submit"]', 'the demo SP login button', { ours: false });
      await s.keys(KEY.ENTER);
    } else {
      await s.click(await s.find('form[action="/login"] button[type="submit"]'));
    }
    const url = await waitUrl(s, (u) => u.startsWith(`${PROXY}/interaction/`) || u.startsWith(`${IDP}/`),
      'the choice page or the aidant IdP');
    if (url.startsWith(IDP)) {
      await idpLogin(s, { keyboard });
      await waitUrl(s, `${PROXY}/interaction/`, 'the choice page');
    }
    return ourPage(s, { title: 'Choisir la personne accompagnée', h1: 'Pour qui faites-vous cette démarche ?' });
  }

  /** The demo SP's callback page: the ID token's claims, and its text. */
  async function spResult(s) {
    await waitUrl(s, `${SP}/callback`, 'the demo SP callback');
    const text = squash(await s.bodyText());
    const pre = await s.findAll('pre');
    assert.ok(pre.length >= 2, `the demo SP shows the decoded ID token: ${text.slice(0, 800)}`);
    return { text, claims: JSON.parse(await s.text(pre[1])) };
  }

  /** The recap sentence, for `usager` giving a mandate to the organisation for `titles` until `expires`. */
  function assertRecap(text, usager, titles, expires) {
    assert.ok(text.includes(`Vous, ${usager.name}, ${usager.born}, donnez mandat à ${ORGANISATION} pour effectuer en votre nom les démarches suivantes :`),
      'the recap speaks to the usager, with their name and birth date');
    for (const t of titles) assert.ok(text.includes(t), `the recap lists ${t}`);
    assert.ok(expires.some((d) => text.includes(`Ce mandat est valable jusqu'au ${d}.`)),
      `the recap gives the end date (${expires.join(' or ')})`);
    assert.ok(text.includes('Vous pouvez y mettre fin à tout moment, auprès de cette structure ou dans votre espace personnel, en vous identifiant avec FranceConnect.'),
      'the recap says the mandate can be ended at any time');
  }

  /** The attestation page: what it states; its reference is the mandate of the URL. */
  async function assertAttestation(s, usager, demarches, expires) {
    const url = await waitUrl(s, new RegExp(`^${escapeRe(PROXY)}/mandats/[^/]+/attestation$`), 'the attestation');
    const mandateId = url.split('/').at(-2);
    await ourPage(s, { title: 'Attestation de mandat' });
    const dl = await definitions(s);
    assert.equal(dl['Personne qui donne mandat'], `${usager.name} (${usager.born})`);
    assert.equal(dl['Structure mandatée'], `${ORGANISATION} (SIRET 11111111100011)`);
    assert.equal(dl['Enregistré par'], 'Abdel KARIM');
    assert.equal(dl['Démarches'], demarches.join(', '));
    assert.equal(dl['Donné le'], FR_DAY.format(new Date()));
    assert.ok(expires.includes(dl["Valable jusqu'au"]), `valid until ${expires.join(' or ')}, saw ${dl["Valable jusqu'au"]}`);
    assert.equal(dl['Référence'], mandateId, 'the reference is the mandate id');
    assert.match(dl['Code de vérification'], /^[0-9a-f]{16}$/, 'a check code');
    assert.match(await s.bodyText(), /mettre fin à ce mandat à tout moment/);
    assert.ok((await s.source()).includes('@media print'), 'the attestation has a print style sheet');
    return { mandateId, checkCode: dl['Code de vérification'] };
  }

  const walk = {}; // what the keyboard walk's steps hand to the next ones

  it('done when (keyboard only): the aidant gives a mandate through FranceConnect, recap and attestation', async () => {
    const usager = await demoUsager(WALKERS.keyboard);
    const s = await browser();
    walk.aidant = s;
    walk.usager = usager;
    await step(s, 'home page → aidant space', async () => {
      await s.go(`${PROXY}/`);
      await ourPage(s, { title: 'Accueil', h1: 'Agir pour une personne, avec son mandat' });
      await tabTo(s, 'a[href="/espace-aidant"]', 'the link to the aidant space');
      await s.keys(KEY.ENTER);
      await idpLogin(s, { keyboard: true });
      await waitUrl(s, (u) => u === `${PROXY}/espace-aidant`, 'the aidant space after the login');
      const text = await ourPage(s, { title: 'Mon espace aidant' });
      assert.ok(text.includes(`Connecté en tant que Abdel KARIM — ${ORGANISATION}.`));
      assert.ok(!text.includes(usager.name), `${usager.name} is not followed yet`);
    });
    let expires;
    await step(s, 'new mandate form, keyboard only', async () => {
      await tabTo(s, 'a[href="/mandats/nouveau"]', 'the "Nouveau mandat" link');
      await s.keys(KEY.ENTER);
      await waitUrl(s, (u) => u === `${PROXY}/mandats/nouveau`, 'the new mandate form');
      await ourPage(s, { title: 'Nouveau mandat', controls: true });
      await tickWithSpace(s, 'input[name="demarches"][value="logement"]', 'the « Logement » box');
      await tickWithSpace(s, 'input[name="demarches"][value="argent"]', 'the « Argent » box');
      // Into the duration radio group, then the arrow keys: "Un mois".
      await tabTo(s, 'input[name="duree"]', 'the duration choices');
      await arrowTo(s, '31', 'the duration « Un mois »');
      await tabTo(s, 'form[action="/mandats/nouveau"] button[type="submit"]', 'the « Continuer avec FranceConnect » button');
      assert.equal(squash(await s.text(await s.active())), 'Continuer avec FranceConnect');
      const t0 = Date.now();
      await s.keys(KEY.ENTER);
      await franceConnectLogin(s, usager, { keyboard: true });
      expires = [...new Set([t0, Date.now()].map((t) => FR_DAY.format(new Date(t + 31 * DAY_MS))))];
    });
    await step(s, 'recap, consent by keyboard', async () => {
      await waitUrl(s, `${PROXY}/mandats/recapitulatif/`, 'the recap after FranceConnect', 20_000);
      const text = await ourPage(s, { title: 'Confirmer le mandat', h1: 'Relisez et confirmez votre mandat', controls: true });
      assertRecap(text, usager, ['Logement', 'Argent'], expires);
      await tickWithSpace(s, 'input[name="consent"]', 'the consent box');
      await tabTo(s, 'form[action^="/mandats/recapitulatif/"] button[type="submit"]', 'the « Je donne mandat » button');
      assert.equal(squash(await s.text(await s.active())), 'Je donne mandat');
      await s.keys(KEY.ENTER);
    });
    await step(s, 'attestation', async () => {
      const { mandateId } = await assertAttestation(s, usager, ['Logement', 'Argent'], expires);
      walk.mandateId = mandateId;
      walk.expires = expires;
      // Printed, the attestation drops the navigation (print media emulated by the browser).
      const navDisplay = () => s.script("return getComputedStyle(document.querySelector('nav.no-print')).display");
      assert.notEqual(await navDisplay(), 'none', 'on screen, the attestation links to the aidant space');
      await s.cdp('Emulation.setEmulatedMedia', { media: 'print' });
      try {
        assert.equal(await navDisplay(), 'none', 'the print style sheet hides the navigation');
      } finally {
        await s.cdp('Emulation.setEmulatedMedia', { media: '' });
      }
    });
    await step(s, 'aidant space lists the new mandate', async () => {
      await tabTo(s, 'a[href="/espace-aidant"]', 'the « Mon espace aidant » link of the attestation');
      await s.keys(KEY.ENTER);
      await waitUrl(s, (u) => u === `${PROXY}/espace-aidant`, 'the aidant space');
      const text = await ourPage(s, { title: 'Mon espace aidant', controls: true });
      assert.ok(text.includes(`${usager.name} (${usager.born})`), `${usager.name} is followed`);
      assert.ok(walk.expires.some((d) => text.includes(`Mandat valable jusqu'au ${d}, pour : Logement, Argent.`)),
        'the mandate, its end date and démarches');
      assert.equal((await s.findAll(`a[href="/mandats/${walk.mandateId}/attestation"]`)).length, 1, 'a link to the attestation');
      const actions = await tableRows(s, 'Les plus récentes');
      assert.ok(actions?.some((r) => r[1] === 'Mandat donné' && r[2] === usager.name), `the aidant's actions show the mandate given: ${JSON.stringify(actions)}`);
    });
  });

  it('done when (keyboard only): the aidant uses the new mandate at the demo service', async () => {
    const { aidant: s, usager, mandateId } = walk;
    assert.ok(mandateId, 'the mandate of the previous step');
    await step(s, 'choice page', async () => {
      const text = await startDemarche(s, { keyboard: true });
      assert.ok(text.includes(usager.name), `${usager.name} is offered`);
      await tabTo(s, 'input[name="choice"]', 'the choice of person and démarche');
      await arrowTo(s, `${mandateId}:logement`, `${usager.name} — Logement`);
      await tickWithSpace(s, 'input[name="certify"]', 'the certification box');
      await tabTo(s, 'form[action^="/interaction/"] button[type="submit"]', 'the « Continuer la démarche » button');
      await s.keys(KEY.ENTER);
    });
    await step(s, 'the demo SP receives the usager and the aidant', async () => {
      const { text, claims } = await spResult(s);
      assert.ok(text.includes(`Démarche effectuée par l'aidant : Abdel KARIM (${ORGANISATION})`), 'the SP shows who acted');
      const [given, family] = [usager.name.slice(0, usager.name.lastIndexOf(' ')), usager.name.slice(usager.name.lastIndexOf(' ') + 1)];
      assert.equal(claims.given_name, given);
      assert.equal(claims.family_name, family);
      assert.equal(claims.act?.given_name, 'Abdel', `act in the ID token: ${JSON.stringify(claims.act)}`);
      assert.equal(claims.act?.family_name, 'KARIM');
      assert.equal(claims.act?.organisation?.siret, '11111111100011');
      assert.equal(claims.mandate?.id, mandateId, 'the ID token names the new mandate');
      assert.deepEqual(claims.rep_scope, ['logement']);
    });
    await step(s, 'a second démarche, left on the choice page', async () => {
      // The aidant starts another démarche for the same person and ticks everything, but the
      // usager ends the mandate (next step) before the aidant submits.
      await startDemarche(s, { keyboard: true });
      await tabTo(s, 'input[name="choice"]', 'the choice of person and démarche');
      await arrowTo(s, `${mandateId}:argent`, `${usager.name} — Argent`);
      await tickWithSpace(s, 'input[name="certify"]', 'the certification box');
      walk.pendingChoice = await s.url();
    });
  });

  it('done when (keyboard only): the usager sees the mandate and its use in their space, on another device, and ends it', async () => {
    const { usager, mandateId } = walk;
    assert.ok(mandateId, 'the mandate of the previous steps');
    const u = await browser();
    try {
      await step(u, 'home page → usager space login', async () => {
        await u.go(`${PROXY}/`);
        await tabTo(u, 'a[href="/mon-espace"]', 'the link to the usager space');
        await u.keys(KEY.ENTER);
        await waitUrl(u, (x) => x === `${PROXY}/mon-espace`, 'the usager space');
        const text = await ourPage(u, { title: 'Mon espace — mes mandats', h1: 'Mes mandats' });
        assert.ok(text.includes("S'identifier avec FranceConnect"));
        await tabTo(u, 'a[href="/mon-espace/connexion"]', 'the « S\'identifier avec FranceConnect » link');
        await u.keys(KEY.ENTER);
        await franceConnectLogin(u, usager, { keyboard: true });
        await waitUrl(u, (x) => x === `${PROXY}/mon-espace`, 'the usager space after FranceConnect', 20_000);
      });
      await step(u, 'the usager space shows the mandate and the démarche', async () => {
        const text = await ourPage(u, { title: 'Mon espace — mes mandats', h1: 'Mes mandats', controls: true });
        assert.ok(text.includes(`Vous êtes identifié avec FranceConnect : ${usager.name}.`));
        const card = squash(await u.text(await u.find(`section[aria-labelledby="m-${mandateId}"]`)));
        assert.ok(card.includes(ORGANISATION), card);
        assert.ok(walk.expires.some((d) => card.includes(`valable jusqu'au ${d}`)), card);
        assert.ok(card.includes('Logement') && card.includes('Argent'), card);
        const history = await tableRows(u, 'Les plus récents');
        assert.ok(history?.some((r) => r[1] === 'Démarche effectuée' && r[2] === 'Logement' && r[3] === SP_NAME
          && r[4] === 'Abdel KARIM' && r[5] === ORGANISATION), `the history shows the démarche: ${JSON.stringify(history)}`);
        assert.ok(history.some((r) => r[1] === 'Mandat donné'), `the history shows the mandate given: ${JSON.stringify(history)}`);
      });
      await step(u, 'the usager ends the mandate by keyboard', async () => {
        await tickWithSpace(u, `form[action="/mon-espace/mandats/${mandateId}/fin"] input[name="confirm"]`, 'the end confirmation box');
        await tabTo(u, `form[action="/mon-espace/mandats/${mandateId}/fin"] button[type="submit"]`, 'the « Mettre fin à ce mandat » button');
        assert.equal(squash(await u.text(await u.active())), 'Mettre fin à ce mandat');
        await u.keys(KEY.ENTER);
        await waitUrl(u, (x) => x === `${PROXY}/mon-espace?termine=1`, 'the usager space after the end');
        const text = await ourPage(u, { title: 'Mon espace — mes mandats', h1: 'Mes mandats' });
        assert.equal(squash(await u.text(await u.find('[role="status"]'))), "Le mandat a pris fin. Plus aucun aidant ne peut l'utiliser.");
        assert.ok(text.includes("Vous n'avez aucun mandat en cours."));
        assert.ok(text.includes('Mandats terminés'));
        assert.ok(text.includes(`${ORGANISATION} — donné le ${FR_DAY.format(new Date())}, terminé le ${FR_DAY.format(new Date())}`),
          'the ended mandate, with its end date');
        const history = await tableRows(u, 'Les plus récents');
        assert.ok(history?.some((r) => r[1] === 'Fin du mandat'), `the history shows the end: ${JSON.stringify(history)}`);
      });
      await step(u, 'the usager logs out', async () => {
        await tabTo(u, 'form[action="/mon-espace/deconnexion"] button[type="submit"]', 'the « Se déconnecter » button');
        await u.keys(KEY.ENTER);
        await waitUrl(u, `${PROXY}/mon-espace/deconnexion`, 'the logged-out page');
        await ourPage(u, { title: 'Vous êtes déconnecté' });
        await u.go(`${PROXY}/mon-espace`);
        assert.ok((await ourPage(u, { title: 'Mon espace — mes mandats', h1: 'Mes mandats' })).includes("S'identifier avec FranceConnect"),
          'the space asks for FranceConnect again');
      });
    } finally {
      await close(u);
    }
  });

  it('done when (keyboard only): the next démarche for that usager is refused, in French', async () => {
    const { aidant: s, usager, mandateId, pendingChoice } = walk;
    assert.ok(pendingChoice, 'the choice page left open by the use step');
    await step(s, 'submitting the choice made before the end', async () => {
      assert.equal(await s.url(), pendingChoice);
      await tabTo(s, 'form[action^="/interaction/"] button[type="submit"]', 'the « Continuer la démarche » button');
      await s.keys(KEY.ENTER);
      await s.waitFor(async () => (await s.findAll('[role="alert"]')).length > 0, 'the refusal');
      const text = await ourPage(s, { title: 'Choisir la personne accompagnée', h1: 'Pour qui faites-vous cette démarche ?' });
      assert.equal(squash(await s.text(await s.find('[role="alert"]'))),
        "Ce mandat a été révoqué : il ne permet plus d'agir pour cette personne.");
      assert.ok(!text.includes(usager.name), `${usager.name} is no longer offered`);
      assert.ok((await s.url()).startsWith(`${PROXY}/interaction/`), 'no code went to the demo SP');
    });
    await step(s, 'a new démarche', async () => {
      const text = await startDemarche(s, { keyboard: true });
      assert.ok(!text.includes(usager.name), `${usager.name} is no longer offered`);
      assert.equal((await s.findAll(`input[name="choice"][value^="${mandateId}:"]`)).length, 0);
      assert.ok(text.includes('Michel DUPONT'), 'the demo data mandate is still offered');
    });
  });

  it('done when (keyboard only): the organisation journal shows the démarche and the end, and filters by keyboard', async () => {
    const { aidant: s, usager } = walk;
    assert.ok(s, 'the aidant browser of the previous steps');
    await step(s, 'aidant space → journal', async () => {
      await s.go(`${PROXY}/espace-aidant`);
      const text = await ourPage(s, { title: 'Mon espace aidant' });
      assert.ok(!text.includes(`${usager.name} (${usager.born})`), `${usager.name} is no longer followed`);
      const actions = await tableRows(s, 'Les plus récentes');
      assert.ok(actions?.some((r) => r[1] === 'Démarche effectuée' && r[2] === usager.name && r[3] === 'Logement' && r[4] === SP_NAME),
        `the aidant's own actions show the démarche: ${JSON.stringify(actions)}`);
      await tabTo(s, 'a[href="/structure/journal"]', 'the « Journal de la structure » link');
      await s.keys(KEY.ENTER);
      await waitUrl(s, (u) => u === `${PROXY}/structure/journal`, 'the organisation journal');
    });
    let all;
    await step(s, 'the journal, unfiltered', async () => {
      await ourPage(s, { title: 'Journal de la structure', h1: `Journal de ${ORGANISATION}`, controls: true });
      const count = async (id) => Number(await s.text(await s.find(`#${id}`)));
      assert.ok(await count('count-demarches') >= 1, 'démarches counted');
      assert.ok(await count('count-usagers') >= 1, 'people counted');
      all = await tableRows(s, 'actions affichées');
      assert.ok(all, 'the actions table');
      assert.ok(all.some((r) => r[1] === 'Démarche effectuée' && r[2] === 'Abdel KARIM' && r[3] === usager.name && r[4] === 'Logement' && r[5] === SP_NAME),
        `the journal shows the démarche: ${JSON.stringify(all)}`);
      assert.ok(all.some((r) => r[1] === 'Fin du mandat' && r[3] === usager.name), `the journal shows the end of the mandate: ${JSON.stringify(all)}`);
      assert.ok(all.some((r) => r[1] === 'Mandat donné' && r[3] === usager.name), `the journal shows the mandate given: ${JSON.stringify(all)}`);
    });
    await step(s, 'filter by démarche with the keyboard', async () => {
      const select = await tabTo(s, 'select#demarche', 'the « Démarche » filter');
      await arrowTo(s, 'logement', 'the « Logement » option', { select });
      await tabTo(s, 'form[action="/structure/journal"] button[type="submit"]', 'the « Afficher » button');
      assert.equal(squash(await s.text(await s.active())), 'Afficher');
      await s.keys(KEY.ENTER);
      await waitUrl(s, (u) => u.startsWith(`${PROXY}/structure/journal?`) && new URL(u).searchParams.get('demarche') === 'logement',
        'the filtered journal');
      await ourPage(s, { title: 'Journal de la structure', h1: `Journal de ${ORGANISATION}`, controls: true });
      assert.equal(await s.property(await s.find('select#demarche'), 'value'), 'logement', 'the filter stays chosen');
      const rows = await tableRows(s, 'actions affichées');
      assert.ok(rows?.length >= 1, 'the use for Logement is shown');
      assert.ok(rows.length < all.length, `fewer rows (${rows.length}) than unfiltered (${all.length})`);
      assert.deepEqual([...new Set(rows.map((r) => r[4]))], ['Logement'], `only Logement: ${JSON.stringify(rows)}`);
      assert.ok(rows.some((r) => r[1] === 'Démarche effectuée' && r[3] === usager.name));
      assert.ok(Number(await s.text(await s.find('#count-demarches'))) >= 1);
    });
    await close(s);
    delete walk.aidant;
  });

  // ---------------------------------------------------------------------------------------------
  // The same, JavaScript disabled (clicks; and one end by keyboard), with other demo usagers.

  /** Aidant with JavaScript off: gives a mandate, returns its id and the end dates accepted. */
  async function giveMandateWithoutJs(s, usager, { demarches, titles, duree, day }) {
    await s.go(`${PROXY}/mandats/nouveau`);
    if ((await s.url()).startsWith(IDP)) {
      await idpLogin(s, { keyboard: false });
      await waitUrl(s, (u) => u === `${PROXY}/mandats/nouveau`, 'the new mandate form after the login');
    }
    await ourPage(s, { title: 'Nouveau mandat', controls: true });
    for (const d of demarches) await s.click(await s.find(`input[name="demarches"][value="${d}"]`));
    await s.click(await s.find(`input[name="duree"][value="${duree}"]`));
    if (day) await typeDay(s, await tabTo(s, '#jusquau', 'the end date field'), day);
    const t0 = Date.now();
    await s.click(await s.find('form[action="/mandats/nouveau"] button[type="submit"]'));
    await franceConnectLogin(s, usager, { keyboard: false });
    const expires = day ? [FR_DAY.format(new Date(`${day}T12:00:00Z`))]
      : [...new Set([t0, Date.now()].map((t) => FR_DAY.format(new Date(t + Number(duree) * DAY_MS))))];
    await waitUrl(s, `${PROXY}/mandats/recapitulatif/`, 'the recap after FranceConnect', 20_000);
    const text = await ourPage(s, { title: 'Confirmer le mandat', h1: 'Relisez et confirmez votre mandat', controls: true });
    assertRecap(text, usager, titles, expires);
    await s.click(await s.find('input[name="consent"]'));
    await s.click(await s.find('form[action^="/mandats/recapitulatif/"] button[type="submit"]'));
    const { mandateId } = await assertAttestation(s, usager, titles, expires);
    return { mandateId, expires };
  }

  it('done when, JavaScript disabled: give a mandate (chosen end day), use it, the usager ends it, the journal filters', async () => {
    const usager = await demoUsager(WALKERS.noJs);
    const a = await browser({ javascript: false });
    const v = await browser({ javascript: false });
    try {
      await a.go(`data:text/html,${encodeURIComponent('<title>off</title><script>document.title = "on"</script>')}`);
      assert.equal(await a.title(), 'off', 'JavaScript is disabled in this browser');
      await a.go(`${PROXY}/espace-aidant`);
      await step(a, 'aidant login, JS off', async () => {
        await idpLogin(a, { keyboard: false });
        await waitUrl(a, (u) => u === `${PROXY}/espace-aidant`, 'the aidant space');
        await ourPage(a, { title: 'Mon espace aidant' });
        await a.click(await a.find('a[href="/mandats/nouveau"]'));
        await waitUrl(a, (u) => u === `${PROXY}/mandats/nouveau`, 'the new mandate form');
      });
      await step(a, 'the form checks on the server, JS off', async () => {
        // No box ticked: the server answers in French, the form is shown again.
        await a.click(await a.find('input[name="duree"][value="182"]'));
        await a.click(await a.find('form[action="/mandats/nouveau"] button[type="submit"]'));
        await a.waitFor(async () => (await a.findAll('[role="alert"]')).length > 0, 'the error');
        await ourPage(a, { title: 'Nouveau mandat', controls: true });
        // The error summary names what to correct and links to the field (issue #12); the
        // duration chosen is kept.
        assert.equal(squash(await a.text(await a.find('[role="alert"]'))), 'Une information est à corriger Choisissez au moins une démarche.');
        assert.equal(await a.script('return document.querySelector(\'#erreurs a\').getAttribute("href")'), '#demarche-papiers');
        assert.equal(await a.property(await a.find('input[name="duree"][value="182"]'), 'checked'), true, 'the duration kept');
      });
      const day = ISO_DAY.format(new Date(Date.now() + 45 * DAY_MS));
      const given = await step(a, 'new mandate, recap, attestation, JS off', () => giveMandateWithoutJs(a, usager, {
        demarches: ['famille', 'travail'], titles: ['Famille', 'Travail'], duree: 'date', day,
      }));
      await step(a, 'the aidant space lists it, JS off', async () => {
        await a.go(`${PROXY}/espace-aidant`);
        const text = await ourPage(a, { title: 'Mon espace aidant', controls: true });
        assert.ok(text.includes(`${usager.name} (${usager.born})`), `${usager.name} is followed`);
      });
      await step(a, 'a démarche with the new mandate, JS off', async () => {
        await a.go(`${SP}/`);
        await a.click(await a.find('form[action="/login"] button[type="submit"]'));
        await waitUrl(a, `${PROXY}/interaction/`, 'the choice page');
        await ourPage(a, { title: 'Choisir la personne accompagnée', h1: 'Pour qui faites-vous cette démarche ?', controls: true });
        await a.click(await a.find(`input[name="choice"][value="${given.mandateId}:famille"]`));
        await a.click(await a.find('input[name="certify"]'));
        await a.click(await a.find('form[action^="/interaction/"] button[type="submit"]'));
        const { claims } = await spResult(a);
        assert.equal(claims.family_name, usager.name.split(' ').at(-1));
        assert.equal(claims.act?.given_name, 'Abdel');
        assert.equal(claims.mandate?.id, given.mandateId);
      });
      await step(v, 'the usager space, JS off: sees and ends the mandate', async () => {
        await v.go(`${PROXY}/mon-espace`);
        await ourPage(v, { title: 'Mon espace — mes mandats', h1: 'Mes mandats' });
        await v.click(await v.find('a[href="/mon-espace/connexion"]'));
        await franceConnectLogin(v, usager, { keyboard: false });
        await waitUrl(v, (x) => x === `${PROXY}/mon-espace`, 'the usager space after FranceConnect', 20_000);
        const text = await ourPage(v, { title: 'Mon espace — mes mandats', h1: 'Mes mandats', controls: true });
        assert.ok(text.includes(`Vous êtes identifié avec FranceConnect : ${usager.name}.`));
        assert.ok(text.includes(`valable jusqu'au ${given.expires[0]}`), 'the chosen end day');
        const history = await tableRows(v, 'Les plus récents');
        assert.ok(history?.some((r) => r[1] === 'Démarche effectuée' && r[2] === 'Famille' && r[4] === 'Abdel KARIM'),
          `the history shows the démarche: ${JSON.stringify(history)}`);
        await v.click(await v.find(`form[action="/mon-espace/mandats/${given.mandateId}/fin"] input[name="confirm"]`));
        await v.click(await v.find(`form[action="/mon-espace/mandats/${given.mandateId}/fin"] button[type="submit"]`));
        await waitUrl(v, (x) => x === `${PROXY}/mon-espace?termine=1`, 'the usager space after the end');
        const after = await ourPage(v, { title: 'Mon espace — mes mandats', h1: 'Mes mandats' });
        assert.ok(after.includes("Le mandat a pris fin. Plus aucun aidant ne peut l'utiliser."));
        assert.ok(after.includes("Vous n'avez aucun mandat en cours."));
        await v.click(await v.find('form[action="/mon-espace/deconnexion"] button[type="submit"]'));
        await waitUrl(v, `${PROXY}/mon-espace/deconnexion`, 'the logged-out page');
        await ourPage(v, { title: 'Vous êtes déconnecté' });
      });
      await step(a, 'the next démarche is refused, JS off', async () => {
        await a.go(`${SP}/`);
        await a.click(await a.find('form[action="/login"] button[type="submit"]'));
        await waitUrl(a, `${PROXY}/interaction/`, 'the choice page');
        const text = await ourPage(a, { title: 'Choisir la personne accompagnée', h1: 'Pour qui faites-vous cette démarche ?' });
        assert.ok(!text.includes(usager.name), `${usager.name} is no longer offered`);
      });
      await step(a, 'the journal filter, JS off', async () => {
        await a.go(`${PROXY}/structure/journal`);
        await ourPage(a, { title: 'Journal de la structure', h1: `Journal de ${ORGANISATION}`, controls: true });
        const all = await tableRows(a, 'actions affichées');
        assert.ok(all?.some((r) => r[1] === 'Fin du mandat' && r[3] === usager.name), `the end is journaled: ${JSON.stringify(all)}`);
        await a.click(await a.find('select#demarche option[value="famille"]'));
        await a.click(await a.find('form[action="/structure/journal"] button[type="submit"]'));
        await waitUrl(a, (u) => new URL(u).searchParams.get('demarche') === 'famille', 'the filtered journal');
        await ourPage(a, { title: 'Journal de la structure', h1: `Journal de ${ORGANISATION}`, controls: true });
        const rows = await tableRows(a, 'actions affichées');
        assert.ok(rows?.some((r) => r[1] === 'Démarche effectuée' && r[3] === usager.name && r[4] === 'Famille'),
          `the démarche for Famille: ${JSON.stringify(rows)}`);
        assert.deepEqual([...new Set(rows.map((r) => r[4]))], ['Famille'], `only Famille: ${JSON.stringify(rows)}`);
        assert.ok(rows.length < all.length, `fewer rows (${rows.length}) than unfiltered (${all.length})`);
      });
    } finally {
      await close(v);
      await close(a);
    }
  });

  it('JavaScript disabled: the aidant ends a mandate at the usager\'s request, with the keyboard', async () => {
    const usager = await demoUsager(WALKERS.aidantEnds);
    const a = await browser({ javascript: false });
    try {
      const given = await step(a, 'new mandate, JS off', () => giveMandateWithoutJs(a, usager, {
        demarches: ['social'], titles: ['Social - Santé'], duree: '365',
      }));
      await step(a, 'the aidant ends it from their space, keyboard only', async () => {
        await a.go(`${PROXY}/espace-aidant`);
        const text = await ourPage(a, { title: 'Mon espace aidant', controls: true });
        assert.ok(text.includes(`${usager.name} (${usager.born})`));
        const form = `form[action="/mandats/${given.mandateId}/fin"]`;
        await tickWithSpace(a, `${form} input[name="confirm"]`, `« ${usager.name} me demande de mettre fin à ce mandat. »`);
        await tabTo(a, `${form} button[type="submit"]`, 'the end button');
        assert.equal(squash(await a.text(await a.active())), `Mettre fin au mandat de ${usager.name}`);
        await a.keys(KEY.ENTER);
        await waitUrl(a, (u) => u === `${PROXY}/espace-aidant?termine=1`, 'the aidant space after the end');
        const after = await ourPage(a, { title: 'Mon espace aidant' });
        assert.equal(squash(await a.text(await a.find('[role="status"]'))), "Le mandat a pris fin. Plus aucun aidant ne peut l'utiliser.");
        assert.ok(!after.includes(`${usager.name} (${usager.born})`), `${usager.name} is no longer followed`);
        const actions = await tableRows(a, 'Les plus récentes');
        assert.ok(actions?.some((r) => r[1] === 'Fin du mandat' && r[2] === usager.name), `the end in the aidant's actions: ${JSON.stringify(actions)}`);
      });
    } finally {
      await close(a);
    }
  });

  it('walks the FranceConnect path: the demo service through the development FranceConnect to idp-proxy, and back', async () => {
    // README step 4: « Se connecter avec FranceConnect », Aidants Connect at FranceConnect, the
    // choice at idp-proxy (its way back names FranceConnect), FranceConnect's claims at the
    // service, no act. JavaScript disabled, as in a locked-down public computer.
    const s = await browser({ javascript: false });
    try {
      await step(s, 'the way back from the choice page returns to FranceConnect', async () => {
        await s.go(`${SP}/`);
        await s.click(await s.find('form[action="/login-franceconnect"] button'));
        await waitUrl(s, `${FC}/interaction/`, 'the development FranceConnect');
        await s.click(await s.find('form[action$="/idp"] button'));
        await idpLogin(s, { keyboard: false });
        await waitUrl(s, `${PROXY}/interaction/`, 'the choice page');
        const text = await ourPage(s, { title: 'Choisir la personne accompagnée', h1: 'Pour qui faites-vous cette démarche ?', controls: true });
        assert.ok(text.includes('Service demandeur : FranceConnect'), text.slice(0, 300));
        const back = await s.find('form[action$="/annuler"] button');
        assert.equal(squash(await s.text(back)), 'Annuler et revenir sur FranceConnect');
        await s.click(back);
        // FranceConnect hears access_denied with its state and shows its choice again.
        await waitUrl(s, `${FC}/interaction/`, 'FranceConnect again, after the way back');
      });
      await step(s, 'a démarche through FranceConnect reaches the service without act', async () => {
        await s.click(await s.find('form[action$="/idp"] button'));
        await idpLogin(s, { keyboard: false });
        await waitUrl(s, `${PROXY}/interaction/`, 'the choice page');
        const michel = (await s.findAll('input[name="choice"]'))[0];
        await s.click(michel);
        await s.click(await s.find('input[name="certify"]'));
        await s.click(await s.find('form[action^="/interaction/"]:not([action$="/annuler"]) button[type="submit"]'));
        await waitUrl(s, `${SP}/callback-franceconnect`, 'the demo service, through FranceConnect', 20_000);
        const text = squash(await s.bodyText());
        assert.match(text, /Connecté avec FranceConnect/);
        assert.match(text, /Michel/);
        assert.match(text, /aidants-connect/, 'idp_id names Aidants Connect');
        assert.doesNotMatch(text, /"act"/, 'act does not reach a service behind FranceConnect');
      });
    } finally {
      await close(s);
    }
  });

  // Issue #12 (the field's demands in ../shared/field/: consent a fragile person understands,
  // nothing ended without being shown, a way out, mandates adjusted with the person).
  it('JavaScript disabled, keyboard: the recap shows the mandate it would replace, the person says no, one démarche ends', async () => {
    // Jean-Pierre's mandate of the test above has ended: he starts afresh.
    const usager = await demoUsager(WALKERS.aidantEnds);
    const a = await browser({ javascript: false });
    try {
      const given = await step(a, 'a mandate for two démarches, JS off', () => giveMandateWithoutJs(a, usager, {
        demarches: ['argent', 'social'], titles: ['Social - Santé', 'Argent'], duree: '365',
      }));
      await step(a, 'a second one: the recap shows what it replaces; « Je ne donne pas mandat » by keyboard', async () => {
        await a.go(`${PROXY}/mandats/nouveau`);
        await ourPage(a, { title: 'Nouveau mandat', controls: true });
        await a.click(await a.find('input[name="demarches"][value="logement"]'));
        await a.click(await a.find('input[name="duree"][value="31"]'));
        await a.click(await a.find('form[action="/mandats/nouveau"] button[type="submit"]'));
        await franceConnectLogin(a, usager, { keyboard: false });
        await waitUrl(a, `${PROXY}/mandats/recapitulatif/`, 'the recap after FranceConnect', 20_000);
        const text = await ourPage(a, { title: 'Confirmer le mandat', h1: 'Relisez et confirmez votre mandat', controls: true });
        assert.ok(text.includes('Ce mandat remplace celui en cours'), text);
        assert.ok(text.includes('démarches ajoutées : Logement'), text);
        assert.ok(text.includes('démarches qui ne seront plus couvertes : Social - Santé, Argent'), text);
        await tabTo(a, 'form[action$="/refus"] button[type="submit"]', 'the « Je ne donne pas mandat » button');
        await a.keys(KEY.ENTER);
        await waitUrl(a, /\/refus$/, 'the refusal page');
        const refused = await ourPage(a, { title: 'Mandat non donné', h1: "Aucun mandat n'a été donné" });
        assert.ok(refused.includes('Le mandat déjà en cours ne change pas.'), refused);
      });
      await step(a, 'the aidant ends « Argent » only, keyboard only; « Social - Santé » runs on', async () => {
        await a.go(`${PROXY}/espace-aidant`);
        await ourPage(a, { title: 'Mon espace aidant', controls: true });
        const form = `form[action="/mandats/${given.mandateId}/fin-demarche"]`;
        await tabTo(a, `${form} input[name="demarche"]`, 'the démarche choices');
        await arrowTo(a, 'argent', 'the démarche « Argent »');
        await tickWithSpace(a, `${form} input[name="confirm"]`, 'the confirmation box');
        await tabTo(a, `${form} button[type="submit"]`, 'the « Retirer la démarche choisie » button');
        await a.keys(KEY.ENTER);
        await waitUrl(a, (u) => u === `${PROXY}/espace-aidant?retire=1`, 'the aidant space after the change');
        const after = await ourPage(a, { title: 'Mon espace aidant' });
        assert.ok(after.includes('La démarche a été retirée du mandat. Le reste du mandat continue.'), after);
        const card = await a.text(await a.find(`section[aria-labelledby="m-${given.mandateId}"] p`));
        assert.ok(card.includes('Social - Santé') && !card.includes('Argent'), card);
      });
    } finally {
      await close(a);
    }
  });

  it('the demo data\'s usager, Michel DUPONT, sees his imported mandate in his space', async () => {
    // config/demo-data.toml gives Michel a mandate to the Centre social des Acacias; a newcomer
    // who logs in as Michel at the development FranceConnect expects to find it there.
    const michel = { sub: 'fc-michel', name: 'Michel DUPONT' };
    const u = await browser();
    try {
      await step(u, 'Michel logs in to his space', async () => {
        await u.go(`${PROXY}/mon-espace`);
        await u.click(await u.find('a[href="/mon-espace/connexion"]'));
        await franceConnectLogin(u, michel, { keyboard: false });
        await waitUrl(u, (x) => x === `${PROXY}/mon-espace`, 'the usager space after FranceConnect', 20_000);
        assert.doesNotMatch(squash(await u.bodyText()), /Vous n'avez donné aucun mandat/,
          'Michel DUPONT of the development FranceConnect (sub fc-michel) must be the demo data\'s Michel '
          + '(config/demo-data.toml: franceconnect_sub): his space says he gave no mandate');
        const text = await ourPage(u, { title: 'Mon espace — mes mandats', h1: 'Mes mandats' });
        assert.ok(text.includes(`Vous êtes identifié avec FranceConnect : ${michel.name}.`));
        assert.equal((await u.findAll('section[aria-labelledby="m-6f1d8e2a-9c3b-4a5d-8e7f-1a2b3c4d5e6f"]')).length, 1,
          'the imported mandate is among his running mandates');
      });
    } finally {
      await close(u);
    }
  });
});
