// AnonCreds oracle for agentd's Go tests: anoncreds-rs compiled to
// WebAssembly, as shipped inside @hyperledger/identus-sdk 7.0.0, driven with
// line-delimited JSON over stdin/stdout (internal/nodepeer protocol: each
// request {id, op, ...} gets one response {id, ok, result | error}).
//
// ops:
//   ping                                   -> {version}
//   setup {schema, credDef, credDefPrivate, keyCorrectnessProof, schemaId, credDefId}
//                                          -> {linkSecret}   (the test issuer, reused: no safe-prime
//                                             generation; the holder's fresh link secret, a test secret)
//   nonce                                  -> {nonce}
//   issue {values}                         -> {handle, credential, ms}   (offer, request, issue, process)
//   offer                                  -> {offer}        (for a holder outside the oracle)
//   issueFor {offer, request, values}      -> {credential, ms}  (signs another holder's request)
//   present {handle, request}              -> {presentation, ms}
//   verify {presentation, request}         -> {valid, ms}    (ms: Verifier.verifyPresentation only)
// Holder side, for an issuer outside the oracle (setup not needed):
//   request {credDef, offer, entropy?}     -> {handle, request}   (createCredentialRequest: checks the
//                                             offer's key correctness proof; the oracle holder's link secret)
//   process {handle, credential, credDef}  -> {credential}    (processCredential: checks the signature
//                                             correctness proof; the handle then serves present)
// present and verify take optional {schemas, credDefs} (id -> JSON) instead of the setup issuer's.
// The WASM build exports no revocation and presents one credential per presentation.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

globalThis.self = globalThis; // getrandom in the WASM looks for self.crypto under ESM

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.join(here, 'node_modules', '@hyperledger', 'identus-sdk');
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
// File names carry the 7.0.0 build's content hashes.
const build = (f) => pathToFileURL(path.join(pkgDir, 'build', f)).href;
const { f: wasmBytes } = await import(build('chunk-ZFGLI7DO.mjs'));
const A = await import(build('anoncreds_wasm-QTNYDWO5.mjs'));
A.initSync({ module: wasmBytes });

let issuer = null;
const holder = { linkSecret: null };
const creds = new Map();
let nextHandle = 1;

function need() {
  if (!issuer) throw new Error('setup first');
}

function linkSecret() {
  if (!holder.linkSecret) holder.linkSecret = A.Prover.createLinkSecret();
  return holder.linkSecret;
}

// The schemas and credential definitions of a present or verify request:
// its own, or the setup issuer's.
function registry(req) {
  if (req.schemas || req.credDefs) return { schemas: req.schemas || {}, credDefs: req.credDefs || {} };
  need();
  return { schemas: { [issuer.schemaId]: issuer.schemaJSON }, credDefs: { [issuer.credDefId]: issuer.credDefJSON } };
}

const pending = new Map(); // handle -> request metadata

const ops = {
  ping: () => ({ version }),
  setup: (req) => {
    issuer = {
      schemaId: req.schemaId,
      credDefId: req.credDefId,
      schemaJSON: req.schema,
      credDefJSON: req.credDef,
      credDef: A.CredentialDefinition.from(req.credDef),
      credDefPrivate: A.CredentialDefinitionPrivate.from(req.credDefPrivate),
      kcp: req.keyCorrectnessProof,
    };
    holder.linkSecret = A.Prover.createLinkSecret();
    // A test secret: returned so that the Go holder can present the
    // oracle's credentials.
    return { linkSecret: holder.linkSecret.toString() };
  },
  nonce: () => ({ nonce: A.Verifier.createNonce() }),
  issue: (req) => {
    need();
    const t = performance.now();
    const offer = A.Issuer.createCredentialOffer(issuer.schemaId, issuer.credDefId,
      A.CredentialKeyCorrectnessProof.from(issuer.kcp));
    const rr = A.Prover.createCredentialRequest(issuer.credDef, holder.linkSecret, 'agentd-oracle', offer);
    const cred = A.Issuer.createCredential(issuer.credDef, issuer.credDefPrivate, offer, rr.request, req.values);
    const processed = A.Prover.processCredential(cred, rr.metadata, holder.linkSecret, issuer.credDef);
    const handle = String(nextHandle++);
    creds.set(handle, processed);
    return { handle, credential: processed.toJSON(), ms: performance.now() - t };
  },
  offer: () => {
    need();
    const offer = A.Issuer.createCredentialOffer(issuer.schemaId, issuer.credDefId,
      A.CredentialKeyCorrectnessProof.from(issuer.kcp));
    return { offer: offer.toJSON() };
  },
  issueFor: (req) => {
    need();
    const t = performance.now();
    const cred = A.Issuer.createCredential(issuer.credDef, issuer.credDefPrivate, A.CredentialOffer.from(req.offer),
      A.CredentialRequest.from(req.request), req.values);
    return { credential: cred.toJSON(), ms: performance.now() - t };
  },
  request: (req) => {
    const rr = A.Prover.createCredentialRequest(A.CredentialDefinition.from(req.credDef), linkSecret(),
      req.entropy || 'agentd-oracle', A.CredentialOffer.from(req.offer));
    const handle = String(nextHandle++);
    pending.set(handle, rr.metadata);
    return { handle, request: rr.request.toJSON() };
  },
  process: (req) => {
    const meta = pending.get(req.handle);
    if (!meta) throw new Error('unknown request handle');
    const processed = A.Prover.processCredential(A.Credential.from(req.credential), meta, linkSecret(),
      A.CredentialDefinition.from(req.credDef));
    pending.delete(req.handle);
    creds.set(req.handle, processed);
    return { credential: processed.toJSON() };
  },
  present: (req) => {
    const cred = creds.get(req.handle);
    if (!cred) throw new Error('unknown credential handle');
    const reg = registry(req);
    const t = performance.now();
    const pres = A.Prover.createPresentation(A.PresentationRequest.from(req.request), cred, linkSecret(),
      reg.schemas, reg.credDefs);
    const ms = performance.now() - t;
    return { presentation: pres.toJSON(), ms };
  },
  verify: (req) => {
    const reg = registry(req);
    const pres = A.Presentation.from(req.presentation);
    const pr = A.PresentationRequest.from(req.request);
    const t = performance.now();
    let valid;
    try {
      valid = A.Verifier.verifyPresentation(pres, pr, reg.schemas, reg.credDefs);
    } catch (e) {
      valid = false;
    }
    return { valid, ms: performance.now() - t };
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
