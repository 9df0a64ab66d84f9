#!/usr/bin/env node
// peer.js: a long-running didcomm-node (DIDComm v2 reference implementation,
// Rust compiled to WASM) peer driven over stdin/stdout, for agentd's Go
// interoperability tests (see internal/didcommnode).
//
// Protocol: one JSON request per line on stdin, one JSON response per line on
// stdout, in request order. Every request carries the DID documents and
// secrets the library may use for that call. See README.md for the ops.
//
// stdout carries protocol lines only; anything else (console output, WASM
// panic messages) goes to stderr.

'use strict';

const readline = require('readline');

// Keep stdout for protocol lines: route console output to stderr before the
// library is loaded (its panic hook logs through console.error, which is
// already stderr).
const toStderr = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
// Remember the last console.error text: a Rust panic is reported there (by
// console_error_panic_hook) just before the WASM trap.
let lastConsoleError = '';
const origConsoleError = console.error;
console.error = (...args) => {
  lastConsoleError = args.map(String).join(' ');
  origConsoleError(...args);
};

const didcomm = require('didcomm-node');
const { Message, FromPrior } = didcomm;
const LIB_VERSION = require('didcomm-node/package.json').version;

// ---------------------------------------------------------------------------
// Input normalisation (documented in README.md). didcomm-node 0.4.1 (serde)
// accepts exactly:
//   DIDDoc  {id, keyAgreement: [kid...], authentication: [kid...],
//            verificationMethod: [VM...], service: [Service...]} (all required)
//   VM      {id, type, controller, publicKeyJwk | publicKeyMultibase | publicKeyBase58}
//           type one of JsonWebKey2020, X25519KeyAgreementKey2019,
//           X25519KeyAgreementKey2020, Ed25519VerificationKey2018,
//           Ed25519VerificationKey2020, EcdsaSecp256k1VerificationKey2019, Other
//   Service {id, type: "DIDCommMessaging", serviceEndpoint: {uri, accept?, routingKeys?}}
//           or {id, type: "Other", serviceEndpoint: any}
//   Secret  {id, type, privateKeyJwk | privateKeyMultibase | privateKeyBase58}
// The helpers below turn common W3C shapes into that form so tests can feed
// real-world documents; input already in the library's shape passes unchanged.
// ---------------------------------------------------------------------------

