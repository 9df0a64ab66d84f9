#!/usr/bin/env node
// bench.js: times didcomm-node (DIDComm v2 reference implementation, Rust
// compiled to WASM) on the workload of agentd's agent/envelope benchmarks:
//
//   authcrypt: pack_encrypted (ECDH-1PU+A256KW, A256CBC-HS512; X25519, one
//              recipient key, 1 KiB body) + unpack, per op
//   anoncrypt: pack_encrypted (ECDH-ES+A256KW, XC20P; X25519, one recipient
//              key, 1 KiB body) + unpack, per op
//
// Keys are Alice's and Bob's static test-vector keys (keys.json in
// shared/vectors/didcomm), restricted to one X25519 key each so every message
// has exactly one recipient. No forward wrapping, no signing.
//
// Usage: node bench.js [--iterations N] [--rounds R] [--warmup W] [--json]
//   Each case runs W warm-up ops, then R timed rounds of N ops; it prints the
//   median (and min/max) of the rounds in µs/op and ops/s.

'use strict';

const didcomm = require('didcomm-node');
const { Message } = didcomm;
const LIB_VERSION = require('didcomm-node/package.json').version;

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}
const ITER = arg('iterations', 500);
const ROUNDS = arg('rounds', 7);
const WARMUP = arg('warmup', 300);
const JSON_OUT = process.argv.includes('--json');

// --- keys (from shared/vectors/didcomm/keys.json) ---------------------------

const ALICE = 'did:example:alice';
const BOB = 'did:example:bob';
const ALICE_X = {
  id: `${ALICE}#key-x25519-1`,
  pub: { kty: 'OKP', crv: 'X25519', x: 'avH0O2Y4tqLAq8y9zpianr8ajii5m4F_mICrzNlatXs' },
  d: 'r-jK2cO3taR8LQnJB1_ikLBTAnOtShJOsHXRUWT-aZA',
};
const ALICE_ED = {
  id: `${ALICE}#key-1`,
  pub: { kty: 'OKP', crv: 'Ed25519', x: 'G-boxFB6vOZBu-wXkm-9Lh79I8nf9Z50cILaOgKKGww' },
};
const BOB_X = {
  id: `${BOB}#key-x25519-1`,
  pub: { kty: 'OKP', crv: 'X25519', x: 'GDTrI66K0pFfO54tlCSvfjjNapIs44dzpneBgyx0S3E' },
  d: 'b9NnuOCB0hm7YGNvaE9DMhwH_wjZA1-gWD6dA0JWdL0',
};

const vm = (did, k) => ({ id: k.id, type: 'JsonWebKey2020', controller: did, publicKeyJwk: k.pub });
const secret = (k) => ({ id: k.id, type: 'JsonWebKey2020', privateKeyJwk: Object.assign({ d: k.d }, k.pub) });

// DID documents in the library's own shape (see README.md): one X25519
// key-agreement key each, no services (so no forward wrapping).
const DOCS = new Map([
  [ALICE, {
    id: ALICE,
    keyAgreement: [ALICE_X.id],
    authentication: [ALICE_ED.id],
    verificationMethod: [vm(ALICE, ALICE_X), vm(ALICE, ALICE_ED)],
    service: [],
  }],
  [BOB, {
    id: BOB,
    keyAgreement: [BOB_X.id],
    authentication: [],
    verificationMethod: [vm(BOB, BOB_X)],
    service: [],
  }],
]);

class Resolver {
  async resolve(did) {
    return DOCS.get(did) || null;
  }
}

class Secrets {
  constructor(list) {
    this.m = new Map(list.map((s) => [s.id, s]));
  }
  async get_secret(id) {
    return this.m.get(id) || null;
  }
  async find_secrets(ids) {
    return ids.filter((id) => this.m.has(id));
  }
}

const resolver = new Resolver();
const aliceSecrets = new Secrets([secret(ALICE_X)]);
const bobSecrets = new Secrets([secret(BOB_X)]);

// --- message: body is exactly 1024 bytes of JSON, as in agent/envelope ------

const FILL = 'x'.repeat(1024 - '{"content":""}'.length);
const BODY = { content: FILL };
if (JSON.stringify(BODY).length !== 1024) throw new Error('body is not 1 KiB');

