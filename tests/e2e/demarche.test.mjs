// End-to-end: an aidant carries out a démarche for a usager (DESIGN.md §3.1, §4).
// Real idp-proxy binary + development aidant IdP + openid-client as the service provider.
// Run: npm ci --prefix dev && node --test tests/e2e/

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  Browser, errors, makeSp, runDemarche, trace, visitedUrls,
} from './harness.mjs';
import {
  FIXED, MICHEL, SIRET_A, SP1, SP2, startSeededWorld,
} from './world.mjs';

const IDENTITY_CLAIMS = ['given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry', 'email', 'preferred_username'];

let world;
let sp1;

before(async () => {
  world = await startSeededWorld();
  sp1 = await makeSp(world.proxy, SP1);
});

after(async () => {
  await world?.stop();
});

const demarche = (opts) => runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sp1, ...opts });

/** Picks the option for `mandateId` and `demarche`, failing with the page's options. */
const pick = (mandateId, demarcheName) => (options) => {
  const o = options.find((x) => x.mandateId === mandateId && x.demarche === demarcheName);
  assert.ok(o, `option ${mandateId}:${demarcheName} not on the interaction page; options: ${JSON.stringify(options)}`);
  return o;
};

/** No authorization code ever reached the SP; an SP redirect, if any, carries `error`. */
function assertRefused(r, what) {
  const msg = `${what}\n${trace(r)}`;
  assert.equal(r.code, null, `a code was issued: ${msg}`);
  for (const u of visitedUrls(r)) {
    const url = new URL(u);
    if (url.origin === new URL(sp1.redirectUri).origin && url.pathname === new URL(sp1.redirectUri).pathname) {
      assert.equal(url.searchParams.get('code'), null, `code sent to the SP: ${msg}`);
      assert.ok(url.searchParams.get('error'), `SP redirect without error: ${msg}`);
    }
  }
  if (r.callbackParams) {
    assert.ok(r.callbackParams.error, `SP callback without error: ${msg}`);
    assert.equal(r.callbackParams.iss, world.proxy.issuer, `error redirect without iss: ${msg}`);
  } else {
    assert.ok(r.final, `flow neither reached the SP nor ended on a page: ${msg}`);
    assert.ok(r.final.status < 500, `server error: ${msg}`);
  }
}

function assertOk(r) {
  assert.equal(r.tokenError, null, `token exchange failed: ${r.tokenError?.message}\n${trace(r)}`);
  assert.ok(r.claims, `no ID token:\n${trace(r)}`);
}

