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
//   node dev/franceconnect.mjs   → http://127.0.0.1:9300/api/v2 with the demo usagers below
//   import { startFranceConnect } from "./franceconnect.mjs"  → one instance per test, any port
//
// Environment when run directly: FRANCECONNECT_PORT (9300), FRANCECONNECT_ISSUER
// (http://127.0.0.1:$FRANCECONNECT_PORT/api/v2), IDP_PROXY_URL (http://127.0.0.1:8080, base of
// the default client's redirect URIs and jwks_uri).

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import Provider, { errors } from 'oidc-provider';

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
]);

const PIVOT_CLAIMS = ['given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry'];
const USAGER_CLAIMS = [...PIVOT_CLAIMS, 'email', 'preferred_username'];

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

const escapeHtml = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#161616}
.dev{background:#fff4e5;border:2px solid #b34000;padding:.5rem 1rem;font-weight:bold}
button{font:inherit;padding:.5rem 1rem;margin:.25rem 0;cursor:pointer}
ul.accounts{list-style:none;padding:0}
ul.accounts li{margin:.5rem 0}
:focus{outline:3px solid #0a76f6;outline-offset:2px}
</style>
</head>
<body>
<p class="dev" role="note">FranceConnect de développement : à ne jamais utiliser en production. Aucune donnée réelle.</p>
<main>
${body}
</main>
</body>
</html>`;
}

async function readForm(req, limit = 16 * 1024) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('corps de requête trop volumineux'), { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

const GENDER_FR = { female: 'femme', male: 'homme' };

function describe(a) {
  const born = a.birthplace
    ? `née ou né le ${a.birthdate} (commune ${a.birthplace})`
    : `née ou né le ${a.birthdate} à l'étranger (pays ${a.birthcountry})`;
  return `${GENDER_FR[a.gender] || a.gender}, ${born}`;
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
 * @param {boolean} [options.quiet=false] no banner (tests)
 * @returns {Promise<{issuer:string, port:number, provider:Provider, close():Promise<void>}>}
 */
export async function startFranceConnect({
  port = 9300,
  host = '127.0.0.1',
  issuer,
  clients = defaultClients(),
  accounts = DEMO_USAGERS,
  quiet = false,
} = {}) {
  let provider; // set once the port (hence the issuer) is known
  let mountPath = '';
  const byId = new Map(accounts.map((a) => [a.sub, a]));

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!quiet) console.error('franceconnect: erreur', err);
      if (!res.headersSent) {
        send(res, err.status || 500, page('Erreur', `<h1>Erreur</h1><p>${escapeHtml(err.message)}</p>`));
      } else {
        res.end();
      }
    });
  });

  async function handle(req, res) {
    const url = new URL(req.url, 'http://placeholder');

    // The OIDC endpoints, under the issuer's path (like an express `app.use('/api/v2', ...)`:
    // oidc-provider derives its mount path from req.originalUrl).
    if (mountPath && (url.pathname === mountPath || url.pathname.startsWith(`${mountPath}/`))) {
      req.originalUrl = req.url;
      req.url = req.url.slice(mountPath.length) || '/';
      if (req.url.startsWith('?')) req.url = `/${req.url}`;
      return provider.callback()(req, res);
    }

    const m = /^\/interaction\/([^/]+)(?:\/(login|abort))?\/?$/.exec(url.pathname);
    if (!m) {
      if (!mountPath) return provider.callback()(req, res);
      return send(res, 404, page('Introuvable', `<h1>Page introuvable</h1>
<p>Les points d'accès OpenID Connect sont sous <code>${escapeHtml(mountPath)}</code>.</p>`));
    }
    const [, uid, action] = m;

    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      return send(res, 400, page('Session expirée', `<h1>Session de connexion expirée ou inconnue</h1>
<p>Recommencez depuis le service en ligne.</p>`));
    }
    if (details.uid !== uid) {
      return send(res, 400, page('Session invalide', '<h1>Session de connexion invalide</h1>'));
    }
    const { prompt, params, session } = details;

    const finish = async (accountId) => {
      // Auto-consent: grant every requested scope and claim, no consent page.
      const grant = new provider.Grant({ accountId, clientId: params.client_id });
      if (params.scope) grant.addOIDCScope(String(params.scope));
      const missing = prompt.details || {};
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      const result = { consent: { grantId } };
      if (prompt.name === 'login' || action === 'login') {
        // FranceConnect (low) always reports eIDAS low ("eidas1").
        result.login = { accountId, acr: 'eidas1', amr: ['pwd'] };
      }
      if (result.login && session?.accountId && session.accountId !== accountId) {
        // Switching usager: oidc-provider would answer with a JavaScript auto-submitted logout
        // form. End the previous session here instead, so the redirect chain stays plain HTTP.
        const previous = await provider.Session.findByUid(session.uid);
        if (previous) await previous.destroy();
        details.session = undefined;
        details.result = result;
        await details.save(details.exp - Math.floor(Date.now() / 1000));
        res.statusCode = 303;
        res.setHeader('Location', details.returnTo);
        res.setHeader('Content-Length', '0');
        return res.end();
      }
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    };

    if (req.method === 'GET' && !action) {
      if (prompt.name === 'consent' && session?.accountId) {
        return finish(session.accountId); // already logged in, no prompt=login: consent silently
      }
      const client = await provider.Client.find(String(params.client_id));
      const formAction = `/interaction/${encodeURIComponent(uid)}/login`;
      const buttons = accounts.map((a) => `  <li><button type="submit" name="sub" value="${escapeHtml(a.sub)}">${escapeHtml(`${a.given_name} ${a.family_name}`)}</button>
    <small>${escapeHtml(describe(a))} — ${escapeHtml(a.sub)}</small></li>`).join('\n');
      return send(res, 200, page('FranceConnect (développement) — Connexion de la personne accompagnée', `
<h1>FranceConnect (développement) — Connexion de la personne accompagnée</h1>
<p>Service demandeur : <strong>${escapeHtml(client?.clientName || params.client_id)}</strong>.
Choisissez la personne accompagnée qui se connecte. Aucun mot de passe n'est demandé.</p>
<form method="post" action="${escapeHtml(formAction)}">
<ul class="accounts">
${buttons}
</ul>
</form>
<form method="post" action="/interaction/${escapeHtml(encodeURIComponent(uid))}/abort">
<button type="submit">Annuler</button>
</form>`));
    }

    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const sub = form.get('sub') || '';
      if (!byId.has(sub)) {
        return send(res, 400, page('Personne inconnue', `<h1>Personne inconnue</h1>
<p><a href="/interaction/${escapeHtml(encodeURIComponent(uid))}">Revenir à la page de connexion</a></p>`));
      }
      return finish(sub);
    }

    if (req.method === 'POST' && action === 'abort') {
      await readForm(req);
      return provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: "La personne a annulé la connexion avec FranceConnect",
      }, { mergeWithLastSubmission: false });
    }

    res.setHeader('Allow', action ? 'POST' : 'GET');
    return send(res, 405, page('Méthode non autorisée', '<h1>Méthode non autorisée</h1>'));
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const actualPort = server.address().port;
  const iss = (issuer || `http://127.0.0.1:${actualPort}${DEFAULT_MOUNT}`).replace(/\/+$/, '');
  mountPath = new URL(iss).pathname.replace(/\/+$/, '');

  const cookieOptions = { signed: true, httpOnly: true, sameSite: 'lax' };

  // RP-initiated logout like FranceConnect: no confirmation page. The session (if any) is ended
  // at once, the grants and their tokens revoked, and the browser sent back to the (already
  // validated) post_logout_redirect_uri with `state`.
  async function endSessionAtOnce(ctx) {
    const { session } = ctx.oidc;
    const { state } = session;
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
    ctx.oidc.cookies.set(provider.cookieName('session'), null, cookieOptions);
    ctx.status = 303;
    if (state?.postLogoutRedirectUri) {
      const target = new URL(state.postLogoutRedirectUri);
      if (state.state != null) target.searchParams.set('state', state.state);
      ctx.redirect(target.href);
    } else {
      ctx.redirect(ctx.oidc.urlFor('end_session_success'));
    }
  }

  provider = new Provider(iss, {
    clients,
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'ES256',
      userinfo_signed_response_alg: 'ES256',
    },
    jwks: { keys: DEV_KEYS },
    async findAccount(ctx, id) {
      const a = byId.get(id);
      if (!a) return undefined;
      return {
        accountId: id,
        async claims() {
          const claims = { sub: id };
          for (const name of USAGER_CLAIMS) {
            if (a[name] !== undefined && a[name] !== null && a[name] !== '') claims[name] = a[name];
          }
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
      profile: ['given_name', 'family_name', 'birthdate', 'gender', 'preferred_username'],
      birth: ['birthplace', 'birthcountry'],
      identite_pivot: PIVOT_CLAIMS,
    },
    scopes: ['openid'],
    // The ID token carries only the `openid` scope claims (+ nonce, at_hash, amr if requested):
    // the identity is at userinfo.
    conformIdTokenClaims: true,
    acrValues: ['eidas1'],
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_post', 'client_secret_basic'],
    pkce: { methods: ['S256'], required: () => true },
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
      devInteractions: { enabled: false }, // our own pages above
      claimsParameter: { enabled: true },
      encryption: { enabled: true },
      jwtUserinfo: { enabled: true },
      pushedAuthorizationRequests: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        // Like FranceConnect: no confirmation page. The session is ended at once and the browser
        // sent back to the (validated) post_logout_redirect_uri with `state`.
        async logoutSource(ctx) {
          await endSessionAtOnce(ctx);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Déconnecté', '<h1>Vous êtes déconnecté du FranceConnect de développement.</h1>');
        },
      },
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Erreur', `<h1>Erreur du FranceConnect de développement</h1>
<dl>${Object.entries(out).map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`);
    },
    // Own cookie names: in a real browser, cookies are per host, not per port, and the dev
    // aidant IdP (dev/upstream.mjs) also runs on 127.0.0.1 with oidc-provider's default names.
    // Plain http: SameSite=Lax rather than oidc-provider's default None (dropped without Secure).
    cookies: {
      keys: DEV_COOKIE_KEYS,
      names: { session: '_fc_session', interaction: '_fc_interaction', resume: '_fc_interaction_resume' },
      long: cookieOptions,
      short: cookieOptions,
    },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
  });
  // Without a logged-in session, oidc-provider answers end_session with a JavaScript
  // auto-submitted form (no logoutSource call): redirect at once there too.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'end_session' && ctx.status === 200 && ctx.oidc.session && !ctx.oidc.session.accountId) {
      await endSessionAtOnce(ctx);
    }
  });
  // oidc-provider accepts client_secret_basic and client_secret_post interchangeably. Be as strict
  // as a FranceConnect client registration: a client_secret_post client must not use Basic.
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
  // Set FRANCECONNECT_TRUST_PROXY=1 only behind a local reverse proxy that sets X-Forwarded-*.
  provider.proxy = process.env.FRANCECONNECT_TRUST_PROXY === '1';

  if (!quiet) {
    console.warn(`\n*** ${BANNER} ***\n`);
    console.warn(`franceconnect: issuer ${iss}`);
    console.warn(`franceconnect: clients ${clients.map((c) => c.client_id).join(', ')}; usagers ${accounts.map((a) => a.sub).join(', ')}`);
  }

  return {
    issuer: iss,
    port: actualPort,
    provider,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.FRANCECONNECT_PORT || 9300);
  const fc = await startFranceConnect({
    port,
    issuer: process.env.FRANCECONNECT_ISSUER || undefined,
    clients: defaultClients(process.env.IDP_PROXY_URL || 'http://127.0.0.1:8080'),
  });
  console.warn(`franceconnect: discovery ${fc.issuer}/.well-known/openid-configuration`);
  const stop = () => fc.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
