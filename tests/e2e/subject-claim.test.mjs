// `upstream.aidant.subject_claim = "email"`: aidants are provisioned by their email, and only a
// verified email from the upstream ID token opens a session.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeSp, runDemarche, startWorld } from './harness.mjs';
import { MICHEL, SIRET_A, SP1 } from './world.mjs';

describe('aidants identified by their verified email', () => {
  let world;
  let sp;

  before(async () => {
    world = await startWorld({
      clients: [SP1],
      config: { 'upstream.aidant': { subject_claim: 'email' } },
      upstreamAccounts: [
        { sub: 'abdel', email: 'Abdel.Karim@acacias.example', given_name: 'Abdel', family_name: 'KARIM' },
        { sub: 'no-email' },
      ],
      importToml: {
        organisations: [{ siret: SIRET_A, name: 'Centre social des Acacias' }],
        aidants: [{ subject: 'abdel.karim@acacias.example', email: 'abdel.karim@acacias.example', given_name: 'Abdel', family_name: 'KARIM', organisations: [SIRET_A] }],
        usagers: [{ ref: 'michel', franceconnect_sub: 'fc-michel', ...MICHEL }],
        mandates: [{ usager: 'michel', organisation: SIRET_A, created_by: 'abdel.karim@acacias.example', demarches: ['argent'], days: 30 }],
      },
    });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  it('maps the upstream email, case-insensitively, to the provisioned aidant', async () => {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, aidant: 'abdel' });
    assert.equal(r.tokenError, null, String(r.tokenError));
    assert.ok(r.claims, 'an ID token was issued');
    assert.equal(r.claims.act.sub, world.proxy.summary.aidants['abdel.karim@acacias.example']);
  });

  it('refuses an upstream identity without an email', async () => {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, aidant: 'no-email' });
    assert.equal(r.code, null, 'no code');
    assert.ok(r.final && r.final.status >= 400 && r.final.status < 500, `a 4xx page, got ${r.final?.status}`);
  });
});
