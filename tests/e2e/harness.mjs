// End-to-end test harness for idp-proxy (used by tests/e2e/*.test.mjs, run with
// `node --test tests/e2e/`). It runs the real binary against the development aidant IdP
// (dev/upstream.mjs) and plays the service provider with openid-client v5 and the browser with a
// cookie jar. One file per job, all re-exported here:
//   processes.mjs        the binary, its config and keys, the dev IdP, Redis, PostgreSQL
//   browser.mjs          raw HTTP, cookies, the Browser, connection-counting agents
//   html.mjs             page text, forms, the choice page
//   demarche-driver.mjs  the service provider and the whole démarche
// The npm packages come from dev/node_modules: run `npm ci --prefix dev` first.

export * from './processes.mjs';
export * from './browser.mjs';
export * from './html.mjs';
export * from './demarche-driver.mjs';
