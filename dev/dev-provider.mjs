// DEVELOPMENT / DEMO TOOL — never deploy this.
//
// What the development OpenID providers (dev/upstream.mjs, the aidant IdP, and
// dev/franceconnect.mjs, a FranceConnect v2 stand-in) have in common, on oidc-provider:
//   - the HTML pages (shell, escaping, "no-store" answers, error pages);
//   - the HTTP server: the login pages at /interaction/:uid, everything else to oidc-provider
//     (optionally mounted under the issuer's path), listening, closing, the banner;
//   - the passwordless login: pick an account, auto-consent, switch account without the
//     JavaScript logout form, cancel (error=access_denied);
//   - the oidc-provider settings both use (code flow, PKCE S256, no dev interactions, claims
//     parameter, RP-initiated logout pages, error page, Lax signed cookies, token lifetimes).
// Each provider file keeps what differs: accounts, claims, scopes, clients, encryption, paths,
// wording.

import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import Provider from 'oidc-provider';

export const escapeHtml = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

/**
 * The page shell of a development provider.
 * @param {object} o
 * @param {string} o.note the "development only" warning at the top of every page (HTML)
 * @param {string} o.maxWidth CSS width of the page, e.g. '40rem'
 * @param {string[]} [o.css] more CSS rules, after the common ones
 * @returns {(title: string, body: string) => string} title is text, body is HTML
 */
export function makePage({ note, maxWidth, css = [] }) {
  const style = [
    `body{font-family:system-ui,sans-serif;max-width:${maxWidth};margin:2rem auto;padding:0 1rem;line-height:1.5;color:#161616}`,
    '.dev{background:#fff4e5;border:2px solid #b34000;padding:.5rem 1rem;font-weight:bold}',
    'button{font:inherit;padding:.5rem 1rem;margin:.25rem 0;cursor:pointer}',
    'ul.accounts{list-style:none;padding:0}',
    ...css,
    ':focus{outline:3px solid #0a76f6;outline-offset:2px}',
  ].join('\n');
  return (title, body) => `<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
${style}
</style>
</head>
<body>
<p class="dev" role="note">${note}</p>
<main>
${body}
</main>
</body>
</html>`;
}

export async function readForm(req, limit = 16 * 1024) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('corps de requête trop volumineux'), { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

// Plain http on 127.0.0.1: oidc-provider only marks cookies Secure on https requests, but its
// default SameSite=None for the session cookie is dropped by browsers without Secure. Lax is
// enough here (top-level redirects), and signed cookies keep them tamper-proof.
export const COOKIE_OPTIONS = Object.freeze({ signed: true, httpOnly: true, sameSite: 'lax' });

/**
 * Finishes `interaction` with `result` and sends the browser back to oidc-provider's resume
 * endpoint, as `provider.interactionFinished` does, for an interaction already loaded.
 */
export async function resumeWith(res, interaction, result) {
  interaction.result = result;
  await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  res.statusCode = 303;
  res.setHeader('Location', interaction.returnTo);
  res.setHeader('Content-Length', '0');
  return res.end();
}

const isPlainObject = (v) => v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;

/** `over` on top of `base`, plain objects merged key by key (arrays and functions replaced). */
function merge(base, over) {
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlainObject(value) && isPlainObject(base[key]) ? merge(base[key], value) : value;
  }
  return out;
}

const INTERACTION_PATH = /^\/interaction\/([^/]+)(?:\/([a-z]+))?\/?$/;

/**
 * Starts a development OpenID provider: HTTP server, login pages and oidc-provider.
 * @param {object} o
 * @param {string} o.name log prefix ('upstream')
 * @param {string} o.banner printed at start unless quiet
 * @param {string} o.opName the provider in French, after "du": "fournisseur d'identité de développement"
 * @param {(title: string, body: string) => string} o.page from makePage()
 * @param {number} o.port 0 picks a free port
 * @param {string} o.host
 * @param {(port: number) => string} o.issuer the issuer, once the port is known
 * @param {boolean} [o.mountAtIssuerPath=false] OIDC endpoints under the issuer's path (like an
 *   express `app.use('/api/v2', provider.callback())`), anything else there is a 404
 * @param {object[]} o.clients oidc-provider client metadata
 * @param {object[]} o.accounts the accounts offered on the login page ({ sub, ... })
 * @param {string} o.accountsLabel what the accounts are called in the banner ('comptes')
 * @param {string[]} o.cookieKeys cookie signing keys
 * @param {string} o.trustProxyEnv environment variable that, set to 1, trusts X-Forwarded-*
 * @param {boolean} [o.quiet=false] no banner, no error logs (tests)
 * @param {object} o.login the login interaction (its wording is HTML, inserted as is):
 *   - title: the login page's title and heading;
 *   - choose: the sentence asking to choose an account;
 *   - account(a) → { name, note }: a button's text and the text next to it;
 *   - moreForms(formAction, { uid, params }) → HTML placed between the accounts and "cancel"
 *     ('' for none);
 *   - actions: more POST actions of the login page, { name: async ({ req, res, uid, details }) }
 *     at /interaction/:uid/<name> (optional);
 *   - cancelLabel: text of the cancel button;
 *   - acceptSub(sub) → the account id to log in, or null (then a 400 page titled rejectedTitle);
 *   - rejectedTitle;
 *   - result(accountId) → the interaction's `login` result;
 *   - cancelDescription: error_description of the access_denied answer;
 *   - readCancelForm: read the (ignored) form body before answering a cancel.
 * @param {object} o.configuration oidc-provider configuration of this provider, merged over the
 *   common one (plain objects key by key: features, cookies, ttl...)
 * @param {(provider: Provider) => void} [o.setup] called right after the Provider is created
 *   (middlewares)
 * @param {(req, res, url: URL) => Promise<boolean>} [o.routes] more routes, tried first (also
 *   under the issuer's path); true when handled
 * @returns {Promise<{issuer:string, port:number, provider:Provider, close():Promise<void>}>}
 */
