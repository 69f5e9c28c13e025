// DEVELOPMENT / TEST TOOL — never deploy this.
//
// The part of the development FranceConnect (dev/franceconnect.mjs) that calls identity
// providers, as FranceConnect's core does (france-connect/sources @ fbf65bf, `back/apps/core-fcp`
// and `back/libs/oidc-client`; ../shared/FRANCECONNECT.md in the steering repo lists each rule):
// a service provider (SP) sends the browser to FranceConnect, the person picks an identity
// provider (FI) on FranceConnect's page, FranceConnect logs them in there and answers the SP with
// claims it builds itself. idp-proxy is registered as the FI "Aidants Connect".
//
// Toward the FI, exactly as the core does it, each rule with where it is written:
//   - openid-client 5.x (`back/package.json`), a new Issuer from the FI's discovery URL at every
//     login and at every callback (`oidc-client-issuer.service.ts` `getIssuer`, TODO #308), so
//     discovery and the JWKS are read again each time;
//   - its FI choice shows an FI whose highest allowedAcr is below the SP's acr_values as
//     inactive (`core-fcp.controller.ts` `getInteraction`);
//   - authorize (`core-fcp.service.ts` `redirectToIdp`): scope `openid profile email birth`
//     (`docker/compose/fcp-low/.env/core-fcp-low.env`), `state` and `nonce` of 32 random bytes in
//     hex (`oidc-client-utils.service.ts` `buildAuthorizeParameters`, stateLength 32), one
//     `acr_values` = max(SP level, lowest allowedAcr) (`oidc-acr.service.ts` `getAcrToAskToIdp`),
//     `prompt=login` always, no PKCE; for Aidants Connect
//     `claims={"id_token":{"rep_scope":{"essential":true,"values":<the SP's rep_scope>}}}`
//     (`core-fcp-aidants-connect-authorize.handler.ts`);
//   - callback (`oidc-client.controller.ts` `getOidcCallback`): an `error` is accepted only with
//     the session's `state` (`checkState`), then the interaction restarts on FranceConnect's FI
//     choice (`core-fcp-verify.service.ts` `handleIdpError` → `abortInteraction(…, retry=true)`:
//     `interactionFinished` with an empty result); else code and state checked, then
//     openid-client `callback()` with `client_secret_post` (nonce, alg, kid, at_hash, RFC 9207 iss);
//   - token result (`oidc-client.service.ts`, `TokenResultDto` of `identity-service.dto.ts`):
//     `acr` required and alphanumeric, `amr` and `rep_scope` optional string arrays;
//   - userinfo (openid-client `userinfo()`, GET, Bearer, `Accept: application/jwt` with the
//     registered alg), `MinIdentityDto` (`sub` ASCII), then the identity DTO
//     (`back/apps/core-fcp/src/dto/oidc-identity.dto.ts`: names 1–256, birthdate YYYY-MM-DD |
//     YYYY-MM-00 | YYYY-00-00, gender female/male/unspecified, COG birthcountry, COG birthplace
//     when born in France, email required);
//   - verify (`core-fcp-default-verify.handler.ts`, `core-acr.service.ts` `checkIfAcrIsValid`):
//     acr ≥ the SP's and ∈ the FI's allowedAcr; for Aidants Connect
//     (`core-fcp-aidants-connect-verify.handler.ts`) an SP with a non-empty rep_scope needs at
//     least one of its values back, else `CoreFcpInvalidRepScopeException` (access_denied);
//   - the SP receives FranceConnect's own claims, not the FI's (`buildFromRnippIdentity`): its own
//     `sub`, the pivot identity (RNIPP: simulated here by the FI's identity, the birthdate
//     completed with 01 as `rnipp-response-parser.service.ts` does), `idp_birthdate` (the FI's
//     birthdate), `email`, `preferred_username`, `idp_id`;
//   - logout (`core-oidc-provider-config-app.service.ts`, `oidc-client-utils.service.ts`
//     `getEndSessionUrl`): the FI's end_session_endpoint with `id_token_hint` (the FI's ID
//     token), `state`, `post_logout_redirect_uri = <fc>/api/v2/client/logout-callback`.
//
// What it does not do: RNIPP (no registry here), FranceConnect's consent page (SPs with
// identityConsent), SSO across SPs, the eIDAS bridge, tracking. Every step it takes is pushed
// to `events` so that tests can check what FranceConnect saw.

import { createHash, randomBytes } from 'node:crypto';
import { escapeHtml, readForm, resumeWith, send } from './dev-provider.mjs';
import { Issuer, custom } from 'openid-client';