const msg = new Message({
  id: '1234567890',
  typ: 'application/didcomm-plain+json',
  type: 'http://example.com/protocols/lets_do_lunch/1.0/proposal',
  from: ALICE,
  to: [BOB],
  created_time: 1516269022,
  expires_time: 1516385931,
  body: BODY,
});

const PACK_BASE = { forward: false, protect_sender: false };
const CASES = [
  {
    name: 'authcrypt',
    desc: 'ECDH-1PU+A256KW / A256CBC-HS512, X25519, 1 recipient, 1 KiB body, pack+unpack',
    from: ALICE,
    packOpts: Object.assign({ enc_alg_auth: 'A256cbcHs512Ecdh1puA256kw' }, PACK_BASE),
    expect: { encrypted: true, authenticated: true, anonymous_sender: false, enc_alg_auth: 'A256cbcHs512Ecdh1puA256kw' },
  },
  {
    name: 'anoncrypt',
    desc: 'ECDH-ES+A256KW / XC20P, X25519, 1 recipient, 1 KiB body, pack+unpack',
    from: null,
    packOpts: Object.assign({ enc_alg_anon: 'Xc20pEcdhEsA256kw' }, PACK_BASE),
    expect: { encrypted: true, authenticated: false, anonymous_sender: true, enc_alg_anon: 'Xc20pEcdhEsA256kw' },
  },
];

const UNPACK_OPTS = { expect_decrypt_by_all_keys: false, unwrap_re_wrapping_forward: false };

// one op = pack_encrypted + unpack; returns the unpacked message (caller frees)
async function op(c) {
  const [packed] = await msg.pack_encrypted(BOB, c.from, null, resolver, c.from ? aliceSecrets : bobSecrets, c.packOpts);
  const [out, meta] = await Message.unpack(packed, resolver, bobSecrets, UNPACK_OPTS);
  return [out, meta, packed];
}

// check verifies one op end to end: one recipient, right algorithms, body intact.
async function check(c) {
  const [out, meta, packed] = await op(c);
  try {
    const jwe = JSON.parse(packed);
    if (jwe.recipients.length !== 1 || jwe.recipients[0].header.kid !== BOB_X.id) {
      throw new Error(`${c.name}: expected exactly one recipient ${BOB_X.id}`);
    }
    const prot = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString());
    for (const [k, v] of Object.entries(c.expect)) {
      if (meta[k] !== v) throw new Error(`${c.name}: metadata.${k} = ${JSON.stringify(meta[k])}, want ${JSON.stringify(v)}`);
    }
    const body = out.as_value().body;
    if (JSON.stringify(body) !== JSON.stringify(BODY)) throw new Error(`${c.name}: body mismatch`);
    return { alg: prot.alg, enc: prot.enc, jwe_bytes: packed.length };
  } finally {
    out.free();
  }
}

async function timeRound(c, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const [out] = await op(c);
    out.free();
  }
  return Number(process.hrtime.bigint() - t0) / 1e3 / n; // µs/op
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const results = [];
  if (!JSON_OUT) {
    console.log(`didcomm-node ${LIB_VERSION}, node ${process.version}, ${ROUNDS} rounds x ${ITER} ops (warm-up ${WARMUP})`);
  }
  for (const c of CASES) {
    const info = await check(c);
    await timeRound(c, WARMUP);
    const rounds = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await timeRound(c, ITER));
    const med = median(rounds);
    const res = {
      name: c.name, desc: c.desc, alg: info.alg, enc: info.enc, jwe_bytes: info.jwe_bytes,
      us_per_op: +med.toFixed(1), ops_per_s: Math.round(1e6 / med),
      min_us: +Math.min(...rounds).toFixed(1), max_us: +Math.max(...rounds).toFixed(1),
      rounds_us: rounds.map((x) => +x.toFixed(1)),
    };
    results.push(res);
    if (!JSON_OUT) {
      console.log(`${c.name.padEnd(10)} ${res.us_per_op.toFixed(1).padStart(9)} µs/op ` +
        `${String(res.ops_per_s).padStart(7)} ops/s  (min ${res.min_us}, max ${res.max_us})  ` +
        `[${info.alg} ${info.enc}, JWE ${info.jwe_bytes} B]`);
    }
  }
  msg.free();
  if (JSON_OUT) {
    console.log(JSON.stringify({ library: 'didcomm-node', version: LIB_VERSION, node: process.version,
      iterations: ITER, rounds: ROUNDS, warmup: WARMUP, results }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
