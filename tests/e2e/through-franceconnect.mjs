// A service provider behind FranceConnect, and a browser walking its login: SP → the development
// FranceConnect (dev/franceconnect.mjs, whose core calls idp-proxy as FranceConnect's core calls
// its identity providers: dev/franceconnect-core.mjs) → idp-proxy → the aidants' IdP → back.
// Used by franceconnect-idp.test.mjs.

import {
  Browser, FULL_SCOPE, Issuer, custom, formFields, generators, parseForms, parseInteractionPage, textOf,
} from './harness.mjs';

/** An openid-client Client of the development FranceConnect for `sp` (its client metadata). */
export async function franceConnectSp(fc, sp) {
  const issuer = await Issuer.discover(fc.issuer);
  const client = new issuer.Client({
    client_id: sp.client_id,
    client_secret: sp.client_secret,
    redirect_uris: sp.redirect_uris,
    post_logout_redirect_uris: sp.post_logout_redirect_uris,
    response_types: ['code'],
    token_endpoint_auth_method: sp.token_endpoint_auth_method,
    id_token_signed_response_alg: sp.id_token_signed_response_alg,
    userinfo_signed_response_alg: sp.userinfo_signed_response_alg,
  });
  client[custom.clock_tolerance] = 5;
  return { client, redirectUri: sp.redirect_uris[0], config: sp };
}

/** A service provider of FranceConnect with this perimeter (`rep_scope`, FranceConnect's strings). */
export function spWithPerimeter(id, repScope) {
  return {
    client_id: id,
    client_name: `Service derrière FranceConnect ${id}`,
    client_secret: `${id}-secret-for-e2e-tests`,
    redirect_uris: [`http://127.0.0.1:9/${id}/callback`],
    post_logout_redirect_uris: [`http://127.0.0.1:9/${id}/`],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'ES256',
    // The development FranceConnect's default, like FranceConnect v2's signed userinfo.
    userinfo_signed_response_alg: 'ES256',
    ...(repScope === undefined ? {} : { rep_scope: repScope }),
  };
}

const isPage = (step, origin, prefix) => step.status === 200 && new URL(step.url).origin === origin
  && new URL(step.url).pathname.startsWith(prefix);

/** The form on an idp-proxy page that leads back to the client (`/interaction/{id}/annuler`). */
export function wayBackForm(html, url) {
  return parseForms(html, url).find((f) => f.method === 'post' && /\/interaction\/[^/]+\/annuler$/.test(new URL(f.action).pathname)) ?? null;
}

/**
 * One login at `sp` through FranceConnect, the aidant picking "Aidants Connect" there.
 * Never throws for protocol outcomes.
 * @param {object} o
 * @param {object} o.world startWorld's result, with franceconnect.serviceProviders
 * @param {object} o.sp franceConnectSp's result
 * @param {string} [o.aidant='abdel'] at the aidants' IdP; null: press its cancel button
 * @param {(options, page) => (object|null)} [o.choose] on idp-proxy's choice page; null: stop
 * @param {boolean} [o.goBack=false] press the way back to FranceConnect on the first idp-proxy
 *   page that offers it (choice page included) instead of choosing
 * @param {string} [o.acr='eidas1'] the SP's acr_values (FranceConnect requires one)
 * @param {Browser} [o.browser]
 * @param {(url: URL) => boolean} [o.pauseAt] stop before fetching such a URL (the browser is at
 *   it; `result.pausedAt`), e.g. idp-proxy's login callback
 * @returns {Promise<object>} steps, events (FranceConnect's, during this run), fcChoice (the
 *   FranceConnect page the run ended on, if any), proxyPage (the last idp-proxy page), error,
 *   tokenSet, claims, userinfo
 */
