// DEVELOPMENT / DEMO TOOL — never deploy this.
//
// A development FranceConnect (v2-style), built on oidc-provider. idp-proxy is a relying party of
// FranceConnect when a usager logs in to give (or revoke) a mandate; this provider stands in for
// FranceConnect on a developer's machine and in the end-to-end tests. Anyone can log in as any of
// the demo usagers by clicking a button, there is no password, and its signing keys
// (franceconnect-keys.json) are PUBLIC: never trust anything it signs outside development.
//
// What it does like FranceConnect v2 towards its relying party:
//   - endpoints under /api/v2 (issuer http://127.0.0.1:9300/api/v2): /authorize, /token,
//     /userinfo, /session/end, /jwks, /.well-known/openid-configuration;
//   - code flow only, PKCE S256, `state` and `nonce` required, RFC 9207 `iss` in the
//     authorization response (errors included), `acr: "eidas1"`;
//   - the "identité pivot" claims, by scope, at the userinfo endpoint only (the ID token carries
//     sub, acr, auth_time, nonce, at_hash, and amr when requested with the claims parameter);
//   - per client metadata: ID token and userinfo response signed (ES256/RS256) and then
//     encrypted (JWE, RSA-OAEP-256 or ECDH-ES, A256GCM, cty JWT) to the client's `use: "enc"`
//     key fetched from its jwks_uri; client_secret_post by default;
//   - RP-initiated logout straight back to the registered post_logout_redirect_uri (no
//     confirmation page).
//
// And like FranceConnect's core toward its identity providers (dev/franceconnect-core.mjs):
// its login page also offers the registered identity providers (`identityProviders`, e.g.
// idp-proxy as "Aidants Connect"); a person logged in there reaches the service provider with
// the claims FranceConnect builds (its own sub, the pivot identity, idp_birthdate, email,
// preferred_username, idp_id), and the service provider's `rep_scope` (client metadata here,
// FranceConnect's SP registration there) is the perimeter asked of Aidants Connect.
//
//   node dev/franceconnect.mjs   → http://127.0.0.1:9300/api/v2 with the demo usagers below
//   import { startFranceConnect } from "./franceconnect.mjs"  → one instance per test, any port
//
// Environment when run directly: FRANCECONNECT_PORT (9300), FRANCECONNECT_ISSUER
// (http://127.0.0.1:$FRANCECONNECT_PORT/api/v2), IDP_PROXY_URL (http://127.0.0.1:8080, base of
// the default client's redirect URIs and jwks_uri).

import { readFileSync } from 'node:fs';
import { errors } from 'oidc-provider';
import {
  COOKIE_OPTIONS, isMain, makePage, serveUntilSignal, startDevProvider,
} from './dev-provider.mjs';
import { createCore } from './franceconnect-core.mjs';

const BANNER = 'DEVELOPMENT FRANCECONNECT — never use in production';

// DEVELOPMENT ONLY: fixed signing keys (one ES256, one RS256), generated once with jose and
// committed so that tokens stay verifiable across restarts. They are public: use them nowhere else.
const DEV_KEYS = JSON.parse(readFileSync(new URL('./franceconnect-keys.json', import.meta.url), 'utf8')).keys;

// DEVELOPMENT ONLY: cookie signing key of this dev provider (public, in the repository).
const DEV_COOKIE_KEYS = ['dev-franceconnect-cookie-key-not-a-secret'];

// FranceConnect v2 paths: https://fcp-low.integ01.dev-franceconnect.fr/api/v2/...
const DEFAULT_MOUNT = '/api/v2';

/**
 * Demo usagers with the FranceConnect "identité pivot". `birthplace` is the INSEE code of the
 * birth commune, absent for people born abroad; `birthcountry` the INSEE code of the country
 * (99100 = France).
 */
