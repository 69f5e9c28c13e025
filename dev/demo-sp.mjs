// DEVELOPMENT / DEMO TOOL — never deploy this.
//
// A demo service provider ("service en ligne") that logs in with idp-proxy through openid-client
// v5, the way a real administration's site would: code flow with state, nonce and PKCE S256,
// every check of the ID token (signature, iss, aud, nonce, exp, at_hash) and of the response
// (state, RFC 9207 iss), then userinfo. It shows what the SP receives: the usager's identity and
// the aidant who carried out the démarche (the `act` claim).
//
//   node dev/demo-sp.mjs   → http://127.0.0.1:9200
//
// It can also log in through the development FranceConnect (dev/franceconnect.mjs), as a
// service behind FranceConnect does: FranceConnect offers idp-proxy as its identity provider
// "Aidants Connect" and answers with the claims it builds itself (its own sub, the identity,
// idp_birthdate, idp_id: no `act`).
//
// Environment: IDP_PROXY_ISSUER (http://127.0.0.1:8080), DEMO_SP_PORT (9200),
// DEMO_SP_CLIENT_ID (demo-sp), DEMO_SP_CLIENT_SECRET (demo-sp-secret-change-me),
// FRANCECONNECT_ISSUER (http://127.0.0.1:9300/api/v2).
// idp-proxy's configuration must declare the matching client (redirect URI
// http://127.0.0.1:9200/callback, post-logout URI http://127.0.0.1:9200/); the development
// FranceConnect declares the demo service itself (demoServiceProvider()).

import { createServer } from 'node:http';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Issuer, custom, errors, generators } from 'openid-client';
import { decodeJwt, decodeProtectedHeader } from 'jose';

const PORT = Number(process.env.DEMO_SP_PORT || 9200);
const BASE = `http://127.0.0.1:${PORT}`;
const ISSUER = process.env.IDP_PROXY_ISSUER || 'http://127.0.0.1:8080';
const REDIRECT_URI = `${BASE}/callback`;
const POST_LOGOUT_REDIRECT_URI = `${BASE}/`;
const CLIENT = {
  client_id: process.env.DEMO_SP_CLIENT_ID || 'demo-sp',
  client_secret: process.env.DEMO_SP_CLIENT_SECRET || 'demo-sp-secret-change-me',
  redirect_uris: [REDIRECT_URI],
  post_logout_redirect_uris: [POST_LOGOUT_REDIRECT_URI],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
};
const SCOPE = 'openid given_name family_name birthdate gender birthplace birthcountry email preferred_username';

// Through FranceConnect: the demo service registered there (dev/franceconnect.mjs
// demoServiceProvider()); FranceConnect's own claims, eidas1 asked (FranceConnect requires
// acr_values).
const FC_ISSUER = process.env.FRANCECONNECT_ISSUER || 'http://127.0.0.1:9300/api/v2';
const FC_REDIRECT_URI = `${BASE}/callback-franceconnect`;
const FC_CLIENT = {
  client_id: 'demo-sp',
  client_secret: 'demo-sp-franceconnect-secret-change-me',
  redirect_uris: [FC_REDIRECT_URI],
  post_logout_redirect_uris: [POST_LOGOUT_REDIRECT_URI],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_post',
  id_token_signed_response_alg: 'ES256',
  // FranceConnect v2 answers userinfo as a signed JWT.
  userinfo_signed_response_alg: 'ES256',
};
const FC_SCOPE = 'openid given_name family_name birthdate gender birthplace birthcountry email preferred_username idp_birthdate idp_id';

// The two ways in: idp-proxy directly, or FranceConnect (which calls idp-proxy).
const PROVIDERS = {
  proxy: { issuer: ISSUER, client: CLIENT, redirectUri: REDIRECT_URI, scope: SCOPE, extra: {} },
  franceconnect: { issuer: FC_ISSUER, client: FC_CLIENT, redirectUri: FC_REDIRECT_URI, scope: FC_SCOPE, extra: { acr_values: 'eidas1' } },
};
const FLOW_COOKIE = 'demo_sp_flow';
const FLOW_TTL_MS = 10 * 60 * 1000;