const VM_TYPES = new Set([
  'JsonWebKey2020',
  'X25519KeyAgreementKey2019',
  'X25519KeyAgreementKey2020',
  'Ed25519VerificationKey2018',
  'Ed25519VerificationKey2020',
  'EcdsaSecp256k1VerificationKey2019',
  'Other',
]);

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function base58Decode(s) {
  const bytes = [0];
  for (const ch of s) {
    const v = B58.indexOf(ch);
    if (v < 0) throw new Error(`invalid base58 character ${JSON.stringify(ch)}`);
    let carry = v;
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (let i = 0; i < s.length && s[i] === '1'; i++) bytes.push(0);
  return Buffer.from(bytes.reverse());
}

// multikeyType maps a multibase (base58btc 'z') multicodec key to the
// didcomm-node type that carries the same publicKeyMultibase/privateKeyMultibase
// value. Only the codecs the library can use are mapped.
function multikeyType(multibase, isPrivate) {
  if (typeof multibase !== 'string' || !multibase.startsWith('z')) {
    throw new Error('Multikey value must be base58btc multibase (z...)');
  }
  const b = base58Decode(multibase.slice(1));
  const codec = b.length >= 2 ? (b[0] << 8) | b[1] : -1;
  const table = isPrivate
    ? { 0x8226: 'X25519KeyAgreementKey2020', 0x8026: 'Ed25519VerificationKey2020' }
    : { 0xec01: 'X25519KeyAgreementKey2020', 0xed01: 'Ed25519VerificationKey2020' };
  const t = table[codec];
  if (!t) {
    throw new Error(
      `Multikey codec 0x${codec.toString(16)} is not usable with didcomm-node ` +
        '(only X25519 and Ed25519 Multikeys are converted; give P-256/secp256k1 keys as JsonWebKey2020)');
  }
  return t;
}

function normalizeVM(vm, docId) {
  const out = Object.assign({}, vm);
  if (out.controller === undefined || out.controller === null) out.controller = docId;
  if (out.type === 'Multikey' && out.publicKeyMultibase !== undefined) {
    out.type = multikeyType(out.publicKeyMultibase, false);
  } else if ((out.type === 'JsonWebKey' || out.type === 'Multikey') && out.publicKeyJwk !== undefined) {
    out.type = 'JsonWebKey2020';
  }
  if (!VM_TYPES.has(out.type)) {
    throw new Error(`verification method ${out.id}: type ${JSON.stringify(out.type)} is not supported by didcomm-node`);
  }
  if (out.id && out.id.startsWith('#')) out.id = docId + out.id;
  return out;
}

function normalizeService(svc, docId) {
  const out = Object.assign({}, svc);
  if (out.id && out.id.startsWith('#')) out.id = docId + out.id;
  if (out.type !== 'DIDCommMessaging') {
    return { id: out.id, type: 'Other', serviceEndpoint: out.serviceEndpoint === undefined ? null : out.serviceEndpoint };
  }
  let ep = out.serviceEndpoint;
  if (Array.isArray(ep)) ep = ep[0];
  if (typeof ep === 'string') ep = { uri: ep };
  if (ep && typeof ep === 'object') {
    ep = Object.assign({}, ep);
    if (ep.routingKeys === undefined && ep.routing_keys !== undefined) {
      ep.routingKeys = ep.routing_keys;
      delete ep.routing_keys;
    }
    if (ep.routingKeys === undefined) ep.routingKeys = [];
  }
  out.serviceEndpoint = ep;
  return out;
}

function normalizeDoc(doc) {
  if (!doc || typeof doc !== 'object' || typeof doc.id !== 'string') {
    throw new Error('every did_docs entry must be an object with a string id');
  }
  const id = doc.id;
  const vms = [];
  const seen = new Set();
  const addVM = (vm) => {
    const n = normalizeVM(vm, id);
    if (!seen.has(n.id)) {
      seen.add(n.id);
      vms.push(n);
    }
    return n.id;
  };
  for (const vm of doc.verificationMethod || []) addVM(vm);
  const refs = (list) =>
    (list || []).map((r) => {
      if (typeof r === 'string') return r.startsWith('#') ? id + r : r;
      return addVM(r); // embedded verification method
    });
  return {
    id,
    keyAgreement: refs(doc.keyAgreement),
    authentication: refs(doc.authentication),
    verificationMethod: vms,
    service: (doc.service || []).map((s) => normalizeService(s, id)),
  };
}

function normalizeSecret(s) {
  if (!s || typeof s !== 'object') throw new Error('every secrets entry must be an object');
  // A bare private JWK carrying its kid: {"kid", "kty", "crv", "x", "d", ...}.
  if (s.kty !== undefined && s.privateKeyJwk === undefined) {
    const jwk = Object.assign({}, s);
    const id = jwk.kid;
    delete jwk.kid;
    if (typeof id !== 'string') throw new Error('a bare JWK secret needs a kid');
    return { id, type: 'JsonWebKey2020', privateKeyJwk: jwk };
  }
  const out = Object.assign({}, s);
  if (out.id === undefined && typeof out.kid === 'string') {
    out.id = out.kid;
    delete out.kid;
  }
  if (out.type === 'Multikey' && out.privateKeyMultibase !== undefined) {
    out.type = multikeyType(out.privateKeyMultibase, true);
  } else if ((out.type === 'JsonWebKey' || out.type === 'Multikey') && out.privateKeyJwk !== undefined) {
    out.type = 'JsonWebKey2020';
  }
  if (out.type === undefined && out.privateKeyJwk !== undefined) out.type = 'JsonWebKey2020';
  if (!VM_TYPES.has(out.type)) {
    throw new Error(`secret ${out.id}: type ${JSON.stringify(out.type)} is not supported by didcomm-node`);
  }
  return out;
}

class DocsResolver {
  constructor(docs) {
    this.docs = new Map();
    for (const d of docs || []) {
      const n = normalizeDoc(d);
      this.docs.set(n.id, n);
    }
  }

  async resolve(did) {
    return this.docs.get(did) || null;
  }
}

class SecretsStore {
  constructor(secrets) {
    this.secrets = new Map();
    for (const s of secrets || []) {
      const n = normalizeSecret(s);
      this.secrets.set(n.id, n);
    }
  }

  async get_secret(id) {
    return this.secrets.get(id) || null;
  }

  async find_secrets(ids) {
    return ids.filter((id) => this.secrets.has(id));
  }
}

// ---------------------------------------------------------------------------
// Ops
// ---------------------------------------------------------------------------

function need(req, name, type) {
  const v = req[name];
  if (type === 'array' ? !Array.isArray(v) : typeof v !== type || v === null) {
    throw new Error(`${req.op}: argument ${name} must be ${type === 'object' ? 'an' : 'a'} ${type}`);
  }
  return v;
}

function optString(req, name) {
  const v = req[name];
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw new Error(`${req.op}: argument ${name} must be a string or null`);
  return v;
}

function packedString(req, name) {
  const v = req[name];
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') return JSON.stringify(v);
  throw new Error(`${req.op}: argument ${name} must be a JSON string (or object)`);
}

// withMessage builds a library Message from a plain object, runs fn and frees
// the WASM-side object.
async function withMessage(value, fn) {
  const msg = new Message(value);
  try {
    return await fn(msg);
  } finally {
    msg.free();
  }
}

const ops = {
  async ping() {
    return { version: LIB_VERSION };
  },

  async pack_encrypted(req, r, s) {
    const message = need(req, 'message', 'object');
    const to = need(req, 'to', 'string');
    const from = optString(req, 'from');
    const signBy = optString(req, 'sign_by');
    const options = req.options || {};
    const [packed, metadata] = await withMessage(message, (m) =>
      m.pack_encrypted(to, from, signBy, r, s, options));
    return { packed, metadata };
  },

  async pack_signed(req, r, s) {
    const message = need(req, 'message', 'object');
    const signBy = need(req, 'sign_by', 'string');
    const [packed, metadata] = await withMessage(message, (m) => m.pack_signed(signBy, r, s));
    return { packed, metadata };
  },

  async pack_plaintext(req, r) {
    const message = need(req, 'message', 'object');
    const packed = await withMessage(message, (m) => m.pack_plaintext(r));
    return { packed };
  },

  async unpack(req, r, s) {
    const packed = packedString(req, 'packed');
    const options = req.options || {};
    const [msg, metadata] = await Message.unpack(packed, r, s, options);
    try {
      const out = { message: msg.as_value(), metadata };
      let fwd = msg.try_parse_forward();
      if (fwd && typeof fwd.as_value === 'function') fwd = fwd.as_value();
      if (fwd) out.forward = { next: fwd.next, forwarded_msg: fwd.forwarded_msg };
      return out;
    } finally {
      msg.free();
    }
  },

  // Harness self-test only: makes didcomm-rust panic (empty routing keys).
  async _panic(req, r) {
    await Message.wrap_in_forward('{}', {}, 'did:example:x', [], 'Xc20pEcdhEsA256kw', r);
    return {};
  },

  async wrap_in_forward(req, r) {
    const packed = packedString(req, 'packed');
    const to = need(req, 'to', 'string');
    const routingKeys = need(req, 'routing_keys', 'array');
    // didcomm-rust 0.4.1 panics (WASM trap) on an empty list; refuse it here.
    if (routingKeys.length === 0) throw new Error('wrap_in_forward: routing_keys must not be empty');
    const headers = req.headers || {};
    const encAlgAnon = req.enc_alg_anon || 'Xc20pEcdhEsA256kw';
    const out = await Message.wrap_in_forward(packed, headers, to, routingKeys, encAlgAnon, r);
    return { packed: out };
  },

  async from_prior_pack(req, r, s) {
    const value = need(req, 'from_prior', 'object');
    const issuerKid = optString(req, 'issuer_kid');
    const fp = new FromPrior(value);
    try {
      const [jwt, kid] = await fp.pack(issuerKid, r, s);
      return { from_prior_jwt: jwt, issuer_kid: kid };
    } finally {
      fp.free();
    }
  },

  async from_prior_unpack(req, r) {
    const jwt = need(req, 'from_prior_jwt', 'string');
    const [fp, kid] = await FromPrior.unpack(jwt, r);
    try {
      return { from_prior: fp.as_value(), issuer_kid: kid };
    } finally {
      fp.free();
    }
  },
};

function errorString(e) {
  if (e instanceof Error) {
    const name = e.name && e.name !== 'Error' ? e.name + ': ' : '';
    return name + e.message;
  }
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch (_) {
    return String(e);
  }
}

function requestId(line) {
  try {
    const req = JSON.parse(line);
    return req && req.id !== undefined ? req.id : null;
  } catch (_) {
    return null;
  }
}

async function handle(line) {
  let id = null;
  try {
    const req = JSON.parse(line);
    if (!req || typeof req !== 'object' || Array.isArray(req)) throw new Error('request must be a JSON object');
    id = req.id === undefined ? null : req.id;
    if (typeof req.op !== 'string' || !Object.prototype.hasOwnProperty.call(ops, req.op)) {
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
    }
    const op = ops[req.op];
    if (req.did_docs != null && !Array.isArray(req.did_docs)) throw new Error('did_docs must be an array');
    if (req.secrets != null && !Array.isArray(req.secrets)) throw new Error('secrets must be an array');
    const r = new DocsResolver(req.did_docs);
    const s = new SecretsStore(req.secrets);
    const result = await op(req, r, s);
    return Object.assign({ id }, result);
  } catch (e) {
    const resp = { id, error: errorString(e) };
    if (e instanceof Error && e.name && e.name.startsWith('DIDComm')) resp.error_kind = e.name;
    if (e instanceof WebAssembly.RuntimeError) {
      // A Rust panic: the WASM instance may be left inconsistent.
      resp.error_kind = 'WasmPanic';
      resp.fatal = true;
    }
    return resp;
  }
}

// A Rust panic inside an async library call traps in a WASM task, outside the
// promise of the request: it arrives here, and the request's promise never
// settles. Answer the in-flight request and exit; the Go side starts a fresh
// process for the next call.
let inflightId;
let fatalSent = false;
function onFatal(e) {
  if (fatalSent) return;
  fatalSent = true;
  const panic = lastConsoleError.split('\n')[0];
  const resp = {
    id: inflightId === undefined ? null : inflightId,
    error: 'WasmPanic: ' + (panic || errorString(e)),
    error_kind: 'WasmPanic',
    fatal: true,
  };
  process.stderr.write(`peer.js: fatal: ${errorString(e)}; exiting\n`);
  if (inflightId === undefined) process.exit(70);
  process.stdout.write(JSON.stringify(resp) + '\n', () => process.exit(70));
}
process.on('uncaughtException', onFatal);
process.on('unhandledRejection', onFatal);

function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    chain = chain.then(async () => {
      inflightId = requestId(line);
      lastConsoleError = '';
      const resp = await handle(line);
      inflightId = undefined;
      process.stdout.write(JSON.stringify(resp) + '\n');
      if (resp.fatal) {
        process.stderr.write('peer.js: WASM panic; exiting so the next call starts a fresh instance\n');
        process.stdout.write('', () => process.exit(70));
        await new Promise(() => {}); // stop the chain until exit
      }
    });
  });
  rl.on('close', () => {
    chain.then(() => process.stdout.end());
  });
}

main();