export const DEMO_USAGERS = Object.freeze([
  Object.freeze({
    sub: 'fc-michel', given_name: 'Michel', family_name: 'DUPONT', birthdate: '1962-08-24', gender: 'male',
    birthplace: '79191', birthcountry: '99100', email: 'michel.dupont@example.org',
  }),
  Object.freeze({
    sub: 'fc-jeanne', given_name: 'Jeanne', family_name: 'MARTIN', birthdate: '1951-02-03', gender: 'female',
    birthplace: '75056', birthcountry: '99100', email: 'jeanne.martin@example.org', preferred_username: 'DURAND',
  }),
  Object.freeze({
    // Born abroad (Sénégal): no birthplace.
    sub: 'fc-amina', given_name: 'Amina', family_name: 'DIALLO', birthdate: '1984-07-19', gender: 'female',
    birthcountry: '99341', email: 'amina.diallo@example.org',
  }),
  Object.freeze({
    // Several given names, as FranceConnect returns them (space separated).
    sub: 'fc-jean-pierre', given_name: 'Jean-Pierre Louis', family_name: 'LEGRAND', birthdate: '1975-11-30', gender: 'male',
    birthplace: '69123', birthcountry: '99100', email: 'jean-pierre.legrand@example.org',
  }),
  Object.freeze({
    // A presumed birth date: his identity provider knows only the year (idp_birthdate
    // 1958-00-00); the RNIPP completes it with 01 (rnipp-response-parser.service.ts), the
    // `birthdate` FranceConnect gives. Born abroad (Mali), no email at FranceConnect.
    sub: 'fc-moussa', given_name: 'Moussa', family_name: 'KEITA', birthdate: '1958-01-01', idp_birthdate: '1958-00-00',
    gender: 'male', birthcountry: '99335',
  }),
]);

const PIVOT_CLAIMS = ['given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry'];
const USAGER_CLAIMS = [...PIVOT_CLAIMS, 'email', 'preferred_username', 'idp_birthdate', 'idp_id'];

/**
 * The development client idp-proxy uses when `node dev/franceconnect.mjs` runs: signed and
 * encrypted ID token and userinfo, like a FranceConnect v2 client with encryption.
 */
export function defaultClients(idpProxyUrl = 'http://127.0.0.1:8080') {
  const base = idpProxyUrl.replace(/\/+$/, '');
  return [{
    client_id: 'idp-proxy',
    client_secret: 'dev-franceconnect-secret-change-me',
    redirect_uris: [`${base}/franceconnect/callback`],
    post_logout_redirect_uris: [`${base}/franceconnect/logout-callback`],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'ES256',
    id_token_encrypted_response_alg: 'RSA-OAEP-256',
    id_token_encrypted_response_enc: 'A256GCM',
    userinfo_signed_response_alg: 'ES256',
    userinfo_encrypted_response_alg: 'RSA-OAEP-256',
    userinfo_encrypted_response_enc: 'A256GCM',
    jwks_uri: `${base}/jwks`,
  }];
}

const page = makePage({
  note: 'FranceConnect de développement : à ne jamais utiliser en production. Aucune donnée réelle.',
  maxWidth: '42rem',
  css: ['ul.accounts li{margin:.5rem 0}'],
});

const GENDER_FR = { female: 'femme', male: 'homme' };

function describe(a) {
  const born = a.birthplace
    ? `née ou né le ${a.birthdate} (commune ${a.birthplace})`
    : `née ou né le ${a.birthdate} à l'étranger (pays ${a.birthcountry})`;
  return `${GENDER_FR[a.gender] || a.gender}, ${born}`;
}

// RP-initiated logout like FranceConnect: no confirmation page. The session (if any) is ended
// at once, the grants and their tokens revoked, and the browser sent back to the (already
// validated) post_logout_redirect_uri with `state`.
async function endSessionAtOnce(ctx, core) {
  const { provider, session } = ctx.oidc;
  const { state } = session;
  const { accountId } = session;
  await Promise.all(Object.values(session.authorizations || {}).map(async ({ grantId }) => {
    if (!grantId) return;
    await Promise.all([
      provider.AccessToken.revokeByGrantId(grantId),
      provider.AuthorizationCode.revokeByGrantId(grantId),
      provider.RefreshToken.revokeByGrantId(grantId),
      provider.Grant.adapter.destroy(grantId),
    ]);
  }));
  await session.destroy();
  ctx.oidc.cookies.set(provider.cookieName('session'), null, COOKIE_OPTIONS);
  ctx.status = 303;
  let target = ctx.oidc.urlFor('end_session_success');
  if (state?.postLogoutRedirectUri) {
    const url = new URL(state.postLogoutRedirectUri);
    if (state.state != null) url.searchParams.set('state', state.state);
    target = url.href;
  }
  // Logged in at an identity provider (idp-proxy): its logout first, then back here and on
  // (core-oidc-provider-config-app.service.ts, franceconnect-core.mjs idpLogout).
  ctx.redirect((accountId && await core?.idpLogout(accountId, target)) || target);
}

