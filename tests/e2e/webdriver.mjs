// A minimal W3C WebDriver client for the browser tests: headless Debian Chromium driven by
// chromedriver, both from apt (no browser download). Only the commands the tests use.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from './harness.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
export const KEY = {
  TAB: '\uE004', SPACE: '\uE00D', ENTER: '\uE007', ARROW_UP: '\uE013', ARROW_DOWN: '\uE015',
};

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMEDRIVER = process.env.CHROMEDRIVER_BIN || '/usr/bin/chromedriver';

/** Starts chromedriver on a free port; returns { url, stop }. */
export async function startDriver() {
  const port = await freePort();
  const proc = spawn(CHROMEDRIVER, [`--port=${port}`, '--allowed-ips=127.0.0.1'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/status`);
      if (r.ok) return { url, stop: () => proc.kill('SIGTERM') };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`chromedriver (${CHROMEDRIVER}) did not start: apt-get install chromium chromium-driver`);
}

export class Session {
  static async open(driver, { javascript = true } = {}) {
    const profile = mkdtempSync(join(tmpdir(), 'idp-proxy-chromium-'));
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic', `--user-data-dir=${profile}`, '--window-size=1024,900'];
    const prefs = javascript ? {} : { 'profile.managed_default_content_settings.javascript': 2 };
    const res = await fetch(`${driver.url}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ capabilities: { alwaysMatch: {
        browserName: 'chrome',
        'goog:chromeOptions': { binary: CHROMIUM, args, prefs },
      } } }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`cannot open a Chromium session: ${JSON.stringify(body.value)}`);
    return new Session(driver.url, body.value.sessionId, profile);
  }

  constructor(base, id, profile) {
    this.base = `${base}/session/${id}`;
    this.profile = profile;
  }

  async cmd(method, path, body) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(json.value)}`);
    return json.value;
  }

  go(url) { return this.cmd('POST', '/url', { url }); }
  url() { return this.cmd('GET', '/url'); }
  source() { return this.cmd('GET', '/source'); }
  title() { return this.cmd('GET', '/title'); }

  async find(css) {
    const el = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return el[ELEMENT];
  }

  async findAll(css) {
    const els = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    return els.map((e) => e[ELEMENT]);
  }

  click(el) { return this.cmd('POST', `/element/${el}/click`, {}); }
  text(el) { return this.cmd('GET', `/element/${el}/text`); }
  attribute(el, name) { return this.cmd('GET', `/element/${el}/attribute/${name}`); }
  /** A DOM property (`value` of a select or a date field is a property, not an attribute). */
  property(el, name) { return this.cmd('GET', `/element/${el}/property/${name}`); }
  selected(el) { return this.cmd('GET', `/element/${el}/selected`); }
  async active() { return (await this.cmd('GET', '/element/active'))[ELEMENT]; }
  async bodyText() { return this.text(await this.find('body')); }

  /** Presses keys one after the other, as a keyboard-only user would. */
  keys(...keys) {
    const actions = keys.flatMap((k) => [{ type: 'keyDown', value: k }, { type: 'keyUp', value: k }]);
    return this.cmd('POST', '/actions', { actions: [{ type: 'key', id: 'keyboard', actions }] });
  }

  script(code, args = []) { return this.cmd('POST', '/execute/sync', { script: code, args }); }

  /** A Chrome DevTools Protocol command through chromedriver (e.g. Emulation.setEmulatedMedia). */
  cdp(cmd, params = {}) { return this.cmd('POST', '/goog/cdp/execute', { cmd, params }); }

  async waitFor(predicate, what, timeout = 10_000) {
    const end = Date.now() + timeout;
    for (;;) {
      if (await predicate()) return;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what} (at ${await this.url()})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close() {
    try { await fetch(this.base, { method: 'DELETE' }); } finally { rmSync(this.profile, { recursive: true, force: true }); }
  }
}