describe('a démarche by an aidant for a usager', () => {
  it('issues an ID token for the usager with the aidant as actor (happy path)', async () => {
    const r = await demarche({ aidant: 'abdel', choose: pick(world.ids.mandates.michel, 'argent') });
    assertOk(r);
    const c = r.claims;

    // The redirect to the SP carried state and iss (openid-client checked them too).
    assert.equal(r.callbackParams.state, r.checks.state);
    assert.equal(r.callbackParams.iss, world.proxy.issuer);
    assert.equal(r.postResponse.status, 303, 'the interaction POST answers 303 to the SP');

    assert.equal(c.iss, world.proxy.issuer);
    assert.deepEqual([c.aud].flat(), [SP1.client_id], 'aud is the client alone');
    assert.equal(c.sub, world.ids.usagers.michel);
    assert.equal(c.sub, FIXED.usagerMichel, 'the fixed usager id of the import is the sub');
    assert.equal(c.nonce, r.checks.nonce);
    assert.equal(c.acr, 'eidas1');
    assert.equal(typeof c.auth_time, 'number');
    assert.ok(c.at_hash, 'at_hash present');
    assert.equal(r.idTokenHeader.alg, 'ES256');
    assert.ok(r.idTokenHeader.kid, 'ID token header has a kid');

    assert.ok(c.act && typeof c.act === 'object', 'act claim present');
    assert.equal(c.act.sub, world.ids.aidants.abdel);
    assert.equal(c.act.given_name, 'Abdel');
    assert.equal(c.act.family_name, 'KARIM');
    assert.equal(c.act.organisation?.siret, SIRET_A);
    assert.equal(c.act.organisation?.name, 'Centre social des Acacias');

    assert.deepEqual(c.rep_scope, ['argent']);
    assert.equal(c.mandate?.id, world.ids.mandates.michel);
    assert.equal(c.mandate?.demarche, 'argent');
    assert.ok(c.mandate?.expires_at, 'mandate.expires_at present');
    assert.ok(!Number.isNaN(Date.parse(c.mandate.expires_at)), `mandate.expires_at is a date: ${c.mandate.expires_at}`);
    assert.ok(Date.parse(c.mandate.expires_at) > Date.now(), 'mandate.expires_at in the future');

    for (const [k, v] of Object.entries(MICHEL)) assert.equal(c[k], v, `ID token ${k}`);
    assert.equal(c.preferred_username, undefined, 'no preferred_username when the usager has none');

    // Userinfo: same usager, same actor, the granted claims.
    assert.equal(r.userinfoError, null, `userinfo failed: ${r.userinfoError?.message}`);
    const u = r.userinfo;
    assert.equal(u.sub, c.sub);
    assert.deepEqual(u.act, c.act);
    for (const [k, v] of Object.entries(MICHEL)) assert.equal(u[k], v, `userinfo ${k}`);
  });

  it('gives only the claims the scopes granted', async () => {
    const r = await demarche({ aidant: 'abdel', scope: 'openid given_name', choose: pick(world.ids.mandates.michel, 'social') });
    assertOk(r);
    assert.equal(r.claims.given_name, 'Michel');
    assert.deepEqual(r.claims.rep_scope, ['social']);
    assert.equal(r.claims.act?.sub, world.ids.aidants.abdel);
    for (const k of IDENTITY_CLAIMS.filter((x) => x !== 'given_name')) {
      assert.equal(r.claims[k], undefined, `ID token must not carry ${k}`);
    }
    assert.equal(r.userinfoError, null, `userinfo failed: ${r.userinfoError?.message}`);
    assert.equal(r.userinfo.given_name, 'Michel');
    assert.equal(r.userinfo.sub, r.claims.sub);
    assert.deepEqual(r.userinfo.act, r.claims.act);
    for (const k of IDENTITY_CLAIMS.filter((x) => x !== 'given_name')) {
      assert.equal(r.userinfo[k], undefined, `userinfo must not carry ${k}`);
    }
  });

  it('leaves birthplace out for a usager born abroad (no placeholder)', async () => {
    const r = await demarche({ aidant: 'abdel', choose: pick(world.ids.mandates.ines, 'social') });
    assertOk(r);
    assert.equal(r.claims.sub, world.ids.usagers.ines);
    assert.equal(r.claims.given_name, 'Inès');
    assert.equal(r.claims.birthcountry, '99134');
    assert.ok(!('birthplace' in r.claims), `birthplace must be absent, got ${JSON.stringify(r.claims.birthplace)}`);
    assert.ok(!('birthplace' in (r.userinfo || {})), 'birthplace absent from userinfo');
  });

  it('signs with RS256 for a client configured so, with client_secret_post', async () => {
    const sp2 = await makeSp(world.proxy, SP2);
    const r = await runDemarche({ proxy: world.proxy, upstream: world.upstream, sp: sp2, choose: pick(world.ids.mandates.michel, 'argent') });
    assertOk(r);
    assert.equal(r.idTokenHeader.alg, 'RS256');
    assert.deepEqual([r.claims.aud].flat(), [SP2.client_id]);
    assert.equal(r.claims.sub, world.ids.usagers.michel);
  });
});