/**
 * Starts a development FranceConnect.
 * @param {object} [options]
 * @param {number} [options.port=9300] 0 picks a free port.
 * @param {string} [options.host='127.0.0.1']
 * @param {string} [options.issuer] defaults to http://127.0.0.1:<port>/api/v2; its path (if any)
 *   is where the OIDC endpoints live. The login pages are at /interaction/:uid (no prefix).
 * @param {object[]} [options.clients] oidc-provider client metadata (defaultClients()). Omitted
 *   metadata defaults to: token_endpoint_auth_method client_secret_post, ID token and userinfo
 *   signed ES256, no encryption (add the *_encrypted_response_* metadata and a jwks_uri for it).
 * @param {object[]} [options.accounts=DEMO_USAGERS]
 * @param {object[]} [options.identityProviders=[]] identity providers FranceConnect's page offers
 *   (see franceconnect-core.mjs `createCore`, and `aidantsConnect()` below). A client's
 *   `rep_scope` (array of DelegationScope strings) is its perimeter for Aidants Connect.
 * @param {boolean} [options.quiet=false] no banner (tests)
 * @param {object} [options.misbehave] TESTS ONLY: makes this FranceConnect misbehave, so that
 *   the relying party's checks can be tested end to end. The object is kept (and returned as
 *   `misbehave`): a test may change it at run time and must switch it back off afterwards.
 *   - `idTokenNonce` (string): every ID token issued carries this `nonce` instead of the one of
 *     the authorization request.
 *   - `userinfoJson` (true): userinfo answers the account's claims as plain JSON, unsigned,
 *     whatever the client registered (FranceConnect v2 always signs it).
 * @returns {Promise<{issuer:string, port:number, provider:Provider, misbehave:object, events:object[],
 *   close():Promise<void>}>} `events`: what the core did toward identity providers, in order.
 */