// FranceConnect's outgoing timeout (REQUEST_TIMEOUT, 6000 ms in its dev env).
const HTTP_OPTIONS = { timeout: 6000 };

// FranceConnect (low): `knownAcrValues` of `back/instances/core-fcp-low/src/config/oidc-acr.ts`.
const ACR = { eidas1: 1, eidas2: 2, eidas3: 3 };

const GENDERS = ['female', 'male', 'unspecified'];
const COG = /^(?:2[AB]|[0-9]{2})[0-9]{3}$/;
const COG_FRANCE = '99100';

/** `is-idp-birthdate.validator.ts`: a real date, YYYY-MM-00 or YYYY-00-00. */
export function isIdpBirthdate(value) {
  if (typeof value !== 'string') return false;
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return false;
  const [, y, mo, d] = m;
  if (mo === '00') return d === '00';
  if (Number(mo) < 1 || Number(mo) > 12) return false;
  if (d === '00') return true;
  const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  return date.getUTCFullYear() === Number(y) && date.getUTCMonth() === Number(mo) - 1 && date.getUTCDate() === Number(d);
}

// class-validator's IsEmail, for the addresses a test or a demo writes.
// (validator.js isEmail: a UTF-8 local part; a domain of labels of 1–63 characters, its last
// alphabetic or punycode).
const EMAIL = /^[\p{L}\p{N}.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$/u;

/** The problems FranceConnect's `OidcIdentityDto` finds in an FI's userinfo ([] = valid). */
export function identityProblems(identity) {
  const problems = [];
  const text = (k, min, max) => typeof identity[k] === 'string' && identity[k].length >= min && identity[k].length <= max;
  if (!text('given_name', 1, 256)) problems.push('given_name');
  if (!text('family_name', 1, 256)) problems.push('family_name');
  if (!isIdpBirthdate(identity.birthdate)) problems.push('birthdate');
  if (!GENDERS.includes(identity.gender)) problems.push('gender');
  if (typeof identity.birthcountry !== 'string' || !COG.test(identity.birthcountry)) problems.push('birthcountry');
  if (identity.birthcountry === COG_FRANCE && (typeof identity.birthplace !== 'string' || !COG.test(identity.birthplace))) problems.push('birthplace');
  // IsOptional: undefined and null pass.
  if (identity.preferred_username != null && typeof identity.preferred_username !== 'string') problems.push('preferred_username');
  if (typeof identity.email !== 'string' || !EMAIL.test(identity.email)) problems.push('email');
  return problems;
}

/** `TokenResultDto`: the problems in what FranceConnect keeps from the FI's token answer. */
export function tokenResultProblems({ accessToken, idToken, acr, amr, idpRepresentativeScope }) {
  const problems = [];
  const strings = (v) => v === undefined || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
  if (typeof accessToken !== 'string' || !accessToken || !/^[\x00-\x7f]+$/.test(accessToken)) problems.push('accessToken');
  if (typeof idToken !== 'string' || idToken.split('.').length !== 3) problems.push('idToken');
  if (typeof acr !== 'string' || !/^[A-Za-z0-9]+$/.test(acr)) problems.push('acr');
  if (!strings(amr)) problems.push('amr');
  if (!strings(idpRepresentativeScope)) problems.push('rep_scope');
  return problems;
}

/** What the RNIPP keeps of a presumed date (`rnipp-response-parser.service.ts`): 01 for 00. */
export function rnippBirthdate(idpBirthdate) {
  return idpBirthdate.replace(/-00-00$/, '-01-01').replace(/-00$/, '-01');
}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const random32 = () => randomBytes(32).toString('hex');

const CORE_COOKIE = 'fc_core_session';
const cookieOf = (req, name) => (req.headers.cookie || '').split(';').map((c) => c.trim())
  .find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);

/**
 * FranceConnect's core toward its identity providers.
 * @param {object} o
 * @param {() => import('oidc-provider').default} o.provider FranceConnect's oidc-provider
 * @param {(title: string, body: string) => string} o.page
 * @param {string} o.base FranceConnect's base URL with its /api/v2 prefix (the issuer)
 * @param {object[]} o.identityProviders FI registrations ({ uid, title, discoveryUrl, clientID,
 *   client_secret, allowedAcr, aidantsConnect, id_token_signed_response_alg,
 *   userinfo_signed_response_alg })
 * @param {(clientId: string) => Promise<string[]|undefined>} o.repScopeOf an SP's rep_scope
 * @param {boolean} o.quiet
 */