describe('the interaction page', () => {
  it('lists the usagers with an active mandate of the aidant’s organisation, per démarche', async () => {
    const r = await demarche({ aidant: 'abdel', choose: null });
    assert.ok(r.interaction, `no interaction page:\n${trace(r)}`);
    assert.equal(r.interaction.status, 200);
    const { page } = r.interaction;
    assert.ok(page.form, 'the page has a POST form');
    assert.ok(page.csrf, 'the form has a hidden csrf field');
    assert.ok(page.certify, 'the form has a certify checkbox');
    assert.equal(page.certify.type, 'checkbox');
    assert.equal(page.certify.value, 'yes');
    assert.ok(page.certify.required, 'the certify checkbox is required');
    assert.ok(new URL(page.form.action).pathname === new URL(r.interaction.url).pathname, 'the form posts to the page URL');

    const values = page.options.map((o) => o.value);
    const { mandates } = world.ids;
    assert.ok(values.includes(`${mandates.michel}:argent`), `michel/argent listed: ${values}`);
    assert.ok(values.includes(`${mandates.michel}:social`), `michel/social listed: ${values}`);
    assert.ok(!values.some((v) => v.startsWith(`${mandates.lucie}:`)), 'lucie (expired) not listed');
    assert.ok(!values.some((v) => v.startsWith(`${mandates.paul}:`)), 'paul (revoked) not listed');
    assert.ok(!values.some((v) => v.startsWith(`${mandates.nadia}:`)), 'nadia (other organisation) not listed');
    assert.ok(!values.includes(`${mandates.michel}:famille`) && !values.includes(`${mandates.michel}:logement`), 'only the mandate’s démarches');

    const michelArgent = page.options.find((o) => o.value === `${mandates.michel}:argent`);
    assert.match(michelArgent.label, /Michel/, `label names the usager: ${michelArgent.label}`);
    assert.match(michelArgent.label, /DUPONT/i, `label names the usager: ${michelArgent.label}`);
    assert.match(michelArgent.label, /argent/i, `label names the démarche: ${michelArgent.label}`);
    assert.doesNotMatch(page.text, /Lucie|BERNARD|Paul LEROY|Nadia|HAMDI/, 'no other usager named on the page');
  });

  it('shows the same usagers to another aidant of the same organisation', async () => {
    const r = await demarche({ aidant: 'farid', choose: null });
    assert.ok(r.interaction, `no interaction page:\n${trace(r)}`);
    const values = r.interaction.page.options.map((o) => o.value);
    assert.ok(values.includes(`${world.ids.mandates.michel}:argent`), `farid sees michel: ${values}`);
  });

  for (const [name, forged] of [
    ['a revoked mandate (paul)', () => `${world.ids.mandates.paul}:argent`],
    ['an expired mandate (lucie)', () => `${world.ids.mandates.lucie}:famille`],
    ['another organisation’s mandate (nadia)', () => `${world.ids.mandates.nadia}:logement`],
    ['a démarche the mandate does not cover (michel + logement)', () => `${world.ids.mandates.michel}:logement`],
    ['an unknown mandate id', () => '00000000-0000-4000-8000-000000000000:argent'],
    ['a malformed choice', () => 'not-a-choice'],
  ]) {
    it(`refuses a forged choice: ${name}`, async () => {
      const r = await demarche({ aidant: 'abdel', choose: () => forged() });
      assert.ok(r.posted, `the choice was not posted:\n${trace(r)}`);
      assertRefused(r, name);
    });
  }

  it('refuses a POST without the certification', async () => {
    const r = await demarche({ aidant: 'abdel', certify: false, choose: pick(world.ids.mandates.michel, 'argent') });
    assert.ok(r.posted, `the choice was not posted:\n${trace(r)}`);
    assertRefused(r, 'no certify');
  });

  it('refuses a POST with a wrong CSRF token', async () => {
    const r = await demarche({
      aidant: 'abdel',
      choose: pick(world.ids.mandates.michel, 'argent'),
      editForm: (f) => f.set('csrf', 'forged-csrf-token'),
    });
    assert.ok(r.posted, `the choice was not posted:\n${trace(r)}`);
    assertRefused(r, 'bad csrf');
  });

  it('does not let an aidant of another organisation use a mandate (sophie → michel)', async () => {
    const r = await demarche({
      aidant: 'sophie',
      choose: (options) => {
        const values = options.map((o) => o.value);
        assert.ok(values.includes(`${world.ids.mandates.nadia}:logement`), `sophie sees nadia: ${values}`);
        assert.ok(!values.some((v) => v.startsWith(`${world.ids.mandates.michel}:`)), `sophie must not see michel: ${values}`);
        return `${world.ids.mandates.michel}:argent`;
      },
    });
    assert.ok(r.posted, `the choice was not posted:\n${trace(r)}`);
    assertRefused(r, 'sophie with michel’s mandate');
  });
});

describe('aidant identity', () => {
  it('shows a 403 page to an aidant unknown to idp-proxy, never redirects to the SP', async () => {
    const r = await demarche({ aidant: 'inconnu', choose: () => assert.fail('no interaction page expected') });
    assert.ok(r.upstreamLogin, `the upstream login page was not reached:\n${trace(r)}`);
    assert.equal(r.callbackUrl, null, `redirected to the SP:\n${trace(r)}`);
    assert.ok(r.final, `no final page:\n${trace(r)}`);
    assert.equal(r.final.status, 403, `expected 403:\n${trace(r)}`);
    assert.equal(new URL(r.final.url).origin, new URL(world.proxy.issuer).origin, 'the page is the proxy’s');
    assert.match(r.final.contentType, /text\/html/);
    assert.equal(r.code, null);
  });
});