export async function startFranceConnect({
  port = 9300,
  host = '127.0.0.1',
  issuer,
  clients = defaultClients(),
  accounts = DEMO_USAGERS,
  quiet = false,
  misbehave = {},
  identityProviders = [],
} = {}) {
  const byId = new Map(accounts.map((a) => [a.sub, a]));
  // FranceConnect keeps each SP's perimeter in its registration; oidc-provider gets the rest.
  const repScopes = new Map(clients.map((c) => [c.client_id, c.rep_scope]));
  clients = clients.map(({ rep_scope: _, ...metadata }) => metadata);
  let provider;
  let core;
  const fc = await startDevProvider({
    name: 'franceconnect',
    banner: BANNER,
    opName: 'FranceConnect de développement',
    page,
    port,
    host,
    issuer: (actualPort) => (issuer || `http://127.0.0.1:${actualPort}${DEFAULT_MOUNT}`).replace(/\/+$/, ''),
    mountAtIssuerPath: true,
    clients,
    accounts,
    accountsLabel: 'usagers',
    cookieKeys: DEV_COOKIE_KEYS,
    trustProxyEnv: 'FRANCECONNECT_TRUST_PROXY',
    quiet,
    login: {
      title: 'FranceConnect (développement) — Connexion de la personne accompagnée',
      choose: 'Choisissez la personne accompagnée qui se connecte.',
      account: (a) => ({ name: `${a.given_name} ${a.family_name}`, note: `${describe(a)} — ${a.sub}` }),
      moreForms: (_action, { uid, params }) => core.buttons(uid, params),
      actions: { idp: (o) => core.redirectToIdp(o) },
      cancelLabel: 'Annuler',
      acceptSub: (sub) => (byId.has(sub) ? sub : null), // only the demo usagers
      rejectedTitle: 'Personne inconnue',
      // FranceConnect (low) always reports eIDAS low ("eidas1").
      result: (accountId) => ({ accountId, acr: 'eidas1', amr: ['pwd'] }),
      cancelDescription: 'La personne a annulé la connexion avec FranceConnect',
      readCancelForm: true,
    },
    configuration: {
      clientDefaults: {
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'ES256',
        userinfo_signed_response_alg: 'ES256',
      },
      jwks: { keys: DEV_KEYS },
      async findAccount(ctx, id) {
        const federated = core.account(id);
        if (federated) return { accountId: id, async claims() { return federated; } };
        const a = byId.get(id);
        if (!a) return undefined;
        return {
          accountId: id,
          async claims() {
            const claims = { sub: id };
            for (const name of USAGER_CLAIMS) {
              if (a[name] !== undefined && a[name] !== null && a[name] !== '') claims[name] = a[name];
            }
            // The identity provider's own birthdate, as FranceConnect passes it on
            // (core-fcp-default-verify.handler.ts buildFromRnippIdentity: idp_birthdate).
            claims.idp_birthdate ??= a.birthdate;
            return claims;
          },
        };
      },
      // FranceConnect scopes: one per claim, plus the groups.
      // acr and auth_time are always in the ID token (never at userinfo: they are not account
      // claims); amr only when asked for with the claims parameter, like FranceConnect
      // (claims={"id_token":{"amr":{"essential":true}}}).
      claims: {
        amr: null,
        openid: ['sub', 'acr', 'auth_time'],
        given_name: ['given_name'],
        family_name: ['family_name'],
        birthdate: ['birthdate'],
        gender: ['gender'],
        birthplace: ['birthplace'],
        birthcountry: ['birthcountry'],
        email: ['email'],
        preferred_username: ['preferred_username'],
        // FranceConnect's own scopes (back/libs/scopes/src/data/fcp-low/fcp-low.scopes.ts).
        idp_birthdate: ['idp_birthdate'],
        idp_id: ['idp_id'],
        profile: ['given_name', 'family_name', 'birthdate', 'gender', 'preferred_username'],
        birth: ['birthplace', 'birthcountry'],
        identite_pivot: PIVOT_CLAIMS,
      },
      scopes: ['openid'],
      // The ID token carries only the `openid` scope claims (+ nonce, at_hash, amr if requested):
      // the identity is at userinfo.
      conformIdTokenClaims: true,
      acrValues: ['eidas1'],
      clientAuthMethods: ['client_secret_post', 'client_secret_basic'],
      // FranceConnect rejects authorization requests without state or nonce.
      extraParams: {
        state(ctx, value) {
          if (!value) throw new errors.InvalidRequest("missing required parameter 'state'");
        },
        nonce(ctx, value) {
          if (!value) throw new errors.InvalidRequest("missing required parameter 'nonce'");
        },
      },
      routes: {
        authorization: '/authorize',
        token: '/token',
        userinfo: '/userinfo',
        jwks: '/jwks',
        end_session: '/session/end',
      },
      enabledJWA: {
        idTokenSigningAlgValues: ['ES256', 'RS256'],
        userinfoSigningAlgValues: ['ES256', 'RS256'],
        idTokenEncryptionAlgValues: ['RSA-OAEP-256', 'ECDH-ES'],
        idTokenEncryptionEncValues: ['A256GCM'],
        userinfoEncryptionAlgValues: ['RSA-OAEP-256', 'ECDH-ES'],
        userinfoEncryptionEncValues: ['A256GCM'],
      },
      features: {
        encryption: { enabled: true },
        jwtUserinfo: { enabled: true },
        pushedAuthorizationRequests: { enabled: false },
        // Like FranceConnect: no confirmation page (see endSessionAtOnce).
        rpInitiatedLogout: { logoutSource: (ctx) => endSessionAtOnce(ctx, core) },
      },
      // Own cookie names: in a real browser, cookies are per host, not per port, and the dev
      // aidant IdP (dev/upstream.mjs) also runs on 127.0.0.1 with oidc-provider's default names.
      cookies: {
        names: { session: '_fc_session', interaction: '_fc_interaction', resume: '_fc_interaction_resume' },
      },
      ttl: { Session: 3600, Grant: 3600 },
    },
    routes: (req, res, url) => core.route(req, res, url),
    setup(created) {
      provider = created;
      core = createCore({
        provider: () => provider,
        page,
        base: provider.issuer,
        identityProviders,
        repScopeOf: async (clientId) => repScopes.get(clientId),
        quiet,
      });
      // TESTS ONLY (options.misbehave): a wrong nonce in the ID token. The authorization code
      // grant sets `nonce` before issue(), so it is overridden here, at the last moment.
      const { issue } = provider.IdToken.prototype;
      provider.IdToken.prototype.issue = function issueMaybeMisbehaving(opts) {
        if (opts?.use === 'idtoken' && typeof misbehave.idTokenNonce === 'string') this.set('nonce', misbehave.idTokenNonce);
        return issue.call(this, opts);
      };
      // TESTS ONLY (options.misbehave.userinfoJson): an unsigned userinfo.
      provider.use(async (ctx, next) => {
        await next();
        const token = ctx.oidc?.entities?.AccessToken;
        if (misbehave.userinfoJson && ctx.oidc?.route === 'userinfo' && ctx.status === 200 && token) {
          const account = await provider.Account.findAccount(ctx, token.accountId, token);
          ctx.type = 'application/json';
          ctx.body = JSON.stringify(await account.claims('userinfo', token.scope));
        }
      });
      // Without a logged-in session, oidc-provider answers end_session with a JavaScript
      // auto-submitted form (no logoutSource call): redirect at once there too.
      provider.use(async (ctx, next) => {
        await next();
        if (ctx.oidc?.route === 'end_session' && ctx.status === 200 && ctx.oidc.session && !ctx.oidc.session.accountId) {
          await endSessionAtOnce(ctx, core);
        }
      });
      // oidc-provider accepts client_secret_basic and client_secret_post interchangeably. Be as
      // strict as a FranceConnect client registration: a client_secret_post client must not use Basic.
      provider.use(async (ctx, next) => {
        const authz = ctx.get('authorization');
        if (ctx.method === 'POST' && ctx.path === '/token' && /^basic /i.test(authz)) {
          let clientId;
          try {
            const decoded = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8');
            clientId = decodeURIComponent(decoded.slice(0, decoded.indexOf(':')).replace(/\+/g, ' '));
          } catch { /* let oidc-provider answer */ }
          const client = clientId ? await provider.Client.find(clientId).catch(() => undefined) : undefined;
          if (client?.clientAuthMethod === 'client_secret_post') {
            ctx.status = 401;
            ctx.set('Cache-Control', 'no-store');
            ctx.body = {
              error: 'invalid_client',
              error_description: 'client authentication must use client_secret_post (client_id and client_secret in the body)',
            };
            return;
          }
        }
        await next();
      });
    },
  });
  return { ...fc, misbehave, events: core.events };
}