export function createCore({ provider, page, base, identityProviders, repScopeOf, quiet }) {
  const callbackUrl = `${base}/oidc-callback`;
  const logoutCallbackUrl = `${base}/client/logout-callback`;
  const events = [];
  const sessions = new Map(); // fc_core_session cookie → { uid, idpUid, state, nonce, spId, spAcr }
  const accounts = new Map(); // FranceConnect's sub → { claims, idp: { uid, idToken } }
  const logouts = new Map(); // FI logout state → where FranceConnect's own logout ends
  const event = (type, detail = {}) => events.push({ type, at: Date.now(), ...detail });

  async function clientFor(idp) {
    // A new Issuer each time: openid-client's JWKS cache hangs on it (S1 §8).
    const issuer = await Issuer.discover(idp.discoveryUrl);
    const client = new issuer.Client({
      client_id: idp.clientID,
      client_secret: idp.client_secret,
      redirect_uris: [callbackUrl],
      post_logout_redirect_uris: [logoutCallbackUrl],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: idp.id_token_signed_response_alg,
      userinfo_signed_response_alg: idp.userinfo_signed_response_alg,
    });
    client[custom.http_options] = (_url, options) => ({ ...options, ...HTTP_OPTIONS });
    return client;
  }

  const errorPage = (res, status, title, message, code) => send(res, status, page(title, `
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(message)}</p>
${code ? `<p>Code d'erreur : <code>${escapeHtml(code)}</code></p>` : ''}
<p><a href="${escapeHtml(base)}/">Revenir sur FranceConnect</a></p>`));

  /** The SP's level FranceConnect works with (its acr_values, eidas1 when none). */
  const spAcrOf = (params) => String(params.acr_values || 'eidas1').split(' ')[0];

  /**
   * Whether the FI can serve this SP's level: FranceConnect shows an FI whose highest
   * allowedAcr is below the SP's acr_values as inactive (`core-fcp.controller.ts`
   * `getInteraction`: `isAcrValid(getMaxAcr(provider.allowedAcr), acrValues)`).
   */
  const serves = (idp, params) => Math.max(...idp.allowedAcr.map((a) => ACR[a])) >= ACR[spAcrOf(params)];

  /** The buttons of the FI choice on FranceConnect's page (none when idp-proxy itself logs in). */
  function buttons(uid, params) {
    const offered = identityProviders.filter((idp) => idp.clientID !== params.client_id);
    if (!offered.length) return '';
    const list = offered.map((idp) => `<form method="post" action="/interaction/${escapeHtml(encodeURIComponent(uid))}/idp">
<input type="hidden" name="providerUid" value="${escapeHtml(idp.uid)}">
<button type="submit"${serves(idp, params) ? '' : ' disabled aria-describedby="niveau-insuffisant"'}>S'identifier avec ${escapeHtml(idp.title)}</button>
</form>`).join('\n');
    const note = offered.some((idp) => !serves(idp, params))
      ? '<p id="niveau-insuffisant">Un fournisseur grisé ne permet pas le niveau de sécurité demandé par ce service.</p>\n'
      : '';
    return `<h2>Ou choisissez un fournisseur d'identité</h2>\n${list}\n${note}`;
  }

  /** POST /interaction/:uid/idp (FranceConnect: POST /api/v2/redirect-to-idp). */
  async function redirectToIdp({ req, res, uid, details }) {
    const form = await readForm(req);
    const idp = identityProviders.find((i) => i.uid === form.get('providerUid'));
    if (!idp) return errorPage(res, 400, 'Fournisseur inconnu', "Ce fournisseur d'identité n'existe pas.");
    if (!serves(idp, details.params)) {
      // A disabled button cannot be pressed; a forged form gets no further.
      return errorPage(res, 400, 'Fournisseur indisponible', "Ce fournisseur d'identité ne permet pas le niveau demandé par ce service.");
    }
    const spId = String(details.params.client_id);
    const spAcr = spAcrOf(details.params);
    const lowest = [...idp.allowedAcr].sort((a, b) => ACR[a] - ACR[b])[0];
    const acrValues = ACR[spAcr] > ACR[lowest] ? spAcr : lowest;
    const state = random32();
    const nonce = random32();
    const params = { scope: 'openid profile email birth', acr_values: acrValues, nonce, state, prompt: 'login' };
    if (idp.aidantsConnect) {
      params.claims = { id_token: { rep_scope: { essential: true, values: (await repScopeOf(spId)) ?? [] } } };
    }
    let url;
    try {
      url = (await clientFor(idp)).authorizationUrl(params);
    } catch (err) {
      event('idp-unreachable', { idp: idp.uid, message: err.message });
      return errorPage(res, 502, 'Fournisseur indisponible', "Le fournisseur d'identité ne répond pas.", 'Y000000');
    }
    const sid = random32();
    sessions.set(sid, { uid, idpUid: idp.uid, state, nonce, spId, spAcr });
    event('redirect-to-idp', { idp: idp.uid, spId, url });
    res.setHeader('Set-Cookie', `${CORE_COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax`);
    res.statusCode = 303;
    res.setHeader('Location', url);
    return res.end();
  }

  /** Ends the SP's interaction as oidc-provider's interactionFinished does, by uid. */
  async function finishInteraction(res, uid, result) {
    const interaction = await provider().Interaction.find(uid);
    if (!interaction) return errorPage(res, 400, 'Session expirée', 'La connexion a expiré. Recommencez depuis le service.');
    return resumeWith(res, interaction, result);
  }

  /** GET /api/v2/oidc-callback */
  async function callback(req, res, url) {
    const session = sessions.get(cookieOf(req, CORE_COOKIE) || '');
    if (!session) return errorPage(res, 400, 'Session expirée', 'Aucune connexion en cours dans ce navigateur.', 'Y190001');
    const query = Object.fromEntries(url.searchParams);
    const idp = identityProviders.find((i) => i.uid === session.idpUid);
    if (query.error) {
      // checkState, then handleIdpError: back to the FI choice (retry).
      if (!query.state || query.state !== session.state) {
        event('idp-error-refused', { ...query, reason: 'state' });
        return errorPage(res, 400, 'Erreur technique', 'La réponse du fournisseur d\'identité est invalide.', 'Y030001');
      }
      sessions.delete(cookieOf(req, CORE_COOKIE));
      event('idp-error', { idp: idp.uid, error: query.error, error_description: query.error_description, state: query.state });
      return finishInteraction(res, session.uid, {});
    }
    if (!query.code || !query.state || query.state !== session.state) {
      event('callback-refused', { reason: !query.code ? 'code' : 'state' });
      return errorPage(res, 400, 'Erreur technique', 'La réponse du fournisseur d\'identité est invalide.', 'Y030001');
    }
    sessions.delete(cookieOf(req, CORE_COOKIE));
    const fail = (step, message, detail = {}) => {
      event('rejected', { step, message, ...detail });
      return errorPage(res, 400, 'Erreur technique', message, step);
    };
    let client;
    let tokenSet;
    try {
      client = await clientFor(idp);
      const params = client.callbackParams(req);
      tokenSet = await client.callback(callbackUrl, params, { state: session.state, nonce: session.nonce, response_type: 'code' });
    } catch (err) {
      return fail('token', `Échange du code refusé : ${err.message}`);
    }
    const claims = tokenSet.claims();
    const tokenResult = {
      acr: claims.acr,
      amr: claims.amr ?? [],
      accessToken: tokenSet.access_token,
      idToken: tokenSet.id_token,
      idpRepresentativeScope: claims.rep_scope,
    };
    const tokenProblems = tokenResultProblems(tokenResult);
    if (tokenProblems.length) return fail('token-result', `Réponse de jeton invalide (${tokenProblems.join(', ')})`, { problems: tokenProblems });
    let identity;
    try {
      // getUserInfo calls getClient again: discovery and the JWKS read once more.
      identity = await (await clientFor(idp)).userinfo(tokenSet.access_token);
    } catch (err) {
      return fail('userinfo', `Userinfo refusé : ${err.message}`);
    }
    if (typeof identity.sub !== 'string' || !identity.sub || !/^[\x00-\x7f]+$/.test(identity.sub)) {
      return fail('userinfo-sub', 'Userinfo sans sub');
    }
    const identityProblemsFound = identityProblems(identity);
    if (identityProblemsFound.length) {
      return fail('identity', `Identité invalide (${identityProblemsFound.join(', ')})`, { problems: identityProblemsFound });
    }
    // The Aidants Connect verify handler runs before the default one (acr, RNIPP).
    const repScope = tokenResult.idpRepresentativeScope ?? [];
    if (idp.aidantsConnect) {
      const spRepScope = (await repScopeOf(session.spId)) ?? [];
      if (spRepScope.length > 0 && !repScope.some((s) => spRepScope.includes(s))) {
        event('rejected', { step: 'rep_scope', rep_scope: repScope, spRepScope });
        return errorPage(res, 400, 'Mandat insuffisant',
          'Le mandat sélectionné ne contient pas les autorisations nécessaires à la connexion sur ce service. Vous pouvez recommencer la connexion avec un mandat présentant les autorisations nécessaires.',
          'Y500037');
      }
    }
    // checkIfAcrIsValid: received ≥ requested, and one of the FI's allowedAcr.
    if (!(ACR[tokenResult.acr] >= ACR[session.spAcr]) || !idp.allowedAcr.includes(tokenResult.acr)) {
      return fail('acr', `Niveau ${tokenResult.acr} refusé (demandé ${session.spAcr}, autorisés ${idp.allowedAcr.join(',')})`, { acr: tokenResult.acr });
    }
    const pivot = {
      given_name: identity.given_name,
      family_name: identity.family_name,
      birthdate: rnippBirthdate(identity.birthdate),
      gender: identity.gender,
      birthcountry: identity.birthcountry,
      ...(identity.birthcountry === COG_FRANCE ? { birthplace: identity.birthplace } : {}),
    };
    // FranceConnect's own subject: per person (identity hash) and per SP.
    const identityHash = sha256(JSON.stringify(pivot));
    const sub = sha256(`${identityHash}:${session.spId}`);
    accounts.set(sub, {
      claims: {
        sub,
        ...pivot,
        idp_birthdate: identity.birthdate,
        email: identity.email,
        ...(identity.preferred_username ? { preferred_username: identity.preferred_username } : {}),
        idp_id: idp.uid,
      },
      idp: { uid: idp.uid, idToken: tokenSet.id_token },
    });
    event('verified', { idp: idp.uid, spId: session.spId, acr: tokenResult.acr, rep_scope: repScope, identity, idTokenClaims: claims });
    const grant = new (provider().Grant)({ accountId: sub, clientId: session.spId });
    const interaction = await provider().Interaction.find(session.uid);
    if (!interaction) return errorPage(res, 400, 'Session expirée', 'La connexion a expiré. Recommencez depuis le service.');
    grant.addOIDCScope(String(interaction.params.scope || 'openid'));
    const grantId = await grant.save();
    return finishInteraction(res, session.uid, {
      login: { accountId: sub, acr: tokenResult.acr, amr: tokenResult.amr.length ? tokenResult.amr : undefined },
      consent: { grantId },
    });
  }

  /**
   * Before FranceConnect ends an SP's session: the FI's logout first, when the person logged in
   * there and it has an end_session_endpoint. Returns the URL to send the browser to, or null.
   */
  async function idpLogout(accountId, then) {
    const account = accounts.get(accountId);
    if (!account?.idp) return null;
    const idp = identityProviders.find((i) => i.uid === account.idp.uid);
    let client;
    try {
      client = await clientFor(idp);
    } catch (err) {
      event('idp-logout-unreachable', { message: err.message });
      return null;
    }
    if (!client.issuer.end_session_endpoint) return null;
    const state = random32();
    logouts.set(state, then);
    const url = client.endSessionUrl({ id_token_hint: account.idp.idToken, post_logout_redirect_uri: logoutCallbackUrl, state });
    account.idp = null;
    event('idp-logout', { idp: idp.uid, url });
    return url;
  }

  /** GET /api/v2/client/logout-callback */
  function logoutCallback(res, url) {
    const state = url.searchParams.get('state') || '';
    const then = logouts.get(state);
    event('idp-logout-callback', { state, known: Boolean(then) });
    if (!then) return errorPage(res, 400, 'Déconnexion', 'Déconnexion inconnue.');
    logouts.delete(state);
    res.statusCode = 303;
    res.setHeader('Location', then);
    return res.end();
  }

  /** The routes of the core under FranceConnect's prefix; true when handled. */
  async function route(req, res, url) {
    if (req.method === 'GET' && url.pathname === new URL(callbackUrl).pathname) {
      await callback(req, res, url);
      return true;
    }
    if (req.method === 'GET' && url.pathname === new URL(logoutCallbackUrl).pathname) {
      logoutCallback(res, url);
      return true;
    }
    return false;
  }

  if (!quiet && identityProviders.length) {
    console.warn(`franceconnect: identity providers ${identityProviders.map((i) => `${i.title} (${i.discoveryUrl})`).join(', ')}`);
  }

  return {
    events,
    buttons,
    redirectToIdp,
    route,
    idpLogout,
    account: (id) => accounts.get(id)?.claims,
  };
}