// The ten démarche categories (DESIGN.md §5) and their titles.
const DEMARCHES = {
  papiers: 'Papiers - Citoyenneté',
  famille: 'Famille - Scolarité',
  social: 'Social - Santé',
  travail: 'Travail - Formation',
  logement: 'Logement',
  transports: 'Transports',
  argent: 'Argent - Impôts - Consommation',
  justice: 'Justice',
  etranger: 'Étranger',
  loisirs: 'Loisirs - Sports - Culture',
};

const OP_ERRORS = {
  access_denied: "L'accès a été refusé.",
  invalid_request: 'La demande envoyée au fournisseur d\'identité est invalide.',
  invalid_scope: 'Les informations demandées ne sont pas disponibles.',
  login_required: "L'aidant doit se connecter.",
  consent_required: "L'accord de la personne accompagnée est nécessaire.",
  interaction_required: 'Une action de l\'aidant est nécessaire.',
  unauthorized_client: "Ce service n'est pas autorisé à utiliser ce mode de connexion.",
  unsupported_response_type: 'Mode de réponse non pris en charge.',
  server_error: 'Le fournisseur d\'identité a rencontré une erreur.',
  temporarily_unavailable: 'Le fournisseur d\'identité est temporairement indisponible.',
  invalid_grant: "Le code d'autorisation est invalide, expiré ou déjà utilisé, ou le mandat n'est plus valide.",
  invalid_client: "Ce service n'a pas pu s'authentifier auprès du fournisseur d'identité.",
};

custom.setHttpOptionsDefaults({ timeout: 5000 });

// In-memory flows, keyed by state; the browser holds the state in a signed HttpOnly cookie too,
// so that a callback is only accepted in the browser that started it.
const flows = new Map();
const COOKIE_KEY = randomBytes(32); // demo: new at each start, flows do not survive a restart

const sign = (value) => `${value}.${createHmac('sha256', COOKIE_KEY).update(value).digest('base64url')}`;
function unsign(signed) {
  const i = signed?.lastIndexOf('.') ?? -1;
  if (i < 1) return null;
  const value = signed.slice(0, i);
  const a = Buffer.from(signed.slice(i + 1));
  const b = Buffer.from(createHmac('sha256', COOKIE_KEY).update(value).digest('base64url'));
  return a.length === b.length && timingSafeEqual(a, b) ? value : null;
}
const cookies = (req) => Object.fromEntries((req.headers.cookie || '').split(';').map((c) => c.trim()).filter(Boolean)
  .map((c) => { const i = c.indexOf('='); return [c.slice(0, i), c.slice(i + 1)]; }));

const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

