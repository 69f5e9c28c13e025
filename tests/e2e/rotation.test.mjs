// Data key rotation while the proxy serves: the new key is announced, activated and every
// usager identity re-sealed with it, and démarches keep working before, during and after.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { makeSp, runDemarche, startWorld, trace } from './harness.mjs';
import { IMPORT, MICHEL, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

describe('idp-proxy keys rotate-data-key', () => {
  let world;
  let sp;
  const michelArgent = (options) => options.find((o) => o.label.includes('Michel') && o.demarche === 'argent');
  const demarche = () => runDemarche({ proxy: world.proxy, upstream: world.upstream, sp, choose: michelArgent });

  before(async () => {
    world = await startWorld({ clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      config: { keys: { reload_secs: 1 } } });
    sp = await makeSp(world.proxy, SP1);
  });

  after(async () => world?.stop());

  it('re-seals every identity under a new key without interrupting démarches', async () => {
    const first = await demarche();
    assert.equal(first.claims?.given_name, MICHEL.given_name, trace(first));
    const dataKeys = () => readdirSync(join(world.proxy.dir, 'keys')).filter((f) => f.startsWith('data-'));
    const [oldKey] = dataKeys();

    const rotation = world.proxy.cli(['keys', 'rotate-data-key', '--settle-secs', '2', '--batch', '2']);
    const during = await demarche();
    assert.equal(during.claims?.given_name, MICHEL.given_name, trace(during));
    const usage = (await rotation).trim().split('\n').map((l) => l.split('\t'));

    assert.equal(usage.length, 1, `every identity on one key: ${JSON.stringify(usage)}`);
    assert.notEqual(`${usage[0][0]}.key`, oldKey, 'the new key seals them');
    assert.equal(Number(usage[0][1]), IMPORT.usagers.length);
    assert.equal(dataKeys().length, 2, 'the old key stays until ops remove it');

    const afterwards = await demarche();
    assert.equal(afterwards.claims?.given_name, MICHEL.given_name, trace(afterwards));
    assert.equal(afterwards.userinfo?.family_name, MICHEL.family_name);
  });
});