export async function startDevProvider({
  name, banner, opName, page, port, host, issuer, mountAtIssuerPath = false, clients, accounts,
  accountsLabel, cookieKeys, trustProxyEnv, quiet = false, login, configuration, setup, routes,
}) {
  let provider; // set once the port (hence the issuer) is known
  let mountPath = '';

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!quiet) console.error(`${name}: erreur`, err);
      if (!res.headersSent) {
        send(res, err.status || 500, page('Erreur', `<h1>Erreur</h1><p>${escapeHtml(err.message)}</p>`));
      } else {
        res.end();
      }
    });
  });

  async function handle(req, res) {
    const url = new URL(req.url, 'http://placeholder');
    if (routes && await routes(req, res, url)) return undefined;

    // The OIDC endpoints, under the issuer's path (oidc-provider derives its mount path from
    // req.originalUrl).
    if (mountPath && (url.pathname === mountPath || url.pathname.startsWith(`${mountPath}/`))) {
      req.originalUrl = req.url;
      req.url = req.url.slice(mountPath.length) || '/';
      if (req.url.startsWith('?')) req.url = `/${req.url}`;
      return provider.callback()(req, res);
    }

    const m = INTERACTION_PATH.exec(url.pathname);
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
      if (prompt.name === 'login' || action === 'login') result.login = login.result(accountId);
      if (result.login && session?.accountId && session.accountId !== accountId) {
        // Switching account: oidc-provider would answer with a JavaScript auto-submitted logout
        // form. End the previous session here instead, so the redirect chain stays plain HTTP.
        const previous = await provider.Session.findByUid(session.uid);
        if (previous) await previous.destroy();
        details.session = undefined;
        return resumeWith(res, details, result);
      }
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    };

    if (req.method === 'GET' && !action) {
      if (prompt.name === 'consent' && session?.accountId) {
        return finish(session.accountId); // already logged in, no prompt=login: consent silently
      }
      const client = await provider.Client.find(String(params.client_id));
      const formAction = `/interaction/${encodeURIComponent(uid)}/login`;
      const buttons = accounts.map((a) => {
        const { name: text, note } = login.account(a);
        return `  <li><button type="submit" name="sub" value="${escapeHtml(a.sub)}">${escapeHtml(text)}</button> <small>${escapeHtml(note)}</small></li>`;
      }).join('\n');
      return send(res, 200, page(login.title, `
<h1>${login.title}</h1>
<p>Service demandeur : <strong>${escapeHtml(client?.clientName || params.client_id)}</strong>.
${login.choose} Aucun mot de passe n'est demandé.</p>
<form method="post" action="${escapeHtml(formAction)}">
<ul class="accounts">
${buttons}
</ul>
</form>
${login.moreForms(formAction, { uid, params })}<form method="post" action="/interaction/${escapeHtml(encodeURIComponent(uid))}/abort">
<button type="submit">${login.cancelLabel}</button>
</form>`));
    }

    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const sub = login.acceptSub(form.get('sub') || '');
      if (sub === null) {
        return send(res, 400, page(login.rejectedTitle, `<h1>${login.rejectedTitle}</h1>
<p><a href="/interaction/${escapeHtml(encodeURIComponent(uid))}">Revenir à la page de connexion</a></p>`));
      }
      return finish(sub);
    }

    const extra = action && login.actions?.[action];
    if (req.method === 'POST' && extra) return extra({ req, res, uid, details });

    if (req.method === 'POST' && action === 'abort') {
      if (login.readCancelForm) await readForm(req);
      return provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: login.cancelDescription,
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
  const iss = issuer(actualPort);
  if (mountAtIssuerPath) mountPath = new URL(iss).pathname.replace(/\/+$/, '');

  const common = {
    clients,
    responseTypes: ['code'],
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: false }, // our own pages above
      claimsParameter: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page('Déconnexion', `<h1>Se déconnecter du ${opName} ?</h1>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Oui, me déconnecter</button>
<button type="submit" form="op.logoutForm">Non, rester connecté</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Déconnecté', `<h1>Vous êtes déconnecté du ${opName}.</h1>`);
        },
      },
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Erreur', `<h1>Erreur du ${opName}</h1>
<dl>${Object.entries(out).map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`);
    },
    cookies: { keys: cookieKeys, long: COOKIE_OPTIONS, short: COOKIE_OPTIONS },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600 },
  };
  provider = new Provider(iss, merge(common, configuration));
  setup?.(provider);
  // Set <trustProxyEnv>=1 only behind a local reverse proxy that sets X-Forwarded-*.
  provider.proxy = process.env[trustProxyEnv] === '1';

  if (!quiet) {
    console.warn(`\n*** ${banner} ***\n`);
    console.warn(`${name}: issuer ${iss}`);
    console.warn(`${name}: clients ${clients.map((c) => c.client_id).join(', ')}; ${accountsLabel} ${accounts.map((a) => a.sub).join(', ')}`);
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

/** Whether the module at `moduleUrl` (import.meta.url) is the one `node` was asked to run. */
export const isMain = (moduleUrl) => Boolean(process.argv[1]) && moduleUrl === pathToFileURL(process.argv[1]).href;

/** Run from the command line: waits for the provider, prints its discovery URL, stops on a signal. */
export async function serveUntilSignal(name, starting) {
  const op = await starting;
  console.warn(`${name}: discovery ${op.issuer}/.well-known/openid-configuration`);
  const stop = () => op.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
