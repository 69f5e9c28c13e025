// The service provider (openid-client) and the whole démarche, driven as a browser would.

import { Issuer, generators, custom, jose, startUpstream, startProxy } from './processes.mjs';
import { Browser } from './browser.mjs';
import { formFields, parseForms, parseInteractionPage, textOf } from './html.mjs';

// ---------------------------------------------------------------------------------------------
// The service provider and the whole démarche

/**
 * An openid-client Client for `clientConfig` (as given to startProxy), from fresh discovery.
 */
export async function makeSp(proxy, clientConfig, { redirectUri } = {}) {
  const issuer = await Issuer.discover(proxy.issuer);
  const client = new issuer.Client({
    client_id: clientConfig.client_id,
    client_secret: clientConfig.client_secret,
    redirect_uris: clientConfig.redirect_uris,
    post_logout_redirect_uris: clientConfig.post_logout_redirect_uris,
    response_types: ['code'],
    token_endpoint_auth_method: clientConfig.token_endpoint_auth_method ?? 'client_secret_basic',
    id_token_signed_response_alg: clientConfig.id_token_signed_response_alg ?? 'ES256',
  });
  client[custom.clock_tolerance] = 5;
  return { issuer, client, config: clientConfig, redirectUri: redirectUri ?? clientConfig.redirect_uris[0] };
}

export const FULL_SCOPE = 'openid given_name family_name birthdate gender birthplace birthcountry email preferred_username';

function sameEndpoint(a, b) {
  const x = new URL(a);
  const y = new URL(b);
  return x.origin === y.origin && x.pathname === y.pathname;
}

/**
 * Runs a démarche through the browser. Never throws for protocol outcomes: every step is in the
 * result so tests can assert on failures.
 *
 * @param {object} o
 * @param {object} o.proxy startProxy's result
 * @param {object} o.upstream startUpstream's result
 * @param {object} o.sp makeSp's result
 * @param {string} [o.aidant='abdel'] subject to log in with at the upstream IdP
 * @param {(options, page) => (object|string|null)} [o.choose] picks an option of the interaction
 *   page (or returns any "{mandate_id}:{demarche}" string, forged or not); null: stop on the page
 * @param {object} [o.claims] OIDC claims request (object)
 * @param {string} [o.scope]
 * @param {object} [o.authParams] extra authorization parameters
 * @param {boolean} [o.certify=true] tick the certification box
 * @param {(fields: URLSearchParams) => void} [o.editForm] changes the POSTed fields (forgeries)
 * @param {boolean} [o.exchange=true] false: stop at the SP callback, no token request
 * @param {(result) => Promise<void>} [o.beforeToken] runs between the callback and the token request
 * @param {Browser} [o.browser] reuse a browser (its sessions)
 * @param {boolean} [o.pkce=true] false: no code_challenge, no code_verifier (clients configured
 *   with pkce_required = false)
 * @param {boolean} [o.nonce=true] false: no nonce in the request, none expected in the ID token
 * @param {string} [o.state] the state to send (default: a fresh random one)
 * @param {'GET'|'POST'} [o.method='GET'] POST: the authorization request is a form POSTed to the
 *   authorization endpoint (OIDC Core §3.1.2.1)
 * @param {(url: URL) => Promise<URL>} [o.rewrite] turns the authorization URL into another
 *   (a request object, a pushed request) before the browser goes there
 */
