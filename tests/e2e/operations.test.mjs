// The operator's CLI against a running proxy: provisioning aidants and organisations, disabling
// them (a disabled aidant or organisation can use nothing, at once), and the journal check.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { Browser, makeSp, parseForms, runDemarche, textOf, trace } from './harness.mjs';
import { SIRET_A, SP1, startSeededWorld } from './world.mjs';

describe('operations CLI', () => {
  let world;
  let sp;
  const demarche = (aidant) => runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, aidant });

  before(async () => {
    world = await startSeededWorld();
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  it('lists the organisations and aidants it was given', async () => {
    const orgs = await world.proxy.cli(['organisations', 'list']);
    assert.match(orgs, new RegExp(`^${SIRET_A}\\tactive\\tCentre social des Acacias\\tany-aidant$`, 'm'));
    await world.proxy.cli(['aidants', 'add', '--subject', 'nora', '--email', 'nora@acacias.example',
      '--given-name', 'Nora', '--family-name', 'SAÏDI', '--organisation', SIRET_A]);
    const aidants = await world.proxy.cli(['aidants', 'list']);
    assert.match(aidants, new RegExp(`^nora\\tactive\\tNora SAÏDI\\t${SIRET_A}$`, 'm'));
  });

  it('refuses an unknown organisation for a new aidant', async () => {
    const r = await world.proxy.cliResult(['aidants', 'add', '--subject', 'x', '--email', 'x@example.org',
      '--given-name', 'X', '--family-name', 'Y', '--organisation', '99999999999999']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /99999999999999/);
  });

  it('a disabled aidant cannot log in; enabled again, they can', async () => {
    await world.proxy.cli(['aidants', 'disable', 'farid']);
    const refused = await demarche('farid');
    assert.equal(refused.final?.status, 403, trace(refused));
    assert.equal(refused.code, null);
    await world.proxy.cli(['aidants', 'enable', 'farid']);
    const ok = await demarche('farid');
    assert.ok(ok.claims?.act, trace(ok));
  });

  it('a session opened before the aidant was disabled shows nothing more', async () => {
    // Farid is logged in on his space, then disabled: the next page refuses, even the journal.
    const browser = new Browser();
    let nav = await browser.navigate(`${world.proxy.issuer}/espace-aidant`);
    const login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
    nav = await browser.navigate(login.action, { method: 'POST', form: { sub: 'farid' } });
    assert.equal(nav.final.status, 200);
    assert.match(textOf(nav.final.body), /Farid BENALI/);
    await world.proxy.cli(['aidants', 'disable', 'farid']);
    try {
      const first = await browser.navigate(`${world.proxy.issuer}/espace-aidant`);
      assert.equal(first.final.status, 403);
      assert.match(textOf(first.final.body), /plus actif/);
      // The session is gone: every other page goes through login, which refuses him too.
      for (const page of ['/structure/journal', '/mandats/nouveau', '/espace-aidant']) {
        const after = await browser.navigate(`${world.proxy.issuer}${page}`);
        assert.equal(after.final.status, 403, page);
        assert.doesNotMatch(textOf(after.final.body), /Michel|DUPONT/, page);
      }
    } finally {
      await world.proxy.cli(['aidants', 'enable', 'farid']);
    }
  });

  it('a disabled organisation stops its aidants at once', async () => {
    await world.proxy.cli(['organisations', 'disable', SIRET_A]);
    try {
      const refused = await demarche('abdel');
      assert.equal(refused.code, null, trace(refused));
      assert.equal(refused.claims, null);
    } finally {
      await world.proxy.cli(['organisations', 'enable', SIRET_A]);
    }
  });

  it('can bind mandates to the aidant who created them', async () => {
    // Michel's mandate was created by abdel: farid no longer sees it, abdel still does.
    await world.proxy.cli(['organisations', 'mandate-use', SIRET_A, 'creator']);
    try {
      const farid = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, aidant: 'farid', choose: () => null });
      assert.ok(!farid.interaction.page.options.some((o) => o.label.includes('Michel')), trace(farid));
      const abdel = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, aidant: 'abdel', choose: () => null });
      assert.ok(abdel.interaction.page.options.some((o) => o.label.includes('Michel')), trace(abdel));
      // Nor does farid read abdel's actions in the organisation's journal: his own only.
      const browser = new Browser();
      let nav = await browser.navigate(`${world.proxy.issuer}/structure/journal`);
      const login = parseForms(nav.final.body, nav.final.url).find((f) => f.buttons.some((b) => b.name === 'sub'));
      nav = await browser.navigate(login.action, { method: 'POST', form: { sub: 'farid' } });
      assert.equal(nav.final.status, 200);
      const text = textOf(nav.final.body);
      assert.match(text, /ne montre que vos actions/);
      assert.doesNotMatch(text, /Abdel KARIM/);
    } finally {
      await world.proxy.cli(['organisations', 'mandate-use', SIRET_A, 'any-aidant']);
    }
  });

  it('exports an organisation’s journal as CSV, with names and filters', async () => {
    const csv = await world.proxy.cli(['journal', 'export', '--organisation', SIRET_A]);
    const [header, ...rows] = csv.trim().split('\n');
    assert.equal(header, 'seq,date,action,demarche,service,aidant,organisation,usager,mandat');
    const used = rows.filter((r) => r.split(',')[2] === 'mandate_used');
    assert.ok(used.length >= 1, csv);
    assert.ok(used.some((r) => r.includes('Farid BENALI') && r.includes('Centre social des Acacias') && r.includes(',sp-1,')), csv);
    assert.ok(rows.every((r) => !r.includes('Tilleuls')), 'only this organisation');
    const social = await world.proxy.cli(['journal', 'export', '--organisation', SIRET_A, '--demarche', 'social']);
    assert.ok(social.trim().split('\n').slice(1).every((r) => r.split(',')[3] === 'social'), social);
    const future = await world.proxy.cli(['journal', 'export', '--since', '2999-01-01']);
    assert.equal(future.trim().split('\n').length, 1, 'header only');
  });

  it('verifies the journal written by the flows above', async () => {
    const out = await world.proxy.cli(['journal', 'verify']);
    const m = /journal intact: (\d+) entries/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) >= 8, `imports, logins and uses are journaled: ${out}`);
  });

  // Last in this file: it tampers with the database behind the service's back, as an operator
  // with SQL access could, and `journal verify` must say where (exit 1, the entry's seq).
  it('locates an edit, a deletion and a swap made in SQL', async () => {
    if (process.env.E2E_DATABASE_URL) return; // the store suite does the same on PostgreSQL
    const db = join(world.proxy.dir, 'idp-proxy.sqlite');
    const sql = (q) => execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, q], { encoding: 'utf8' });
    const broken = async () => {
      const r = await world.proxy.cliResult(['journal', 'verify']);
      assert.equal(r.code, 1, r.stdout);
      return r.stderr;
    };
    // An edit, located; then undone.
    const action = sql('SELECT action FROM journal WHERE seq = 3').trim();
    sql("UPDATE journal SET action = 'aidant_login_forged' WHERE seq = 3");
    assert.match(await broken(), /journal entry 3: content does not match its hash \(edited\)/);
    sql(`UPDATE journal SET action = '${action}' WHERE seq = 3`);
    // A swap of two entries (their seq exchanged): the first moved one no longer links; undone.
    const swap = 'UPDATE journal SET seq = -4 WHERE seq = 4; UPDATE journal SET seq = 4 WHERE seq = 5; UPDATE journal SET seq = 5 WHERE seq = -4;';
    sql(swap);
    assert.match(await broken(), /journal entry 4: prev_hash does not match the previous entry's hash/);
    sql(swap);
    assert.match(await world.proxy.cli(['journal', 'verify']), /journal intact/);
    // A deletion: the next entry names the gap.
    sql('DELETE FROM journal WHERE seq = 6');
    assert.match(await broken(), /journal entry 7: sequence gap, expected 6/);
  });
});
