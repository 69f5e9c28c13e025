// Redis over TLS with a password (issue #5): a TLS-only redis-server whose certificate is
// issued by a CA of the test's own, trusted through SSL_CERT_FILE (the system trust store is
// where production adds a private CA). The node serves a démarche through `rediss://`; a node
// that does not trust the server's certificate, or gives a wrong password, refuses to start
// and says why, rather than running without its store.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { makeSp, runDemarche, startRedis, startWorld, trace } from './harness.mjs';
import { IMPORT, SP1, UPSTREAM_ACCOUNTS } from './world.mjs';

const PASSWORD = 'tls-test-password';

/** A CA and a certificate for localhost signed by it, in `dir`. */
function certificates(dir, name) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}-ca.key`, '-out', `${name}-ca.pem`, '-days', '2', '-subj', `/CN=${name} test CA`);
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-ca.pem`, '-CAkey', `${name}-ca.key`,
    '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'san.ext');
  return { ca: join(dir, `${name}-ca.pem`), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

describe('Redis over TLS, with a password', () => {
  let dir;
  let redis;
  let port;
  let server;
  let other;
  const savedCertFile = process.env.SSL_CERT_FILE;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idp-proxy-redis-tls-'));
    server = certificates(dir, 'redis');
    other = certificates(dir, 'other');
    redis = await startRedis({ tls: server, password: PASSWORD });
    port = redis.port;
  });

  after(async () => {
    if (savedCertFile === undefined) delete process.env.SSL_CERT_FILE;
    else process.env.SSL_CERT_FILE = savedCertFile;
    await redis?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const world = (password, ca) => {
    process.env.SSL_CERT_FILE = ca;
    return startWorld({
      clients: [SP1], importToml: IMPORT, upstreamAccounts: UPSTREAM_ACCOUNTS,
      config: { ephemeral: { backend: 'redis', url: `rediss://:${password}@localhost:${port}`, prefix: 'tls:', timeout_ms: 1000 } },
    });
  };

  it('serves a démarche through rediss:// when it trusts the server', async () => {
    const w = await world(PASSWORD, server.ca);
    try {
      const ready = await fetch(`${w.proxy.issuer}/readyz`);
      assert.equal(ready.status, 200, JSON.stringify(await ready.json()));
      const sp = await makeSp(w.proxy, SP1);
      const r = await runDemarche({ proxy: w.proxy, upstream: w.upstream, sp });
      assert.ok(r.claims?.act, trace(r));
    } finally {
      await w.stop();
    }
  });

  it('refuses to start when the server\'s certificate is not from a trusted CA', async () => {
    await assert.rejects(world(PASSWORD, other.ca), /exited early[\s\S]*(certificate|Certificate|UnknownIssuer|tls|TLS)/);
  });

  it('refuses to start with a wrong password, without printing it', async () => {
    const wrong = 'wrong-password-not-to-be-printed';
    await assert.rejects(world(wrong, server.ca), (err) => {
      assert.match(err.message, /exited early[\s\S]*(WRONGPASS|invalid username-password|AuthenticationFailed|auth)/i);
      assert.ok(!err.message.includes(wrong), 'the password is not printed');
      return true;
    });
  });
});