const clientPromises = {};
function getClient(name = 'proxy') {
  // Discovered at first use (the provider may start after this demo), retried after a failure.
  const p = PROVIDERS[name];
  clientPromises[name] ??= Issuer.discover(p.issuer).then((issuer) => {
    const client = new issuer.Client(p.client);
    client[custom.clock_tolerance] = 5;
    return client;
  }).catch((err) => { clientPromises[name] = null; err.discovery = p.issuer; throw err; });
  return clientPromises[name];
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — Service en ligne de démonstration</title>
<style>
body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#161616}
header p{margin:0;color:#555}
.demo{background:#eef;border-left:4px solid #000091;padding:.5rem 1rem}
.aidant{background:#fff4e5;border:3px solid #b34000;padding:1rem;font-size:1.15rem;margin:1rem 0}
.erreur{background:#ffe9e9;border:3px solid #ce0500;padding:1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:bold}
dd{margin:0}
pre{background:#f6f6f6;padding:1rem;overflow:auto;font-size:.9rem}
button,.bouton{font:inherit;padding:.6rem 1.2rem;background:#000091;color:#fff;border:0;cursor:pointer;text-decoration:none;display:inline-block}
fieldset{margin:1rem 0}
:focus{outline:3px solid #0a76f6;outline-offset:2px}
</style>
</head>
<body>
<header>
<p>Outil de démonstration — ne jamais utiliser en production</p>
<h1>Service en ligne de démonstration</h1>
</header>
<main>
${body}
</main>
</body>
</html>`;
}

function send(res, status, html, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(html);
}

function home(res, { message } = {}) {
  const boxes = Object.entries(DEMARCHES).map(([id, title]) => `<li><input type="checkbox" name="rep_scope" value="${esc(id)}" id="d-${esc(id)}"> <label for="d-${esc(id)}">${esc(title)}</label></li>`).join('\n');
  send(res, 200, page('Accueil', `
${message ? `<p class="demo" role="status">${esc(message)}</p>` : ''}
<p>Ce site joue le rôle d'une administration en ligne. Un aidant s'y connecte avec idp-proxy pour
effectuer une démarche au nom d'une personne accompagnée qui lui a donné mandat.</p>
<form method="get" action="/login">
<fieldset>
<legend>Périmètre de démarches demandé (facultatif, à la manière de FranceConnect)</legend>
<p>Sans case cochée, toutes les démarches que ce service traite sont possibles.</p>
<ul style="list-style:none;padding:0">
${boxes}
</ul>
</fieldset>
<p><input type="checkbox" name="prompt" value="login" id="prompt-login"> <label for="prompt-login">Demander à l'aidant de se reconnecter (prompt=login)</label></p>
<button type="submit">Se connecter avec idp-proxy</button>
</form>
<p>Fournisseur d'identité : <code>${esc(ISSUER)}</code></p>
<h2>Ou, comme un service relié à FranceConnect</h2>
<p>FranceConnect propose alors « Aidants Connect » (idp-proxy) parmi ses fournisseurs d'identité.
Le périmètre de démarches de ce service est celui que FranceConnect a enregistré pour lui.
FranceConnect transmet l'identité de la personne, mais pas le nom de l'aidant.</p>
<form method="get" action="/login-franceconnect">
<button type="submit">Se connecter avec FranceConnect</button>
</form>
<p>FranceConnect de développement : <code>${esc(FC_ISSUER)}</code></p>`));
}

async function login(req, res, url, name = 'proxy') {
  const p = PROVIDERS[name];
  const client = await getClient(name);
  const state = generators.state();
  const nonce = generators.nonce();
  const codeVerifier = generators.codeVerifier();
  const perimeter = url.searchParams.getAll('rep_scope').filter((d) => d in DEMARCHES);
  const params = {
    scope: p.scope,
    state,
    nonce,
    code_challenge: generators.codeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    redirect_uri: p.redirectUri,
    ...p.extra,
  };
  if (perimeter.length) {
    params.claims = JSON.stringify({ id_token: { rep_scope: { essential: true, values: perimeter } } });
  }
  if (url.searchParams.get('prompt') === 'login') params.prompt = 'login';
  const now = Date.now();
  for (const [k, f] of flows) if (f.expires < now) flows.delete(k);
  flows.set(state, { nonce, codeVerifier, provider: name, expires: now + FLOW_TTL_MS });
  res.writeHead(303, {
    Location: client.authorizationUrl(params),
    'Set-Cookie': `${FLOW_COOKIE}=${sign(state)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${FLOW_TTL_MS / 1000}`,
    'Cache-Control': 'no-store',
  });
  res.end();
}

function errorPage(res, status, title, detail, extra = '') {
  send(res, status, page(title, `
<div class="erreur" role="alert">
<h2>${esc(title)}</h2>
<p>${esc(detail)}</p>
${extra}
</div>
<p><a href="/">Revenir à l'accueil</a></p>`));
}

const json = (value) => esc(JSON.stringify(value, null, 2));

async function callback(req, res, url, name = 'proxy') {
  const p = PROVIDERS[name];
  const client = await getClient(name);
  const params = client.callbackParams(req);
  const cookieState = unsign(cookies(req)[FLOW_COOKIE]);
  const started = params.state && params.state === cookieState ? flows.get(params.state) : undefined;
  const flow = started?.provider === name ? started : undefined;
  if (params.state) flows.delete(params.state);
  const clear = { 'Set-Cookie': `${FLOW_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0` };

  if (params.error) {
    res.setHeader('Set-Cookie', clear['Set-Cookie']);
    const known = OP_ERRORS[params.error];
    return errorPage(res, 400, 'La connexion n\'a pas abouti', known || 'Le fournisseur d\'identité a renvoyé une erreur.',
      `<dl><dt>Code d'erreur</dt><dd><code>${esc(params.error)}</code></dd>${params.error_description ? `<dt>Détail</dt><dd>${esc(params.error_description)}</dd>` : ''}</dl>`);
  }
  if (!flow || flow.expires < Date.now()) {
    res.setHeader('Set-Cookie', clear['Set-Cookie']);
    return errorPage(res, 400, 'Session de connexion inconnue ou expirée',
      'Cette réponse ne correspond à aucune connexion commencée dans ce navigateur. Recommencez depuis l\'accueil.');
  }

  let tokenSet;
  try {
    tokenSet = await client.callback(p.redirectUri, params, {
      state: cookieState,
      nonce: flow.nonce,
      code_verifier: flow.codeVerifier,
      response_type: 'code',
    });
  } catch (err) {
    res.setHeader('Set-Cookie', clear['Set-Cookie']);
    if (err instanceof errors.OPError) {
      return errorPage(res, 400, 'La connexion n\'a pas abouti', OP_ERRORS[err.error] || 'Le fournisseur d\'identité a refusé la demande.',
        `<dl><dt>Code d'erreur</dt><dd><code>${esc(err.error)}</code></dd>${err.error_description ? `<dt>Détail</dt><dd>${esc(err.error_description)}</dd>` : ''}</dl>`);
    }
    return errorPage(res, 400, 'Réponse du fournisseur d\'identité refusée',
      'La vérification de la réponse ou du jeton d\'identité a échoué.', `<p><code>${esc(err.message)}</code></p>`);
  }
  const claims = tokenSet.claims();
  let userinfo;
  let userinfoError;
  try {
    userinfo = await client.userinfo(tokenSet);
  } catch (err) {
    userinfoError = err;
  }

  if (name === 'franceconnect') {
    res.setHeader('Set-Cookie', clear['Set-Cookie']);
    return shownFromFranceConnect(res, client, tokenSet, claims, userinfo, userinfoError);
  }
  const act = claims.act || {};
  const org = act.organisation || {};
  const mandate = claims.mandate || {};
  const demarche = (claims.rep_scope || []).map((d) => DEMARCHES[d] ? `${DEMARCHES[d]} (${d})` : d).join(', ');
  const logoutUrl = client.endSessionUrl({
    id_token_hint: tokenSet.id_token,
    post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
    state: generators.state(),
  });
  const identity = [
    ['Prénom(s)', claims.given_name],
    ['Nom', claims.family_name],
    ['Date de naissance', claims.birthdate],
    ['Sexe', claims.gender === 'male' ? 'masculin' : claims.gender === 'female' ? 'féminin' : claims.gender],
    ['Lieu de naissance (code INSEE)', claims.birthplace],
    ['Pays de naissance (code INSEE)', claims.birthcountry],
    ['Courriel', claims.email],
    ['Nom d\'usage', claims.preferred_username],
    ['Identifiant (sub)', claims.sub],
  ].filter(([, v]) => v !== undefined && v !== null);

  res.setHeader('Set-Cookie', clear['Set-Cookie']);
  send(res, 200, page('Connecté', `
<section class="aidant" aria-labelledby="aidant-titre">
<h2 id="aidant-titre" style="margin:0;font-size:inherit">Démarche effectuée par l'aidant : ${esc(act.given_name)} ${esc(act.family_name)} (${esc(org.name)})</h2>
<p style="margin:.5rem 0 0">Identifiant de l'aidant : <code>${esc(act.sub)}</code> — SIRET de la structure : <code>${esc(org.siret)}</code></p>
</section>

<h2>Personne accompagnée</h2>
<dl>
${identity.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('\n')}
</dl>

<h2>Démarche</h2>
<p>${esc(demarche || '(non indiquée)')}</p>

<h2>Mandat</h2>
<dl>
<dt>Identifiant</dt><dd><code>${esc(mandate.id)}</code></dd>
<dt>Démarche</dt><dd>${esc(DEMARCHES[mandate.demarche] || mandate.demarche)}</dd>
<dt>Fin du mandat</dt><dd>${esc(mandate.expires_at)}</dd>
</dl>

<p><a class="bouton" href="${esc(logoutUrl)}">Se déconnecter</a></p>

<h2>Jeton d'identité (ID token) décodé</h2>
<h3>En-tête</h3>
<pre>${json(decodeProtectedHeader(tokenSet.id_token))}</pre>
<h3>Contenu</h3>
<pre>${json(decodeJwt(tokenSet.id_token))}</pre>

<h2>Réponse de userinfo</h2>
${userinfoError ? `<p class="erreur" role="alert">Échec de l'appel à userinfo : ${esc(userinfoError.message)}</p>` : `<pre>${json(userinfo)}</pre>`}`));
}

/** What a service behind FranceConnect receives: FranceConnect's claims, no aidant. */
function shownFromFranceConnect(res, client, tokenSet, claims, userinfo, userinfoError) {
  const who = userinfo || claims;
  const logoutUrl = client.endSessionUrl({
    id_token_hint: tokenSet.id_token,
    post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
    state: generators.state(),
  });
  const identity = [
    ['Prénom(s)', who.given_name],
    ['Nom', who.family_name],
    ['Date de naissance', who.birthdate],
    ['Date de naissance chez le fournisseur d\'identité (idp_birthdate)', who.idp_birthdate],
    ['Sexe', who.gender === 'male' ? 'masculin' : who.gender === 'female' ? 'féminin' : who.gender],
    ['Lieu de naissance (code INSEE)', who.birthplace],
    ['Pays de naissance (code INSEE)', who.birthcountry],
    ['Courriel', who.email],
    ['Nom d\'usage', who.preferred_username],
    ['Identifiant FranceConnect (sub)', who.sub],
    ['Fournisseur d\'identité (idp_id)', who.idp_id],
  ].filter(([, v]) => v !== undefined && v !== null);
  send(res, 200, page('Connecté avec FranceConnect', `
<section class="demo" aria-labelledby="fc-titre">
<h2 id="fc-titre" style="margin:0;font-size:inherit">Connecté avec FranceConnect</h2>
<p style="margin:.5rem 0 0">FranceConnect transmet sa propre identité de la personne. Le nom de
l'aidant (act) et le mandat ne lui parviennent pas : pour les recevoir, un service se relie
directement à idp-proxy. FranceConnect garde la démarche (rep_scope) dans son propre suivi.</p>
</section>

<h2>Personne accompagnée</h2>
<dl>
${identity.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('\n')}
</dl>

<p><a class="bouton" href="${esc(logoutUrl)}">Se déconnecter</a></p>

<h2>Jeton d'identité (ID token) de FranceConnect, décodé</h2>
<pre>${json(decodeJwt(tokenSet.id_token))}</pre>

<h2>Réponse de userinfo</h2>
${userinfoError ? `<p class="erreur" role="alert">Échec de l'appel à userinfo : ${esc(userinfoError.message)}</p>` : `<pre>${json(userinfo)}</pre>`}`));
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, BASE);
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET');
      return errorPage(res, 405, 'Méthode non autorisée', 'Cette page ne s\'ouvre qu\'en GET.');
    }
    if (url.pathname === '/') {
      return home(res, { message: url.searchParams.has('state') ? 'Vous êtes déconnecté.' : undefined });
    }
    if (url.pathname === '/login') return await login(req, res, url);
    if (url.pathname === '/callback') return await callback(req, res, url);
    if (url.pathname === '/login-franceconnect') return await login(req, res, new URL(BASE), 'franceconnect');
    if (url.pathname === '/callback-franceconnect') return await callback(req, res, url, 'franceconnect');
    return errorPage(res, 404, 'Page introuvable', 'Cette adresse n\'existe pas sur le service de démonstration.');
  } catch (err) {
    console.error('demo-sp:', err);
    if (res.headersSent) return res.end();
    const unreachable = err.discovery;
    return errorPage(res, 502, unreachable ? 'Fournisseur d\'identité injoignable' : 'Erreur du service de démonstration',
      unreachable ? `Le fournisseur d'identité ${unreachable} ne répond pas. Est-il démarré ?` : 'Une erreur inattendue est survenue.',
      `<p><code>${esc(err.message)}</code></p>`);
  }
});

server.listen(PORT, '127.0.0.1', () => {
  console.warn(`demo-sp: DEMO SERVICE PROVIDER — development only, on ${BASE} (idp-proxy: ${ISSUER})`);
});
