// Subjects (OIDC Core §8): public clients see the usager's and aidant's own ids; pairwise
// clients see values per sector, stable across logins, that two sectors cannot link — for the
// usager (`sub`), the aidant (`act.sub`) and the mandate (`mandate.id`) alike.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeSp, runDemarche, trace } from './harness.mjs';
import { SP1, startSeededWorld } from './world.mjs';

const pairwise = (client_id, sector) => ({ ...SP1, client_id, subject_type: 'pairwise', sector });
const IMPOTS = pairwise('impots', 'impots.example.gouv.fr');
const IMPOTS_PRO = pairwise('impots-pro', 'impots.example.gouv.fr');
const CAF = pairwise('caf', 'caf.example.fr');

describe('public and pairwise subjects', () => {
  let world;
  const sps = {};

  before(async () => {
    world = await startSeededWorld({ clients: [SP1, IMPOTS, IMPOTS_PRO, CAF] });
    for (const c of [SP1, IMPOTS, IMPOTS_PRO, CAF]) sps[c.client_id] = await makeSp(world.proxy, c);
  });

  after(async () => world?.stop());

  const michel = (options) => options.find((o) => o.label.includes('Michel') && o.demarche === 'argent');
  async function seen(clientId) {
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sps[clientId], choose: michel });
    assert.ok(r.claims?.sub, trace(r));
    assert.equal(r.userinfo?.sub, r.claims.sub, 'userinfo says the same sub');
    assert.equal(r.userinfo?.act?.sub, r.claims.act.sub);
    const info = await sps[clientId].client.introspect(r.tokenSet.access_token);
    assert.equal(info.sub, r.claims.sub, 'introspection says the same sub');
    return { sub: r.claims.sub, act: r.claims.act.sub, mandate: r.claims.mandate.id, sid: r.claims.sid };
  }

  it('advertises both subject types', () => {
    assert.deepEqual(sps[SP1.client_id].issuer.metadata.subject_types_supported, ['public', 'pairwise']);
  });

  it('gives public clients the ids, and pairwise ones values per sector, stable across logins', async () => {
    const pub = await seen(SP1.client_id);
    assert.equal(pub.sub, world.ids.usagers.michel);
    assert.equal(pub.mandate, world.ids.mandates.michel);
    const impots = await seen('impots');
    const again = await seen('impots');
    const pro = await seen('impots-pro');
    const caf = await seen('caf');
    // A new browser is a new session: sid changes, the subjects do not.
    assert.deepEqual({ ...again, sid: undefined }, { ...impots, sid: undefined }, 'stable across logins');
    assert.notEqual(caf.sid, impots.sid, 'sid per sector too');
    assert.deepEqual({ ...pro, sid: undefined }, { ...impots, sid: undefined }, 'same sector, same values');
    for (const k of ['sub', 'act', 'mandate']) {
      assert.notEqual(caf[k], impots[k], `${k}: two sectors cannot link`);
      assert.notEqual(impots[k], pub[k], `${k}: not the public id`);
      assert.match(impots[k], /^[A-Za-z0-9_-]{43}$/);
    }
  });
});
