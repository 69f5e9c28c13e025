// The browser: raw HTTP requests, a cookie jar as browsers keep one, and HTTP clients whose
// connections the tests can count.

import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';

import { custom } from './processes.mjs';

// ---------------------------------------------------------------------------------------------
// Raw HTTP: one connection per request (Connection: close), so that a server that answers 413
// before reading a huge body, then closes, cannot break the next request on a reused socket.

/**
 * @returns {Promise<{status:number, headers:Headers, location:string|null, body:string, contentType:string}>}
 */
export function rawRequest(href, { method = 'GET', headers = {}, body, timeout = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(href);
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const h = { connection: 'close', ...headers };
    if (payload) h['content-length'] = String(payload.length);
    let responded = false;
    const req = httpRequest({
      host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers: h, agent: false, timeout,
    }, (res) => {
      responded = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const hs = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          for (const one of Array.isArray(v) ? v : [v]) hs.append(k, one);
        }
        resolve({
          status: res.statusCode,
          headers: hs,
          location: hs.get('location'),
          body: Buffer.concat(chunks).toString('utf8'),
          contentType: hs.get('content-type') || '',
        });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${href.slice(0, 120)}: no answer within ${timeout} ms`)));
    req.on('error', (err) => {
      // EPIPE/ECONNRESET while still sending a huge body, after the answer came: ignore.
      if (!responded) reject(new Error(`${method} ${href.slice(0, 120)}: ${err.code || err.message} (connection closed without an HTTP answer)`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// A browser: fetch with redirect "manual", a cookie jar per host:port

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function defaultCookiePath(url) {
  const p = url.pathname;
  if (!p.startsWith('/') || p.lastIndexOf('/') === 0) return '/';
  return p.slice(0, p.lastIndexOf('/'));
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

export function parseSetCookie(header, url) {
  const [pair, ...attrs] = header.split(';');
  const eq = pair.indexOf('=');
  if (eq < 1) return null;
  const cookie = {
    name: pair.slice(0, eq).trim(),
    value: pair.slice(eq + 1).trim(),
    path: defaultCookiePath(url),
    expires: null,
    secure: false,
    httpOnly: false,
    sameSite: null,
    domain: null,
  };
  for (const attr of attrs) {
    const i = attr.indexOf('=');
    const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? '' : attr.slice(i + 1).trim();
    if (key === 'path' && val.startsWith('/')) cookie.path = val;
    else if (key === 'max-age' && /^-?\d+$/.test(val)) cookie.expires = Date.now() + Number(val) * 1000;
    else if (key === 'expires' && cookie.expires === null) {
      const t = Date.parse(val);
      if (!Number.isNaN(t)) cookie.expires = t;
    } else if (key === 'secure') cookie.secure = true;
    else if (key === 'httponly') cookie.httpOnly = true;
    else if (key === 'samesite') cookie.sameSite = val.toLowerCase();
    else if (key === 'domain') cookie.domain = val.replace(/^\./, '').toLowerCase();
  }
  return cookie;
}

/**
 * Cookies are kept per host:port (the proxy and the upstream IdP are different sites in
 * production; on 127.0.0.1 they differ only by port). `Secure` cookies — `__Host-` ones
 * included — are sent over http to 127.0.0.1 like a browser treats loopback as trustworthy.
 * SameSite is recorded but not enforced: every 127.0.0.1 port is the same site.
 */
export class Browser {
  constructor() {
    this.jar = new Map(); // host:port -> Map(name+path -> cookie)
    this.history = [];
  }

  cookies(origin) {
    const host = new URL(origin).host;
    const now = Date.now();
    return [...(this.jar.get(host)?.values() || [])].filter((c) => c.expires === null || c.expires > now);
  }

  store(url, res) {
    const list = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
    for (const header of list) {
      const c = parseSetCookie(header, url);
      if (!c) continue;
      if (c.name.startsWith('__Host-') && (c.path !== '/' || c.domain || !c.secure)) {
        // A browser would reject it: so do we, so that the proxy's mistakes show up in tests.
        continue;
      }
      if (c.name.startsWith('__Secure-') && !c.secure) continue;
      if (!this.jar.has(url.host)) this.jar.set(url.host, new Map());
      const bucket = this.jar.get(url.host);
      const key = `${c.name};${c.path}`;
      if (c.expires !== null && c.expires <= Date.now()) bucket.delete(key);
      else bucket.set(key, c);
    }
  }

  cookieHeader(url) {
    const now = Date.now();
    const list = [...(this.jar.get(url.host)?.values() || [])]
      .filter((c) => (c.expires === null || c.expires > now) && pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return list.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  /**
   * One request, no redirect followed. `form` (object or URLSearchParams) is sent as
   * application/x-www-form-urlencoded.
   */
  async request(href, { method = 'GET', form, headers = {}, body } = {}) {
    const { url, headers: h, body: payload } = this.prepare(href, { form, headers, body });
    const res = await fetch(url, { method, headers: h, body: payload, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    this.store(url, res);
    const text = await res.text();
    return this.step(url, method, res.status, res.headers, text);
  }

  /**
   * What a request sends (request's and HttpBrowser's): the browser's headers, the cookies for
   * `href`, and `form` (object or URLSearchParams) encoded as the body.
   * @returns {{url: URL, headers: object, body: string|undefined}}
   */
  prepare(href, { form, headers = {}, body } = {}) {
    const url = new URL(href);
    const h = { 'user-agent': 'idp-proxy-e2e', accept: 'text/html,application/json;q=0.9,*/*;q=0.8', ...headers };
    const cookie = this.cookieHeader(url);
    if (cookie) h.cookie = cookie;
    if (form) {
      body = form instanceof URLSearchParams ? form.toString() : new URLSearchParams(form).toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
    }
    return { url, headers: h, body };
  }

  /** An answer (its cookies already stored) as a step of the history, which request returns. */
  step(url, method, status, headers, body) {
    const location = headers.get('location');
    const step = {
      method,
      url: url.toString(),
      status,
      headers,
      location: location ? new URL(location, url).toString() : null,
      contentType: headers.get('content-type') || '',
      body,
    };
    this.history.push(step);
    return step;
  }

  /**
   * Requests `href` then follows redirects (303/302/301 → GET; 307/308 keep the method) until a
   * non-redirect answer, or until a Location matches `stopAt(url)` (not fetched: it is the
   * service provider's redirect_uri, which need not listen).
   * @returns {{steps, final, stoppedAt: URL|null}}
   */
  async navigate(href, { method = 'GET', form, stopAt = () => false, maxRedirects = 20 } = {}) {
    const steps = [];
    let step = await this.request(href, { method, form });
    steps.push(step);
    for (let i = 0; REDIRECTS.has(step.status) && step.location; i++) {
      const next = new URL(step.location);
      if (stopAt(next)) return { steps, final: step, stoppedAt: next };
      if (i >= maxRedirects) throw new Error(`too many redirects: ${steps.map((s) => `${s.status} ${s.url}`).join(' → ')}`);
      const keep = step.status === 307 || step.status === 308;
      step = await this.request(next.toString(), keep ? { method: step.method, form } : {});
      steps.push(step);
    }
    return { steps, final: step, stoppedAt: null };
  }
}

// ---------------------------------------------------------------------------------------------
// Traffic recorded request by request (shutdown.test.mjs, observability.test.mjs)

/**
 * An http.Agent that records every request made through it, for the Browser below and for
 * openid-client (`trackTraffic(sp, agent)`). By default without keep-alive (each request on a
 * new connection, `Connection: close`); `keepAlive: true` reuses idle connections.
 * `requestIds: true` gives every request that has none a fresh `X-Request-Id` (16 hex
 * characters, which idp-proxy takes as its own and logs). A record: { method, url, port,
 * sentId (the X-Request-Id sent, or null), startedAt, connectedAt (the TCP connection was made,
 * or an idle one taken: the request was sent, or being sent), reused (on a kept-alive
 * connection), status, requestId (the answer's X-Request-Id), complete (every byte of the
 * answer came), endedAt, error (code or message of a transport failure) }. Times are
 * performance.now().
 */
export class TrackingAgent extends HttpAgent {
  constructor({ keepAlive = false, requestIds = false } = {}) {
    super({ keepAlive });
    this.requestIds = requestIds;
    this.records = [];
  }

  addRequest(req, options) {
    // The head is written on the first write or end(), after this: a header can still be set.
    if (this.requestIds && !req.hasHeader('x-request-id')) req.setHeader('x-request-id', randomBytes(8).toString('hex'));
    const rec = {
      method: req.method, url: `http://${options.host}:${options.port}${req.path}`, port: Number(options.port),
      sentId: req.getHeader('x-request-id') ?? null, startedAt: performance.now(), connectedAt: null, reused: false,
      status: null, requestId: null, complete: false, endedAt: null, error: null,
    };
    this.records.push(rec);
    const end = (error) => {
      if (rec.endedAt !== null) return;
      rec.endedAt = performance.now();
      if (error) rec.error = error;
    };
    req.once('socket', (socket) => {
      if (socket.connecting) socket.once('connect', () => { rec.connectedAt = performance.now(); });
      else {
        rec.connectedAt = performance.now();
        rec.reused = true;
      }
    });
    req.once('response', (res) => {
      rec.status = res.statusCode;
      rec.requestId = res.headers['x-request-id'] ?? null;
      // Watched, not read (a 'data' listener here would take chunks from the caller): 'end'
      // comes once the caller has read the whole answer.
      res.once('end', () => { rec.complete = res.complete; end(res.complete ? null : 'incomplete'); });
      res.once('aborted', () => end('aborted'));
      res.once('error', (e) => end(e.code || e.message));
      res.once('close', () => end('closed before the end of the answer'));
    });
    req.once('error', (e) => end(e.code || e.message));
    return super.addRequest(req, options);
  }
}

