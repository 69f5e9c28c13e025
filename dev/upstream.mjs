// DEVELOPMENT / DEMO TOOL — never deploy this.
//
// A development aidant identity provider (the "upstream" IdP that idp-proxy is a relying party
// of), built on oidc-provider. It stands in for the real aidant IdP (ProConnect-like) on a
// developer's machine and in the end-to-end tests (tests/e2e/): anyone can log in as anyone by
// clicking a button, there is no password, and its signing keys (upstream-keys.json) are public.
//
//   node dev/upstream.mjs          → http://127.0.0.1:9100 with the demo accounts below
//   import { startUpstream } from "./upstream.mjs"  → one instance per test, any port
//
// Environment when run directly: UPSTREAM_PORT (9100), UPSTREAM_ISSUER
// (http://127.0.0.1:$UPSTREAM_PORT), IDP_PROXY_URL (http://127.0.0.1:8080, used for the default
// client's redirect URIs).

import { readFileSync } from 'node:fs';
import {
  escapeHtml, isMain, makePage, serveUntilSignal, startDevProvider,
} from './dev-provider.mjs';

const BANNER = 'DEVELOPMENT IDENTITY PROVIDER — never use in production';

// DEVELOPMENT ONLY: fixed signing keys (one ES256, one RS256), generated once and committed so
// that ID tokens stay verifiable across restarts. They are public: never use them anywhere else.
const DEV_KEYS = JSON.parse(readFileSync(new URL('./upstream-keys.json', import.meta.url), 'utf8')).keys;

// DEVELOPMENT ONLY: cookie signing key of this dev IdP (public, in the repository).
const DEV_COOKIE_KEYS = ['dev-upstream-cookie-key-not-a-secret'];

export const DEMO_ACCOUNTS = Object.freeze([
  { sub: 'abdel', email: 'abdel.karim@acacias.example', given_name: 'Abdel', family_name: 'KARIM' },
  { sub: 'sophie', email: 'sophie.martin@tilleuls.example', given_name: 'Sophie', family_name: 'MARTIN' },
  // Known here but unknown to idp-proxy: shows its "aidant inconnu" page.
  { sub: 'inconnu', email: 'jean.inconnu@example.org', given_name: 'Jean', family_name: 'INCONNU' },
]);

export function defaultClients(idpProxyUrl = 'http://127.0.0.1:8080') {
  const base = idpProxyUrl.replace(/\/+$/, '');
  return [{
    client_id: 'idp-proxy',
    client_secret: 'dev-upstream-secret-change-me',
    redirect_uris: [`${base}/login/callback`],
    post_logout_redirect_uris: [`${base}/logout/callback`],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }];
}

const page = makePage({
  note: "Fournisseur d'identité de développement : à ne jamais utiliser en production.",
  maxWidth: '40rem',
  css: [
    'label{display:block;margin-top:1rem}',
    'input[type=text]{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}',
  ],
});

/**
 * Starts a development aidant IdP.
 * @param {object} [options]
 * @param {number} [options.port=9100] 0 picks a free port.
 * @param {string} [options.host='127.0.0.1']
 * @param {string} [options.issuer] defaults to http://127.0.0.1:<port>
 * @param {object[]} [options.clients] oidc-provider client metadata (defaultClients())
 * @param {{sub:string,email?:string,given_name?:string,family_name?:string,acr?:string}[]} [options.accounts]
 * @param {boolean} [options.quiet=false] no banner (tests)
 * @returns {Promise<{issuer:string, port:number, provider:Provider, close():Promise<void>}>}
 */
export async function startUpstream({
  port = 9100,
  host = '127.0.0.1',
  issuer,
  clients = defaultClients(),
  accounts = DEMO_ACCOUNTS,
  quiet = false,
  adapter, // oidc-provider storage adapter class; default: its in-memory LRU (1000 entries)
} = {}) {
  const byId = new Map(accounts.map((a) => [a.sub, a]));
  return startDevProvider({
    name: 'upstream',
    banner: BANNER,
    opName: "fournisseur d'identité de développement",
    page,
    port,
    host,
    issuer: (actualPort) => issuer || `http://127.0.0.1:${actualPort}`,
    clients,
    accounts,
    accountsLabel: 'comptes',
    cookieKeys: DEV_COOKIE_KEYS,
    trustProxyEnv: 'UPSTREAM_TRUST_PROXY',
    quiet,
    login: {
      title: "Connexion aidant (fournisseur d'identité de développement)",
      choose: "Choisissez l'identité avec laquelle vous connecter.",
      account: (a) => ({
        name: `${a.given_name ?? ''} ${a.family_name ?? ''}`.trim() || a.sub,
        note: `(${a.sub}${a.email ? ` — ${a.email}` : ''})`,
      }),
      // Any subject, e.g. one idp-proxy does not know.
      moreForms: (formAction) => `<form method="post" action="${escapeHtml(formAction)}">
<label for="sub">Autre identifiant (sub), par exemple une identité inconnue d'idp-proxy</label>
<input type="text" id="sub" name="sub" required maxlength="255" autocomplete="off">
<button type="submit">Se connecter avec cet identifiant</button>
</form>
`,
      cancelLabel: 'Annuler la connexion',
      acceptSub(sub) {
        const trimmed = sub.trim();
        return trimmed !== '' && trimmed.length <= 255 ? trimmed : null;
      },
      rejectedTitle: 'Identifiant manquant',
      // The eIDAS level of this login: an account's own `acr`, else eidas1 (password only).
      result: (accountId) => ({ accountId, acr: byId.get(accountId)?.acr ?? 'eidas1' }),
      cancelDescription: "L'utilisateur a annulé la connexion",
    },
    configuration: {
      ...(adapter ? { adapter } : {}),
      jwks: { keys: DEV_KEYS },
      acrValues: ['eidas1', 'eidas2', 'eidas3'],
      // Any subject may log in (the free text field): unknown ones only carry `sub`.
      async findAccount(ctx, id) {
        const a = byId.get(id) || { sub: id };
        return {
          accountId: id,
          async claims() {
            const claims = { sub: id };
            if (a.email) { claims.email = a.email; claims.email_verified = true; }
            if (a.given_name) claims.given_name = a.given_name;
            if (a.family_name) claims.family_name = a.family_name;
            return claims;
          },
        };
      },
      claims: {
        openid: ['sub', 'acr'],
        email: ['email', 'email_verified'],
        profile: ['given_name', 'family_name'],
      },
      // ID tokens carry the scope claims too (idp-proxy may read them from the ID token or userinfo).
      conformIdTokenClaims: false,
      ttl: { Session: 8 * 3600, Grant: 8 * 3600 },
    },
  });
}

if (isMain(import.meta.url)) {
  await serveUntilSignal('upstream', startUpstream({
    port: Number(process.env.UPSTREAM_PORT || 9100),
    issuer: process.env.UPSTREAM_ISSUER || undefined,
    clients: defaultClients(process.env.IDP_PROXY_URL || 'http://127.0.0.1:8080'),
  }));
}
