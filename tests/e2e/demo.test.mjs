// The README's first command, as a newcomer uses it: `scripts/demo` starts idp-proxy, the
// development aidant IdP and the demo service provider; a real headless Chromium walks a whole
// démarche, once with the keyboard only and once with JavaScript disabled, and sees the ID
// token with `act`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { REPO_ROOT } from './harness.mjs';
import { KEY, Session, startDriver } from './webdriver.mjs';

const PROXY = 'http://127.0.0.1:8080';
const SP = 'http://127.0.0.1:9200';

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
      const unlabelled = await s.script(
        "return [...document.querySelectorAll('input:not([type=hidden]), button')]"
        + ".filter(e => e.tagName === 'INPUT' ? e.labels.length === 0 : !e.textContent.trim()).length");
      assert.equal(unlabelled, 0, 'every control has a label or text');
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
});