/** openid-client's requests for this SP (token, userinfo, JWKS…) through `agent`. */
export function trackTraffic(sp, agent) {
  const opts = () => ({ agent });
  sp.client[custom.http_options] = opts;
  sp.issuer[custom.http_options] = opts;
  return sp;
}

/** The Browser over node:http and an agent (a TrackingAgent: by default, one connection per request). */
export class HttpBrowser extends Browser {
  constructor(agent = new TrackingAgent()) {
    super();
    this.agent = agent;
  }

  request(href, { method = 'GET', form, headers = {}, body } = {}) {
    const { url, headers: h, body: text } = this.prepare(href, { form, headers, body });
    const payload = text === undefined ? undefined : Buffer.from(text, 'utf8');
    if (payload) h['content-length'] = String(payload.length);
    return new Promise((resolve, reject) => {
      const req = httpRequest({
        host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers: h, agent: this.agent, timeout: 15_000,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (!res.complete) { reject(new Error(`${method} ${href.slice(0, 120)}: incomplete answer`)); return; }
          const hs = new Headers();
          for (const [k, v] of Object.entries(res.headers)) for (const one of Array.isArray(v) ? v : [v]) hs.append(k, one);
          this.store(url, { headers: hs });
          resolve(this.step(url, method, res.statusCode, hs, Buffer.concat(chunks).toString('utf8')));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${href.slice(0, 120)}: no answer within 15 s`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }
}
