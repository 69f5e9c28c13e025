// Benchmark only: the development IdP (oidc-provider 8, ES256 ID tokens) with an unbounded
// in-memory adapter instead of oidc-provider's 1000-entry LRU, which would evict codes minted
// in bulk. Stands for "a well-known OpenID Provider on the same machine" in BENCHMARKS.md.
//   node bench/oidc-provider.mjs   → http://127.0.0.1:9100

import { startUpstream } from '../dev/upstream.mjs';

const stores = new Map();

class MapAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }

  async upsert(id, payload, expiresIn) {
    const expires = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    this.store.set(id, { payload, expires });
    if (payload.uid) stores.get('uid')?.set(payload.uid, id) ?? stores.set('uid', new Map([[payload.uid, id]]));
  }

  async find(id) {
    const e = this.store.get(id);
    if (!e) return undefined;
    if (e.expires < Date.now()) { this.store.delete(id); return undefined; }
    return e.payload;
  }

  async findByUid(uid) {
    const id = stores.get('uid')?.get(uid);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode() { return undefined; }

  async consume(id) {
    const e = this.store.get(id);
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { this.store.delete(id); }

  async revokeByGrantId(grantId) {
    for (const m of stores.values()) {
      for (const [k, v] of m) if (v?.payload?.grantId === grantId) m.delete(k);
    }
  }
}

await startUpstream({ port: 9100, adapter: MapAdapter, quiet: true });
console.error('bench oidc-provider on http://127.0.0.1:9100');