export async function runDemarche({
  proxy, upstream, sp, aidant = 'abdel', choose = (options) => options[0], claims, scope = FULL_SCOPE,
  authParams = {}, certify = true, editForm, exchange = true, beforeToken, browser = new Browser(),
  pkce = true, nonce = true, state, method = 'GET', rewrite,
}) {
  const checks = {
    state: state ?? generators.state(),
    nonce: generators.nonce(),
    code_verifier: generators.codeVerifier(),
  };
  if (!nonce) delete checks.nonce;
  if (!pkce) delete checks.code_verifier;
  const authorizationUrl = sp.client.authorizationUrl({
    scope,
    state: checks.state,
    nonce: checks.nonce,
    ...(pkce ? { code_challenge: generators.codeChallenge(checks.code_verifier), code_challenge_method: 'S256' } : {}),
    redirect_uri: sp.redirectUri,
    ...(claims ? { claims: typeof claims === 'string' ? claims : JSON.stringify(claims) } : {}),
    ...authParams,
  });

  const result = {
    proxy,
    browser,
    checks,
    authorizationUrl,
    steps: [],
    upstreamLogin: null, // { page, response }
    interaction: null, // { url, status, html, page }
    posted: null, // URLSearchParams sent to the interaction
    postResponse: null, // first answer to the interaction POST
    final: null, // the last non-redirect answer, when the flow did not reach the SP
    callbackUrl: null, // URL the browser was sent to at the SP
    callbackParams: null, // its query parameters (object)
    code: null,
    error: null, // { error, error_description, state, iss } when the SP got an error
    tokenSet: null,
    claims: null,
    idTokenHeader: null,
    tokenError: null,
    userinfo: null,
    userinfoError: null,
  };
  const stopAt = (u) => sameEndpoint(u, sp.redirectUri);
  const upstreamOrigin = new URL(upstream.issuer).origin;
  const proxyOrigin = new URL(proxy.issuer).origin;

  let nav;
  if (method === 'POST') {
    const u = new URL(authorizationUrl);
    nav = await browser.navigate(`${u.origin}${u.pathname}`, { method: 'POST', form: u.searchParams, stopAt });
  } else {
    // A request object or a pushed request replaces the URL's parameters (rewrite).
    const url = rewrite ? (await rewrite(new URL(authorizationUrl))).toString() : authorizationUrl;
    nav = await browser.navigate(url, { stopAt });
  }
  result.steps.push(...nav.steps);
  let posted = false;
  for (let guard = 0; guard < 6 && !nav.stoppedAt; guard++) {
    const here = new URL(nav.final.url);
    const html = nav.final.body;
    if (nav.final.status === 200 && here.origin === upstreamOrigin && here.pathname.startsWith('/interaction/')) {
      const forms = parseForms(html, here);
      const login = forms.find((f) => f.buttons.some((b) => b.name === 'sub')) || forms.find((f) => f.method === 'post');
      if (!login) throw new Error(`upstream login page without a form:\n${html}`);
      result.upstreamLogin = { url: here.toString(), forms };
      nav = await browser.navigate(login.action, { method: 'POST', form: { sub: aidant }, stopAt });
      result.steps.push(...nav.steps);
      continue;
    }
    if (here.origin === proxyOrigin && here.pathname.startsWith('/interaction/') && !posted) {
      const page = parseInteractionPage(html, here);
      result.interaction = { url: here.toString(), status: nav.final.status, html, page };
      if (nav.final.status !== 200 || !page.form || !choose) break;
      const picked = choose(page.options, page);
      if (picked === null || picked === undefined) break;
      const fields = formFields(page.form);
      fields.delete('choice');
      fields.delete('certify');
      fields.set('choice', typeof picked === 'string' ? picked : picked.value);
      if (certify) fields.set('certify', page.certify?.value || 'yes');
      const submit = page.form.buttons.find((b) => b.type === 'submit' && b.name);
      if (submit) fields.set(submit.name, submit.value ?? '');
      if (editForm) editForm(fields);
      result.posted = fields;
      posted = true;
      nav = await browser.navigate(page.form.action, { method: 'POST', form: fields, stopAt });
      result.postResponse = nav.steps[0];
      result.steps.push(...nav.steps);
      continue;
    }
    break;
  }

  if (!nav.stoppedAt) {
    result.final = nav.final;
    return result;
  }
  result.callbackUrl = nav.stoppedAt.toString();
  result.callbackParams = Object.fromEntries(nav.stoppedAt.searchParams);
  if (result.callbackParams.error || !result.callbackParams.code) {
    result.error = result.callbackParams;
    return result;
  }
  result.code = result.callbackParams.code;
  if (!exchange) return result;
  if (beforeToken) await beforeToken(result);

  try {
    result.tokenSet = await sp.client.callback(sp.redirectUri, result.callbackParams, { ...checks, response_type: 'code' });
    result.claims = result.tokenSet.claims();
    result.idTokenHeader = jose.decodeProtectedHeader(result.tokenSet.id_token);
  } catch (err) {
    result.tokenError = err;
    return result;
  }
  try {
    result.userinfo = await sp.client.userinfo(result.tokenSet);
  } catch (err) {
    result.userinfoError = err;
  }
  return result;
}

/** Every URL the browser was redirected to or loaded during the run. */
export function visitedUrls(result) {
  return result.steps.flatMap((s) => [s.url, s.location].filter(Boolean));
}

/** A short trace for assertion messages. */
export function trace(result) {
  const lines = result.steps.map((s) => `${s.method} ${s.url} → ${s.status}${s.location ? ` → ${s.location}` : ''}`);
  if (result.final) lines.push(`final page (${result.final.status}): ${textOf(result.final.body).slice(0, 400)}`);
  if (result.tokenError) lines.push(`token error: ${result.tokenError.error || ''} ${result.tokenError.message}`);
  const stderr = result.proxy?.logs?.().stderr;
  if (stderr) lines.push(`--- idp-proxy stderr (last lines) ---\n${stderr.trimEnd().split('\n').slice(-15).join('\n')}`);
  return lines.join('\n');
}