describe('mandate checks at the token endpoint', () => {
  it('refuses the code when the mandate is revoked between the choice and the token request', async () => {
    const r = await demarche({
      aidant: 'abdel',
      choose: pick(world.ids.mandates.rose, 'argent'),
      beforeToken: async () => {
        await world.proxy.cli(['mandates', 'revoke', world.ids.mandates.rose, '--reason', 'test']);
      },
    });
    assert.ok(r.code, `no code before the revocation:\n${trace(r)}`);
    assert.ok(r.tokenError, 'the token request must fail');
    assert.ok(r.tokenError instanceof errors.OPError, `expected an OAuth error, got ${r.tokenError}`);
    assert.equal(r.tokenError.error, 'invalid_grant');
    assert.equal(r.tokenSet, null);

    // And the usager is no longer offered.
    const again = await demarche({ aidant: 'abdel', choose: null });
    assert.ok(again.interaction, `no interaction page:\n${trace(again)}`);
    assert.ok(!again.interaction.page.options.some((o) => o.mandateId === world.ids.mandates.rose), 'rose no longer listed');
  });
});

describe('démarche perimeter requested by the SP (rep_scope)', () => {
  const perimeter = (values) => ({ id_token: { rep_scope: { essential: true, values } } });

  it('narrows the choice to the requested démarches', async () => {
    const r = await demarche({ aidant: 'abdel', claims: perimeter(['social']), choose: null });
    assert.ok(r.interaction, `no interaction page:\n${trace(r)}`);
    const ds = new Set(r.interaction.page.options.map((o) => o.demarche));
    assert.deepEqual([...ds], ['social'], `only social offered: ${[...ds]}`);
    assert.ok(r.interaction.page.options.some((o) => o.mandateId === world.ids.mandates.michel));
  });

  it('returns the chosen démarche of the perimeter in rep_scope', async () => {
    const r = await demarche({ aidant: 'abdel', claims: perimeter(['argent', 'social']), choose: pick(world.ids.mandates.michel, 'social') });
    assertOk(r);
    assert.deepEqual(r.claims.rep_scope, ['social']);
  });

  it('offers nobody when no mandate covers the perimeter (logement for abdel)', async () => {
    const r = await demarche({ aidant: 'abdel', claims: perimeter(['logement']), choose: null });
    assert.equal(r.code, null);
    assert.ok(r.interaction, `no interaction page:\n${trace(r)}`);
    assert.equal(r.interaction.page.options.length, 0, `no choice expected: ${JSON.stringify(r.interaction.page.options)}`);
    assert.match(r.interaction.page.text, /Aucune personne accompagnée/);
  });

  it('refuses an unknown démarche in the perimeter', async () => {
    const r = await demarche({ aidant: 'abdel', claims: perimeter(['casino']), choose: () => assert.fail('no choice expected') });
    assertRefused(r, 'perimeter casino');
    if (r.callbackParams) assert.equal(r.callbackParams.error, 'invalid_request');
  });

  it('never redirects with a code for a forged choice outside the perimeter', async () => {
    const r = await demarche({ aidant: 'abdel', claims: perimeter(['social']), choose: () => `${world.ids.mandates.michel}:argent` });
    assert.ok(r.posted, `the choice was not posted:\n${trace(r)}`);
    assertRefused(r, 'argent outside a social perimeter');
  });
});

describe('the aidant session', () => {
  it('keeps the aidant logged in for a second démarche in the same browser', async () => {
    const browser = new Browser();
    const first = await demarche({ browser, aidant: 'abdel', choose: pick(world.ids.mandates.michel, 'argent') });
    assertOk(first);
    const second = await demarche({ browser, aidant: 'abdel', choose: pick(world.ids.mandates.michel, 'social') });
    assertOk(second);
    assert.equal(second.upstreamLogin, null, `the upstream login page was shown again:\n${trace(second)}`);
    assert.equal(second.claims.act.sub, world.ids.aidants.abdel);
  });
});
