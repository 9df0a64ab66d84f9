#!/usr/bin/env node
// driver.mjs: a long-running Veramo 7 (@veramo/did-comm) peer driven over
// stdin/stdout, for agentd's Go interoperability tests (see internal/veramo).
//
// Protocol: one JSON request per line on stdin, one JSON response per line on
// stdout, in request order: {"id": N, "op": "...", ...} is answered with
// {"id": N, "ok": true, "result": {...}} or {"id": N, "ok": false,
// "error": "..."}. stdout carries protocol lines only; console output goes
// to stderr. See README.md for the ops.
//
// The peer holds one identity, a did:key (Ed25519; its keyAgreement is the
// derived X25519 key), created by the "init" op from a private key the Go
// test supplies, so the test can check what agentd sends back. Other DIDs
// are resolved from the DID documents a request carries in "docs" (kept for
// later requests); did:key DIDs with Veramo's own resolver.

import readline from 'node:readline';
import { readFileSync } from 'node:fs';

const toStderr = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.warn = toStderr;

const { createAgent } = await import('@veramo/core');
const { KeyManager, MemoryKeyStore, MemoryPrivateKeyStore } = await import('@veramo/key-manager');
const { KeyManagementSystem } = await import('@veramo/kms-local');
const { DIDManager, MemoryDIDStore } = await import('@veramo/did-manager');
const { KeyDIDProvider, getDidKeyResolver } = await import('@veramo/did-provider-key');
const { DIDResolverPlugin } = await import('@veramo/did-resolver');
const { DIDComm } = await import('@veramo/did-comm');
const { Resolver } = await import('did-resolver');

// The package's exports hide package.json; read it from node_modules.
const VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/@veramo/did-comm/package.json', import.meta.url), 'utf8'),
).version;

// Documents supplied by the test, by DID.
const docs = new Map();

function rememberDocs(list) {
  for (const d of list || []) {
    if (!d || typeof d.id !== 'string') throw new Error('a document in docs has no id');
    docs.set(d.id, d);
  }
}

function fromDocs(did) {
  const doc = docs.get(did);
  if (!doc) {
    return { didResolutionMetadata: { error: 'notFound' }, didDocument: null, didDocumentMetadata: {} };
  }
  return {
    didResolutionMetadata: { contentType: 'application/did+ld+json' },
    didDocument: structuredClone(doc),
    didDocumentMetadata: {},
  };
}

const supplied = async (did) => fromDocs(did);

// A transport that hands the message Veramo would send back to the test
// (which posts it to agentd and checks the answer) instead of sending it.
class CaptureTransport {
  constructor() {
    this.id = 'capture';
    this.sent = [];
  }
  isServiceSupported(service) {
    return service?.type === 'DIDCommMessaging';
  }
  async send(service, message) {
    const ep = service.serviceEndpoint;
    let uri = typeof ep === 'string' ? ep : Array.isArray(ep) ? (typeof ep[0] === 'string' ? ep[0] : ep[0]?.uri) : ep?.uri;
    this.sent.push({ endpoint: uri, message });
    return {};
  }
}

const capture = new CaptureTransport();
const didcomm = new DIDComm({ transports: [capture] });
const agent = createAgent({
  plugins: [
    new KeyManager({
      store: new MemoryKeyStore(),
      kms: { local: new KeyManagementSystem(new MemoryPrivateKeyStore()) },
    }),
    new DIDManager({
      store: new MemoryDIDStore(),
      defaultProvider: 'did:key',
      providers: { 'did:key': new KeyDIDProvider({ defaultKms: 'local' }) },
    }),
    new DIDResolverPlugin({
      resolver: new Resolver({ ...getDidKeyResolver(), peer: supplied, web: supplied, example: supplied }),
    }),
    didcomm,
  ],
});

let identity = null;

function needIdentity() {
  if (!identity) throw new Error('no identity: call init first');
  return identity;
}

// General JSON serialization of the flattened JWS Veramo writes.
function generalOf(flattened) {
  const f = JSON.parse(flattened);
  const sig = { protected: f.protected, signature: f.signature };
  if (f.header) sig.header = f.header;
  return JSON.stringify({ payload: f.payload, signatures: [sig] });
}

const ops = {
  async ping() {
    return { version: VERSION };
  },

  // init {privateKeyHex}: create the peer's did:key from an Ed25519 seed.
  async init(req) {
    if (identity) throw new Error('init called twice');
    if (!/^[0-9a-f]{64}$/.test(req.privateKeyHex || '')) throw new Error('privateKeyHex must be 32 bytes of lower-case hex');
    identity = await agent.didManagerCreate({
      provider: 'did:key',
      options: { keyType: 'Ed25519', privateKeyHex: req.privateKeyHex },
    });
    const { didDocument } = await agent.resolveDid({ didUrl: identity.did });
    return { did: identity.did, didDocument };
  },

  // pack {message, packing, options, docs}: packDIDCommMessage. For packing
  // "jws" the result also holds "general", the same signature in General
  // JSON serialization (Veramo writes the Flattened one).
  async pack(req) {
    rememberDocs(req.docs);
    const packed = await agent.packDIDCommMessage({
      message: req.message,
      packing: req.packing,
      options: req.options,
    });
    const out = { message: packed.message };
    if (req.packing === 'jws') out.general = generalOf(packed.message);
    return out;
  },

  // send {message, packing, options, docs}: pack for message.to[0] and send
  // it as Veramo does (sendDIDCommMessage): wrapped in a forward for each
  // routing key of the recipient's DIDComm service, anoncrypted to the key.
  // Returns the packed message before wrapping ("inner") and what the
  // transport was given ("sent": [{endpoint, message}]).
  async send(req) {
    rememberDocs(req.docs);
    needIdentity();
    const to = req.message.to?.[0];
    if (!to) throw new Error('message has no to');
    const packed = await agent.packDIDCommMessage({
      message: req.message,
      packing: req.packing || 'anoncrypt',
      options: req.options,
    });
    const inner = packed.message;
    capture.sent = [];
    await agent.sendDIDCommMessage({ packedMessage: packed, recipientDidUrl: to, messageId: req.message.id });
    const sent = capture.sent;
    capture.sent = [];
    return { inner, sent };
  },

  // unpack {message, docs}: unpackDIDCommMessage as the peer's identity.
  async unpack(req) {
    rememberDocs(req.docs);
    needIdentity();
    const { message, metaData } = await agent.unpackDIDCommMessage({ message: req.message });
    return { message, metaData };
  },
};

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let queue = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      process.stdout.write(JSON.stringify({ id: null, ok: false, error: `request is not JSON: ${e.message}` }) + '\n');
      return;
    }
    const op = ops[req.op];
    let resp;
    if (!op) {
      resp = { id: req.id, ok: false, error: `unknown op ${JSON.stringify(req.op)}` };
    } else {
      try {
        resp = { id: req.id, ok: true, result: await op(req) };
      } catch (e) {
        resp = { id: req.id, ok: false, error: String(e?.message || e) };
      }
    }
    process.stdout.write(JSON.stringify(resp) + '\n');
  });
});
rl.on('close', () => {
  queue.then(() => process.exit(0));
});