/**
 * idp-proxy registered as FranceConnect's identity provider "Aidants Connect", as FranceConnect
 * records it (S1 `docker/volumes/mongo-fcp-low/scripts/db-states/_default/idp.js`, "aidants-
 * connect-mock": allowedAcr eidas1, client_secret_post, the aidants-connect feature handlers),
 * with discovery and ES256 instead of the mock's static URLs and HS256.
 */
export function aidantsConnect({ issuer, clientID = 'franceconnect', client_secret = 'dev-franceconnect-idp-secret-change-me', allowedAcr = ['eidas1'] }) {
  return {
    uid: 'aidants-connect',
    title: 'Aidants Connect',
    discoveryUrl: `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
    clientID,
    client_secret,
    allowedAcr,
    aidantsConnect: true,
    id_token_signed_response_alg: 'ES256',
    userinfo_signed_response_alg: 'ES256',
  };
}

/**
 * The demo service provider (dev/demo-sp.mjs) as a service provider of FranceConnect, its
 * perimeter for Aidants Connect in FranceConnect's DelegationScope strings.
 */
export function demoServiceProvider(demoSpUrl = 'http://127.0.0.1:9200') {
  const base = demoSpUrl.replace(/\/+$/, '');
  return {
    client_id: 'demo-sp',
    client_name: 'Service en ligne de démonstration',
    client_secret: 'demo-sp-franceconnect-secret-change-me',
    redirect_uris: [`${base}/callback-franceconnect`],
    post_logout_redirect_uris: [`${base}/`],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'ES256',
    userinfo_signed_response_alg: 'ES256',
    rep_scope: ['Argent-Impots-Consommation', 'Social-Santé', 'Famille-Scolarité', 'Logement', 'Travail-Formation'],
  };
}

if (isMain(import.meta.url)) {
  const idpProxyUrl = process.env.IDP_PROXY_URL || 'http://127.0.0.1:8080';
  await serveUntilSignal('franceconnect', startFranceConnect({
    port: Number(process.env.FRANCECONNECT_PORT || 9300),
    issuer: process.env.FRANCECONNECT_ISSUER || undefined,
    clients: [...defaultClients(idpProxyUrl), demoServiceProvider(process.env.DEMO_SP_URL || undefined)],
    identityProviders: [aidantsConnect({ issuer: idpProxyUrl })],
  }));
}