export async function throughFranceConnect({
  world, sp, aidant = 'abdel', choose = (options) => options[0], goBack = false, acr = 'eidas1',
  browser = new Browser(), pauseAt = () => false,
}) {
  const fc = world.franceconnect;
  const fcOrigin = new URL(fc.issuer).origin;
  const proxyOrigin = new URL(world.proxy.issuer).origin;
  const upstreamOrigin = new URL(world.upstream.issuer).origin;
  const firstEvent = fc.events.length;
  const checks = { state: generators.state(), nonce: generators.nonce(), code_verifier: generators.codeVerifier() };
  const result = {
    browser, steps: [], events: [], fcChoices: 0, fcChoice: null, proxyPage: null, pausedAt: null,
    callbackParams: null, error: null, tokenSet: null, claims: null, userinfo: null, tokenError: null,
  };
  const stopAt = (u) => u.origin + u.pathname === new URL(sp.redirectUri).origin + new URL(sp.redirectUri).pathname
    || (pauseAt(u) && (result.pausedAt = u));
  let nav = await browser.navigate(sp.client.authorizationUrl({
    // FranceConnect's scopes for the pivot identity, plus its own idp_birthdate and idp_id.
    scope: `${FULL_SCOPE} idp_birthdate idp_id`,
    acr_values: acr,
    state: checks.state,
    nonce: checks.nonce,
    code_challenge: generators.codeChallenge(checks.code_verifier),
    code_challenge_method: 'S256',
  }), { stopAt });
  result.steps.push(...nav.steps);
  let chosen = false;
  for (let guard = 0; guard < 10 && !nav.stoppedAt; guard++) {
    const here = nav.final;
    const url = new URL(here.url);
    if (isPage(here, fcOrigin, '/interaction/')) {
      result.fcChoices += 1;
      result.fcChoice = { url: here.url, html: here.body, text: textOf(here.body) };
      // A second visit is FranceConnect's retry after an identity provider's error: stop there.
      if (result.fcChoices > 1) break;
      const idp = parseForms(here.body, url).find((f) => f.action.endsWith('/idp'));
      if (!idp) break;
      nav = await browser.navigate(idp.action, { method: 'POST', form: formFields(idp), stopAt });
    } else if (isPage(here, upstreamOrigin, '/interaction/')) {
      const forms = parseForms(here.body, url);
      if (aidant === null) {
        const cancel = forms.find((f) => f.action.endsWith('/abort'));
        nav = await browser.navigate(cancel.action, { method: 'POST', form: {}, stopAt });
      } else {
        const login = forms.find((f) => f.buttons.some((b) => b.name === 'sub'));
        nav = await browser.navigate(login.action, { method: 'POST', form: { sub: aidant }, stopAt });
      }
    } else if (url.origin === proxyOrigin) {
      result.proxyPage = { url: here.url, status: here.status, html: here.body, text: textOf(here.body) };
      const back = wayBackForm(here.body, url);
      if (goBack && back) {
        nav = await browser.navigate(back.action, { method: 'POST', form: formFields(back), stopAt });
      } else if (!chosen && here.status === 200 && url.pathname.startsWith('/interaction/')) {
        const page = parseInteractionPage(here.body, url);
        result.proxyPage.page = page;
        const picked = choose && page.form ? choose(page.options, page) : null;
        if (!picked) break;
        const fields = formFields(page.form);
        fields.set('choice', picked.value);
        fields.set('certify', 'yes');
        chosen = true;
        nav = await browser.navigate(page.form.action, { method: 'POST', form: fields, stopAt });
      } else {
        break;
      }
    } else {
      break;
    }
    result.steps.push(...nav.steps);
  }
  result.events = fc.events.slice(firstEvent);
  result.final = nav.final;
  if (!nav.stoppedAt || result.pausedAt) return result;
  result.callbackParams = Object.fromEntries(nav.stoppedAt.searchParams);
  if (result.callbackParams.error) {
    result.error = result.callbackParams;
    return result;
  }
  try {
    result.tokenSet = await sp.client.callback(sp.redirectUri, result.callbackParams, { ...checks, response_type: 'code' });
    result.claims = result.tokenSet.claims();
    result.userinfo = await sp.client.userinfo(result.tokenSet);
  } catch (err) {
    result.tokenError = err;
  }
  return result;
}

/** The first event of `type` in a run, or undefined. */
export const eventOf = (result, type) => result.events.find((e) => e.type === type);

/** A short trace for assertion messages. */
export function fcTrace(result, world) {
  const lines = result.steps.map((s) => `${s.method} ${s.url} → ${s.status}${s.location ? ` → ${s.location}` : ''}`);
  lines.push(`FranceConnect events: ${JSON.stringify(result.events.map(({ type, step, error, message, problems }) => ({ type, step, error, message, problems })))}`);
  if (result.proxyPage) lines.push(`last idp-proxy page (${result.proxyPage.status}): ${result.proxyPage.text.slice(0, 300)}`);
  if (result.final && result.final.status !== 303) lines.push(`final page (${result.final.status}): ${textOf(result.final.body).slice(0, 300)}`);
  if (result.tokenError) lines.push(`token error: ${result.tokenError.message}`);
  const stderr = world?.proxy?.logs?.().stderr;
  if (stderr) lines.push(`--- idp-proxy stderr ---\n${stderr.trimEnd().split('\n').slice(-10).join('\n')}`);
  return lines.join('\n');
}
