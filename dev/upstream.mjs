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

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import Provider from 'oidc-provider';

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
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#161616}
.dev{background:#fff4e5;border:2px solid #b34000;padding:.5rem 1rem;font-weight:bold}
button{font:inherit;padding:.5rem 1rem;margin:.25rem 0;cursor:pointer}
ul.accounts{list-style:none;padding:0}
label{display:block;margin-top:1rem}
input[type=text]{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}
:focus{outline:3px solid #0a76f6;outline-offset:2px}
</style>
</head>
<body>
<p class="dev" role="note">Fournisseur d'identité de développement : à ne jamais utiliser en production.</p>
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

/**
 * Starts a development aidant IdP.
 * @param {object} [options]
 * @param {number} [options.port=9100] 0 picks a free port.
 * @param {string} [options.host='127.0.0.1']
 * @param {string} [options.issuer] defaults to http://127.0.0.1:<port>
 * @param {object[]} [options.clients] oidc-provider client metadata (defaultClients())
 * @param {{sub:string,email?:string,given_name?:string,family_name?:string}[]} [options.accounts]
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
  let provider; // set once the port (hence the issuer) is known
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!quiet) console.error('upstream: erreur', err);
      if (!res.headersSent) {
        send(res, err.status || 500, page('Erreur', `<h1>Erreur</h1><p>${escapeHtml(err.message)}</p>`));
      } else {
        res.end();
      }
    });
  });

  async function handle(req, res) {
    const url = new URL(req.url, 'http://placeholder');
    const m = /^\/interaction\/([^/]+)(?:\/(login|abort))?\/?$/.exec(url.pathname);
    if (!m) return provider.callback()(req, res);
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
      if (prompt.name === 'login' || action === 'login') result.login = { accountId };
      if (result.login && session?.accountId && session.accountId !== accountId) {
        // Switching identity: oidc-provider would answer with a JavaScript auto-submitted logout
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
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    };

    if (req.method === 'GET' && !action) {
      if (prompt.name === 'consent' && session?.accountId) {
        return finish(session.accountId); // already logged in: consent silently
      }
      const client = await provider.Client.find(String(params.client_id));
      const formAction = `/interaction/${encodeURIComponent(uid)}/login`;
      const buttons = accounts.map((a) => `  <li><button type="submit" name="sub" value="${escapeHtml(a.sub)}">${escapeHtml(`${a.given_name ?? ''} ${a.family_name ?? ''}`.trim() || a.sub)}</button> <small>(${escapeHtml(a.sub)}${a.email ? ` — ${escapeHtml(a.email)}` : ''})</small></li>`).join('\n');
      return send(res, 200, page("Connexion aidant (fournisseur d'identité de développement)", `
<h1>Connexion aidant (fournisseur d'identité de développement)</h1>
<p>Service demandeur : <strong>${escapeHtml(client?.clientName || params.client_id)}</strong>.
Choisissez l'identité avec laquelle vous connecter. Aucun mot de passe n'est demandé.</p>
<form method="post" action="${escapeHtml(formAction)}">
<ul class="accounts">
${buttons}
</ul>
</form>
<form method="post" action="${escapeHtml(formAction)}">
<label for="sub">Autre identifiant (sub), par exemple une identité inconnue d'idp-proxy</label>
<input type="text" id="sub" name="sub" required maxlength="255" autocomplete="off">
<button type="submit">Se connecter avec cet identifiant</button>
</form>
<form method="post" action="/interaction/${escapeHtml(encodeURIComponent(uid))}/abort">
<button type="submit">Annuler la connexion</button>
</form>`));
    }

    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const sub = (form.get('sub') || '').trim();
      if (!sub || sub.length > 255) {
        return send(res, 400, page('Identifiant manquant', `<h1>Identifiant manquant</h1>
<p><a href="/interaction/${escapeHtml(encodeURIComponent(uid))}">Revenir à la page de connexion</a></p>`));
      }
      return finish(sub);
    }

    if (req.method === 'POST' && action === 'abort') {
      return provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: "L'utilisateur a annulé la connexion",
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
  const iss = issuer || `http://127.0.0.1:${actualPort}`;

  const byId = new Map(accounts.map((a) => [a.sub, a]));
  provider = new Provider(iss, {
    ...(adapter ? { adapter } : {}),
    clients,
    jwks: { keys: DEV_KEYS },
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
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['given_name', 'family_name'],
    },
    // ID tokens carry the scope claims too (idp-proxy may read them from the ID token or userinfo).
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: false }, // our own pages above
      claimsParameter: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page('Déconnexion', `<h1>Se déconnecter du fournisseur d'identité de développement ?</h1>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Oui, me déconnecter</button>
<button type="submit" form="op.logoutForm">Non, rester connecté</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Déconnecté', '<h1>Vous êtes déconnecté du fournisseur d\'identité de développement.</h1>');
        },
      },
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Erreur', `<h1>Erreur du fournisseur d'identité de développement</h1>
<dl>${Object.entries(out).map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`);
    },
    // Plain http on 127.0.0.1: oidc-provider only marks cookies Secure on https requests, but its
    // default SameSite=None for the session cookie is dropped by browsers without Secure. Lax is
    // enough here (top-level redirects), and signed cookies keep them tamper-proof.
    cookies: {
      keys: DEV_COOKIE_KEYS,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
  });
  // Set UPSTREAM_TRUST_PROXY=1 only behind a local reverse proxy that sets X-Forwarded-*.
  provider.proxy = process.env.UPSTREAM_TRUST_PROXY === '1';

  if (!quiet) {
    console.warn(`\n*** ${BANNER} ***\n`);
    console.warn(`upstream: issuer ${iss}`);
    console.warn(`upstream: clients ${clients.map((c) => c.client_id).join(', ')}; comptes ${accounts.map((a) => a.sub).join(', ')}`);
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
  const port = Number(process.env.UPSTREAM_PORT || 9100);
  const up = await startUpstream({
    port,
    issuer: process.env.UPSTREAM_ISSUER || undefined,
    clients: defaultClients(process.env.IDP_PROXY_URL || 'http://127.0.0.1:8080'),
  });
  console.warn(`upstream: discovery ${up.issuer}/.well-known/openid-configuration`);
  const stop = () => up.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

