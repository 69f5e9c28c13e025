// The seeded world shared by the end-to-end tests: two organisations, their aidants, usagers
// with active, expired, revoked and other-organisation mandates, two service providers.

import { startWorld } from './harness.mjs';

export const SIRET_A = '11111111100011';
export const SIRET_B = '22222222200022';

// The SPs' redirect URIs need not listen: openid-client's callback() only needs the parameters.
export const SP1 = Object.freeze({
  client_id: 'sp-1',
  client_secret: 'sp-1-secret-for-e2e-tests',
  name: 'Service de test',
  token_endpoint_auth_method: 'client_secret_basic',
  redirect_uris: ['http://127.0.0.1:9/cb', 'https://sp.example/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1:9/'],
  demarches: ['argent', 'social', 'famille', 'logement'],
  id_token_signed_response_alg: 'ES256',
  pkce_required: true,
});

export const SP2 = Object.freeze({
  client_id: 'sp-2',
  client_secret: 'sp-2-secret-for-e2e-tests',
  name: 'Second service de test',
  token_endpoint_auth_method: 'client_secret_post',
  redirect_uris: ['http://127.0.0.1:9/cb2'],
  post_logout_redirect_uris: ['http://127.0.0.1:9/'],
  demarches: ['argent', 'social', 'famille', 'logement'],
  id_token_signed_response_alg: 'RS256',
  pkce_required: true,
});

// Fixed ids: the import may set them; the tests still read the real ones from the summary.
export const FIXED = Object.freeze({
  usagerMichel: '0f6a8d69-7ac8-4eb6-a525-5a526bdf1470',
  mandates: {
    michel: '2dee1b4b-ed8a-41cf-a306-5228a9a53170',
    lucie: '944970d2-fd82-46b9-afad-e727e5a2231e',
    paul: '8128700f-c870-4311-848c-39868f60a2bf',
    nadia: '2a740e9d-a372-4c24-8d58-241423268361',
    rose: '07ab96e2-cd76-42a4-a335-b06fc3dec22b',
    ines: '27181b5e-e3e6-4884-a51c-84e1673f6be3',
  },
});

export const MICHEL = Object.freeze({
  given_name: 'Michel',
  family_name: 'DUPONT',
  birthdate: '1962-08-24',
  gender: 'male',
  birthplace: '79191',
  birthcountry: '99100',
  email: 'michel.dupont@example.org',
});

// Mandates in file order: the import summary lists their ids in this order.
const MANDATE_ORDER = ['michel', 'lucie', 'paul', 'nadia', 'rose', 'ines'];

