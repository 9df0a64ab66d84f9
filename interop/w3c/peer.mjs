// W3C credentials peer for agentd's Go tests (internal/w3cpeer): DIF
// Presentation Exchange by @sphereon/pex 4.1.0, JWT VCs and VPs by
// did-jwt-vc 4.0.16 over did-jwt 9.0.1 with did:key (key-did-resolver
// 4.0.0), driven with line-delimited JSON over stdin/stdout
// (internal/nodepeer protocol: each request {id, op, ...} gets one
// response {id, ok, result | error}).
//
// ops:
//   ping                                        -> {pex, didJwtVc}     (installed versions)
//   pexEvaluateCredentials {definition, credentials: [raw]}
//                                               -> {areRequiredCredentialsPresent, descriptors, errors}
//   pexEvaluatePresentation {definition, presentation: raw}
//                                               -> {areRequiredCredentialsPresent, errors}
//   verifyCredential {jwt}                      -> {issuer, subject}   (error when it does not verify)
//   verifyPresentation {jwt, challenge, domain} -> {holder, credentials}
//   issue {subject, claims, expired}            -> {jwt, issuer}       (a fresh Ed25519 did:key issuer)
//   present {credentials: [jwt], challenge, domain}
//                                               -> {jwt, holder}      (a fresh Ed25519 did:key holder)
import crypto from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { PEX } from '@sphereon/pex';
import { EdDSASigner, bytesToBase58, decodeJWT } from 'did-jwt';
import {
  createVerifiableCredentialJwt,
  createVerifiablePresentationJwt,
  verifyCredential,
  verifyPresentation,
} from 'did-jwt-vc';
import { Resolver } from 'did-resolver';
import { getResolver } from 'key-did-resolver';

const version = (p) => JSON.parse(fs.readFileSync(new URL(`./node_modules/${p}/package.json`, import.meta.url))).version;
const resolver = new Resolver(getResolver());
const pex = new PEX();

// newKeyDID makes an Ed25519 did:key with a did-jwt signer.
function newKeyDID() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = Buffer.from(jwk.x, 'base64url');
  const seed = Buffer.from(jwk.d, 'base64url');
  const mk = 'z' + bytesToBase58(Uint8Array.from([0xed, 0x01, ...pub]));
  const did = `did:key:${mk}`;
  void publicKey;
  return {
    did,
    signer: EdDSASigner(Uint8Array.from([...seed, ...pub])),
    alg: 'EdDSA',
    kid: `${did}#${mk}`,
  };
}

const evalSummary = (r) => ({
  areRequiredCredentialsPresent: r.areRequiredCredentialsPresent,
  descriptors: (r.value?.descriptor_map ?? []).map((d) => d.id),
  errors: (r.errors ?? []).map((e) => `${e.tag}: ${e.message}`),
});

const ops = {
  ping: () => ({ pex: version('@sphereon/pex'), didJwtVc: version('did-jwt-vc') }),
  pexEvaluateCredentials: (req) =>
    evalSummary(pex.evaluateCredentials(req.definition, req.credentials)),
  // pex 4.1 resolves every descriptor_map path against its wrapper of the
  // presentation, so it only reads the external form: each entry points at
  // the VP ("$", format jwt_vp or ldp_vp) with path_nested reaching the
  // credential inside it. The submission embedded in the presentation
  // (paths "$.verifiableCredential[i]", relative to the VP document, which
  // for a VP-JWT is its vp claim) is handed over in that equivalent form.
  pexEvaluatePresentation: (req) => {
    const opts = { generatePresentationSubmission: false };
    const jwt = typeof req.presentation === 'string';
    const sub = jwt
      ? decodeJWT(req.presentation).payload.vp?.presentation_submission
      : req.presentation.presentation_submission;
    if (sub) {
      opts.presentationSubmission = {
        ...sub,
        descriptor_map: sub.descriptor_map.map((d) => ({
          id: d.id,
          format: jwt ? 'jwt_vp' : 'ldp_vp',
          path: '$',
          path_nested: jwt ? { ...d, path: d.path.replace(/^\$\./, '$.vp.') } : d,
        })),
      };
    }
    return evalSummary(pex.evaluatePresentation(req.definition, req.presentation, opts));
  },
  verifyCredential: async (req) => {
    const r = await verifyCredential(req.jwt, resolver);
    return { issuer: r.issuer, subject: r.payload.sub ?? '' };
  },
  verifyPresentation: async (req) => {
    const r = await verifyPresentation(req.jwt, resolver, { challenge: req.challenge, domain: req.domain });
    return { holder: r.issuer, credentials: r.verifiablePresentation.verifiableCredential.length };
  },
  issue: async (req) => {
    const issuer = newKeyDID();
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      sub: req.subject,
      nbf: now - 60,
      jti: `urn:uuid:${crypto.randomUUID()}`,
      vc: {
        '@context': ['https://www.w3.org/2018/credentials/v1'],
        type: ['VerifiableCredential', 'InteropCredential'],
        credentialSubject: req.claims,
      },
    };
    if (req.expired) payload.exp = now - 30;
    const jwt = await createVerifiableCredentialJwt(payload, issuer, { kid: issuer.kid });
    return { jwt, issuer: issuer.did };
  },
  present: async (req) => {
    const holder = newKeyDID();
    const payload = {
      vp: {
        '@context': ['https://www.w3.org/2018/credentials/v1'],
        type: ['VerifiablePresentation'],
        verifiableCredential: req.credentials,
      },
    };
    const jwt = await createVerifiablePresentationJwt(payload, holder, {
      challenge: req.challenge,
      domain: req.domain,
      kid: holder.kid,
    });
    return { jwt, holder: holder.did };
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