export const IMPORT = {
  organisations: [
    { siret: SIRET_A, name: 'Centre social des Acacias' },
    { siret: SIRET_B, name: 'Maison France services des Tilleuls' },
  ],
  aidants: [
    { subject: 'abdel', email: 'abdel.karim@acacias.example', given_name: 'Abdel', family_name: 'KARIM', organisations: [SIRET_A], active: true },
    { subject: 'farid', email: 'farid.benali@acacias.example', given_name: 'Farid', family_name: 'BENALI', organisations: [SIRET_A] },
    { subject: 'sophie', email: 'sophie.martin@tilleuls.example', given_name: 'Sophie', family_name: 'MARTIN', organisations: [SIRET_B] },
  ],
  usagers: [
    { ref: 'michel', id: FIXED.usagerMichel, franceconnect_sub: 'fc-michel', ...MICHEL },
    { ref: 'lucie', franceconnect_sub: 'fc-lucie', given_name: 'Lucie', family_name: 'BERNARD', birthdate: '1990-03-12', gender: 'female', birthplace: '75056', birthcountry: '99100' },
    { ref: 'paul', franceconnect_sub: 'fc-paul', given_name: 'Paul', family_name: 'LEROY', birthdate: '1948-11-02', gender: 'male', birthplace: '69123', birthcountry: '99100' },
    { ref: 'nadia', franceconnect_sub: 'fc-nadia', given_name: 'Nadia', family_name: 'HAMDI', birthdate: '1975-06-30', gender: 'female', birthplace: '13055', birthcountry: '99100' },
    { ref: 'rose', franceconnect_sub: 'fc-rose', given_name: 'Rose', family_name: 'PETIT', birthdate: '1939-01-15', gender: 'female', birthplace: '33063', birthcountry: '99100' },
    // Born abroad: no birthplace.
    { ref: 'ines', franceconnect_sub: 'fc-ines', given_name: 'Inès', family_name: 'GARCIA', birthdate: '1981-09-09', gender: 'female', birthcountry: '99134' },
  ],
  mandates: [
    { id: FIXED.mandates.michel, usager: 'michel', organisation: SIRET_A, created_by: 'abdel', demarches: ['argent', 'social'], days: 365, consent_acr: 'eidas1' },
    { id: FIXED.mandates.lucie, usager: 'lucie', organisation: SIRET_A, created_by: 'abdel', demarches: ['famille'], expires_at: '2021-01-01T00:00:00Z' },
    { id: FIXED.mandates.paul, usager: 'paul', organisation: SIRET_A, created_by: 'farid', demarches: ['argent'], days: 365, revoked: true },
    { id: FIXED.mandates.nadia, usager: 'nadia', organisation: SIRET_B, created_by: 'sophie', demarches: ['logement'], days: 365, consent_acr: 'eidas1' },
    // Revoked by a test in the middle of a flow: nobody else uses it.
    { id: FIXED.mandates.rose, usager: 'rose', organisation: SIRET_A, created_by: 'abdel', demarches: ['argent'], days: 30, consent_acr: 'eidas1' },
    // Given at FranceConnect+ level (eidas2).
    { id: FIXED.mandates.ines, usager: 'ines', organisation: SIRET_A, created_by: 'farid', demarches: ['social'], days: 90, consent_acr: 'eidas2' },
  ],
};

export const UPSTREAM_ACCOUNTS = [
  { sub: 'abdel', email: 'abdel.karim@acacias.example', given_name: 'Abdel', family_name: 'KARIM' },
  // Farid logs in with a second factor: his identity provider vouches for eidas2.
  { sub: 'farid', email: 'farid.benali@acacias.example', given_name: 'Farid', family_name: 'BENALI', acr: 'eidas2' },
  { sub: 'sophie', email: 'sophie.martin@tilleuls.example', given_name: 'Sophie', family_name: 'MARTIN' },
  { sub: 'inconnu', email: 'jean.inconnu@example.org', given_name: 'Jean', family_name: 'INCONNU' },
];

/**
 * Starts the upstream IdP and a proxy with the seeded world.
 * @param {object} [o]
 * @param {object[]} [o.clients=[SP1, SP2]] the service providers registered at the proxy
 * @returns {Promise<{proxy, upstream, ids, stop()}>} ids.mandates.michel…, ids.usagers.michel…,
 *   ids.aidants.abdel…, ids.organisations[SIRET_A]
 */
export async function startSeededWorld({ clients = [SP1, SP2] } = {}) {
  const world = await startWorld({ clients, importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS });
  try {
    const s = world.proxy.summary;
    const problems = [];
    if (!s || typeof s !== 'object') problems.push('no summary');
    for (const key of ['organisations', 'aidants', 'usagers']) {
      if (!s?.[key] || typeof s[key] !== 'object') problems.push(`no "${key}" object`);
    }
    if (!Array.isArray(s?.mandates) || s.mandates.length !== MANDATE_ORDER.length) {
      problems.push(`"mandates" must list ${MANDATE_ORDER.length} ids in file order`);
    }
    if (problems.length) {
      throw new Error(`mandates import summary: ${problems.join('; ')}:\n${JSON.stringify(s, null, 2)}`);
    }
    const mandates = Object.fromEntries(MANDATE_ORDER.map((ref, i) => [ref, String(s.mandates[i])]));
    return {
      ...world,
      ids: { organisations: s.organisations, aidants: s.aidants, usagers: s.usagers, mandates },
    };
  } catch (err) {
    await world.stop();
    throw err;
  }
}
