#!/usr/bin/env node
// peer.mjs: an iden3 world for agentd's Go tests (see internal/iden3wallet),
// driven over stdin/stdout.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on
// stdout, in request order: {"id": N, "op": "...", ...} is answered with
// {"id": N, "ok": true, "result": {...}} or {"id": N, "ok": false,
// "error": "..."}. stdout carries protocol lines only; console output goes to
// stderr. The process exits at EOF on stdin and stops its anvil with it.
// The ops are described in README.md.
//
// Everything is real and offline: anvil (npm @foundry-rs/anvil-linux-amd64)
// runs the iden3 State contract of @iden3/contracts behind an OpenZeppelin
// ERC1967Proxy; the issuer and the holder are @0xpolygonid/js-sdk identity
// wallets; proofs are made with the circuit files of @rarimo/zkp-gen-iden3
// (installed outside the work tree; setup's circuits_dir, or the
// IDEN3_CIRCUITS_DIR environment variable); JSON-LD documents come from
// ./schemas only; @iden3/js-iden3-auth is the second verifier.

import readline from 'node:readline';
import { readFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const toStderr = (...args) => process.stderr.write(args.map((a) => (a instanceof Error ? a.stack : typeof a === 'object' ? safeJSON(a) : String(a))).join(' ') + '\n');
function safeJSON(v) {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  } catch {
    return String(v);
  }
}
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.warn = toStderr;
console.error = toStderr;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const ethers = await import('ethers');
const sdk = await import('@0xpolygonid/js-sdk');
const core = await import('@iden3/js-iden3-core');
const { poseidonContract } = require('circomlibjs');
const jsAuth = await import('@iden3/js-iden3-auth');

const {
  BjjProvider, Sec256k1Provider, KMS, KmsKeyType, InMemoryPrivateKeyStore, InMemoryDataSource,
  InMemoryMerkleTreeStorage, CredentialStorage, IdentityStorage, EthStateStorage, CredentialWallet,
  IdentityWallet, CredentialStatusResolverRegistry, CredentialStatusType, FSCircuitStorage, ProofService,
  PackageManager, DefaultZKPPacker, PlainPacker, AuthHandler, W3CCredential, defaultEthConnectionConfig,
  VerifiableConstants,
} = sdk;

const pkgVersion = (name) => JSON.parse(readFileSync(path.join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
const VERSIONS = {
  'js-sdk': pkgVersion('@0xpolygonid/js-sdk'),
  'js-iden3-auth': pkgVersion('@iden3/js-iden3-auth'),
  contracts: pkgVersion('@iden3/contracts'),
  anvil: pkgVersion('@foundry-rs/anvil-linux-amd64'),
};

// ---- constants shared with the Go driver (internal/iden3wallet) ----------

// The DID network: polygonid:polygon:amoy, as registered in js-iden3-core and
// go-iden3-core (id type 0x0213); the local chain runs with amoy's chain id so
// no registration is needed on either side.
const DID_METHOD = core.DidMethod.PolygonId;
const BLOCKCHAIN = core.Blockchain.Polygon;
const NETWORK = core.NetworkId.Amoy;
const DEFAULT_ID_TYPE = '0x0213';
const DEFAULT_CHAIN_ID = 80002;
const MTP_CIRCUITS = new Set(['credentialAtomicQueryMTPV2', 'credentialAtomicQueryMTPV2OnChain']);

// anvil's default accounts 0 (deployer, State owner) and 1 (the issuer's
// Ethereum key: an Ethereum-controlled identity publishes its own state).
const DEPLOYER_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ISSUER_ETH_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

const SCHEMA_JSON_URL = 'https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json/KYCAgeCredential-v3.json';
const SCHEMA_LD_URL = 'https://raw.githubusercontent.com/iden3/claim-schema-vocab/main/schemas/json-ld/kyc-v3.json-ld';
const SCHEMA_TYPE = 'KYCAgeCredential';
// Never fetched: the harness resolves revocation status from the issuer's
// trees (see statusResolver).
const REVOCATION_URL = 'http://127.0.0.1:1/iden3-harness/revocation';

// ---- documents: local files only ------------------------------------------

const schemaIndex = JSON.parse(readFileSync(path.join(HERE, 'schemas', 'index.json'), 'utf8'));
const documents = new Map();
for (const [url, file] of Object.entries(schemaIndex)) {
  documents.set(url, JSON.parse(readFileSync(path.join(HERE, 'schemas', file), 'utf8')));
}
// documentLoader serves the committed files and refuses everything else, so
// nothing in the harness reaches the network.
const documentLoader = async (url) => {
  const key = String(url);
  const doc = documents.get(key) ?? documents.get(key.replace(/#.*$/, ''));
  if (!doc) throw new Error(`document ${key} is not in interop/iden3/schemas (the harness is offline)`);
  return { contextUrl: null, documentUrl: key, document: structuredClone(doc) };
};

// ---- circuits ---------------------------------------------------------------

function circuitsDir(given) {
  const dir = given || process.env.IDEN3_CIRCUITS_DIR;
  if (!dir) throw new Error('no circuits_dir given and IDEN3_CIRCUITS_DIR is not set (run make deps)');
  for (const c of ['authV2', 'credentialAtomicQuerySigV2', 'credentialAtomicQueryMTPV2']) {
    for (const f of ['circuit.wasm', 'circuit_final.zkey', 'verification_key.json']) {
      if (!existsSync(path.join(dir, c, f))) throw new Error(`${path.join(dir, c, f)} is missing (run make deps)`);
    }
  }
  return dir;
}

// ---- chain ------------------------------------------------------------------

let anvil = null; // the child process
let chain = null; // {rpc_url, state_contract, chain_id}
let provider = null;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitRPC(url, proc, ms) {
  const deadline = Date.now() + ms;
  let lastErr;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`anvil exited with ${proc.exitCode}`);
    try {
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      });
      if (r.ok) return;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`anvil did not answer on ${url}: ${lastErr}`);
}

function artifact(pkg, name) {
  return JSON.parse(readFileSync(path.join(HERE, 'node_modules', pkg, 'build', 'contracts', `${name}.json`), 'utf8'));
}

// link replaces the library placeholders of a Hardhat artifact's bytecode.
function link(art, libs) {
  let code = art.bytecode.slice(2);
  for (const [, names] of Object.entries(art.linkReferences || {})) {
    for (const [lib, refs] of Object.entries(names)) {
      const addr = libs[lib];
      if (!addr) throw new Error(`${art.contractName}: library ${lib} not deployed`);
      for (const { start, length } of refs) {
        code = code.slice(0, start * 2) + addr.slice(2).toLowerCase() + code.slice((start + length) * 2);
      }
    }
  }
  return '0x' + code;
}

async function deploy(signer, abi, bytecode, ...args) {
  const f = new ethers.ContractFactory(abi, bytecode, signer);
  const c = await f.deploy(...args);
  await c.waitForDeployment();
  return c;
}

async function startChain({ chain_id: chainId = DEFAULT_CHAIN_ID } = {}) {
  if (anvil) throw new Error('the chain is already running');
  const bin = path.join(HERE, 'node_modules', '@foundry-rs', 'anvil-linux-amd64', 'bin', 'anvil');
  const port = await freePort();
  const proc = spawn(bin, ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--silent'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr.on('data', (d) => process.stderr.write(`anvil: ${d}`));
  anvil = proc;
  const url = `http://127.0.0.1:${port}`;
  await waitRPC(url, proc, 15000);
  provider = new ethers.JsonRpcProvider(url, chainId, { staticNetwork: true, pollingInterval: 100 });
  const deployer = new ethers.NonceManager(new ethers.Wallet(DEPLOYER_KEY, provider));

  const libs = {};
  for (const n of [1, 2, 3]) {
    const c = await deploy(deployer, poseidonContract.generateABI(n), poseidonContract.createCode(n));
    libs[`PoseidonUnit${n}L`] = await c.getAddress();
  }
  const smtLib = artifact('@iden3/contracts', 'SmtLib');
  libs.SmtLib = await (await deploy(deployer, smtLib.abi, link(smtLib, libs))).getAddress();
  const stateLib = artifact('@iden3/contracts', 'StateLib');
  libs.StateLib = await (await deploy(deployer, stateLib.abi, link(stateLib, libs))).getAddress();
  const verifierArt = artifact('@iden3/contracts', 'Groth16VerifierStateTransition');
  const verifier = await deploy(deployer, verifierArt.abi, verifierArt.bytecode);
  const stateArt = artifact('@iden3/contracts', 'State');
  const impl = await deploy(deployer, stateArt.abi, link(stateArt, libs));
  const proxyArt = artifact('@openzeppelin/contracts', 'ERC1967Proxy');
  const iface = new ethers.Interface(stateArt.abi);
  const owner = await deployer.getAddress();
  const init = iface.encodeFunctionData('initialize', [await verifier.getAddress(), DEFAULT_ID_TYPE, owner, ethers.ZeroAddress]);
  const proxy = await deploy(deployer, proxyArt.abi, proxyArt.bytecode, await impl.getAddress(), init);
  const stateAddr = await proxy.getAddress();
  const state = new ethers.Contract(stateAddr, stateArt.abi, provider);
  const idType = await state.getDefaultIdType();
  if (idType !== DEFAULT_ID_TYPE) throw new Error(`State default id type ${idType}, want ${DEFAULT_ID_TYPE}`);
  chain = { rpc_url: url, state_contract: stateAddr, chain_id: chainId };
  return chain;
}

// stopChain ends anvil; the promise resolves once it has exited (reaped),
// after SIGKILL if SIGTERM was not enough within 3 s.
function stopChain() {
  const proc = anvil;
  anvil = null;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

// ---- wallets ----------------------------------------------------------------

let world = null; // {issuer, holder, ...} once setup ran

// published[did] is the issuer tree state last published on chain: the
// revocation status the holder gets is computed against it, as an issuer node
// or reverse hash service would serve it.
const published = new Map();

function makeWallet(stateStorage, statusResolver) {
  const keyStore = new InMemoryPrivateKeyStore();
  const kms = new KMS();
  kms.registerKeyProvider(KmsKeyType.BabyJubJub, new BjjProvider(KmsKeyType.BabyJubJub, keyStore));
  kms.registerKeyProvider(KmsKeyType.Secp256k1, new Sec256k1Provider(KmsKeyType.Secp256k1, keyStore));
  const dataStorage = {
    credential: new CredentialStorage(new InMemoryDataSource()),
    identity: new IdentityStorage(new InMemoryDataSource(), new InMemoryDataSource()),
    mt: new InMemoryMerkleTreeStorage(40),
    states: stateStorage,
  };
  const registry = new CredentialStatusResolverRegistry();
  registry.register(CredentialStatusType.SparseMerkleTreeProof, statusResolver);
  const credWallet = new CredentialWallet(dataStorage, registry);
  const idWallet = new IdentityWallet(kms, dataStorage, credWallet);
  return { kms, dataStorage, credWallet, idWallet };
}

async function setup({ circuits_dir: given } = {}) {
  if (!chain) throw new Error('start the chain first (op chain)');
  if (world) throw new Error('setup already ran');
  const dir = circuitsDir(given);
  const ethConfig = {
    ...defaultEthConnectionConfig,
    url: chain.rpc_url,
    contractAddress: chain.state_contract,
    chainId: chain.chain_id,
  };
  // Each wallet reads the chain through its own EthStateStorage; caches off so
  // a published state is seen at once.
  const stateStorage = () => new EthStateStorage(ethConfig, { disableCache: true });

  let issuer;
  // The holder resolves the issuer's revocation status from the issuer's
  // trees at the last published state (no RHS, no HTTP).
  const statusResolver = {
    async resolve(credentialStatus, opts) {
      const did = opts?.issuerDID?.string?.() ?? String(opts?.issuerDID);
      const ts = published.get(did);
      if (!issuer || !ts) throw new Error(`no published state for issuer ${did}`);
      const { proof, treeState } = await issuer.idWallet.generateNonRevocationMtpWithNonce(
        opts.issuerDID,
        BigInt(credentialStatus.revocationNonce),
        ts,
      );
      return {
        mtp: proof,
        issuer: {
          state: treeState.state.hex(),
          claimsTreeRoot: treeState.claimsRoot.hex(),
          revocationTreeRoot: treeState.revocationRoot.hex(),
          rootOfRoots: treeState.rootOfRoots.hex(),
        },
      };
    },
  };

  issuer = makeWallet(stateStorage(), statusResolver);
  const holder = makeWallet(stateStorage(), statusResolver);

  const issuerSigner = new ethers.NonceManager(new ethers.Wallet(ISSUER_ETH_KEY, provider));
  const { did: issuerDID } = await issuer.idWallet.createEthereumBasedIdentity({
    method: DID_METHOD,
    blockchain: BLOCKCHAIN,
    networkId: NETWORK,
    seed: ethers.getBytes(ISSUER_ETH_KEY),
    revocationOpts: { type: CredentialStatusType.SparseMerkleTreeProof, id: REVOCATION_URL },
    ethSigner: issuerSigner,
    createBjjCredential: true,
  });
  published.set(issuerDID.string(), await treeState(issuer.idWallet, issuerDID));

  const { did: holderDID } = await holder.idWallet.createIdentity({
    method: DID_METHOD,
    blockchain: BLOCKCHAIN,
    networkId: NETWORK,
    revocationOpts: { type: CredentialStatusType.SparseMerkleTreeProof, id: REVOCATION_URL },
  });

  const circuitStorage = new FSCircuitStorage({ dirname: dir });
  const proofService = new ProofService(holder.idWallet, holder.credWallet, circuitStorage, holder.dataStorage.states, {
    documentLoader,
  });
  // js-sdk 1.45.0 takes the first credential that matches a V2 query, even
  // one without the proof the circuit needs (an MTPV2 request answered with a
  // signature-only credential fails in the witness). Wallets in the field
  // pick by proof type; so does the harness: for an MTP circuit, only
  // credentials carrying an Iden3SparseMerkleTreeProof are candidates.
  const generateProof = proofService.generateProof.bind(proofService);
  proofService.generateProof = async (proofReq, identifier, opts = {}) => {
    if (!opts.credential && MTP_CIRCUITS.has(proofReq.circuitId) && proofReq.query) {
      const creds = (await holder.idWallet.findOwnedCredentialsByDID(identifier, proofReq.query)).filter(
        (c) => !!c.getIden3SparseMerkleTreeProof(),
      );
      if (!creds.length) {
        // js-sdk's own message, so that an optional scope is skipped.
        throw new Error(`${VerifiableConstants.ERRORS.PROOF_SERVICE_NO_CREDENTIAL_FOR_QUERY}: none with an Iden3SparseMerkleTreeProof (scope ${proofReq.id})`);
      }
      if (proofReq.query.skipClaimRevocationCheck) {
        opts = { ...opts, credential: creds[0] };
      } else {
        const { cred, revStatus } = await holder.credWallet.findNonRevokedCredential(creds);
        opts = { ...opts, credential: cred, credentialRevocationStatus: revStatus };
      }
    }
    return generateProof(proofReq, identifier, opts);
  };
  const packageMgr = new PackageManager();
  packageMgr.registerPackers([new DefaultZKPPacker(circuitStorage, proofService), new PlainPacker()]);
  const authHandler = new AuthHandler(packageMgr, proofService);

  world = { issuer, holder, issuerDID, holderDID, issuerSigner, authHandler, circuitsDir: dir, pendingMTP: [] };
  const st = published.get(issuerDID.string());
  return {
    issuer_did: issuerDID.string(),
    holder_did: holderDID.string(),
    issuer_state: st.state.bigInt().toString(),
  };
}

async function treeState(idWallet, did) {
  const m = await idWallet.getDIDTreeModel(did);
  return {
    state: m.state,
    claimsRoot: await m.claimsTree.root(),
    revocationRoot: await m.revocationTree.root(),
    rootOfRoots: await m.rootsTree.root(),
  };
}

function needWorld() {
  if (!world) throw new Error('run setup first');
  return world;
}

// issue makes a KYCAgeCredential for the holder.
//   kind "sig": a BJJSignature2021 proof only.
//   kind "mtp": the claim is also added to the issuer's claims tree and the
//     credential carries an Iden3SparseMerkleTreeProof against the issuer's
//     new state at once, though that state is not on chain until
//     publish_issuer_state (an MTP that is "not ready": verifiers refuse it).
//   kind "mtp-on-publish": the claim is added to the tree, but the holder
//     gets the signature-only credential now and the
//     Iden3SparseMerkleTreeProof when the issuer publishes, as from an issuer
//     node; until then the wallet can only answer with a signature proof.
const KINDS = new Set(['sig', 'mtp', 'mtp-on-publish']);
async function issue({ kind = 'sig', birthday = 19960424, document_type: documentType = 99 } = {}) {
  const w = needWorld();
  if (!KINDS.has(kind)) throw new Error(`kind ${kind}: want one of ${[...KINDS].join(', ')}`);
  const req = {
    credentialSchema: SCHEMA_JSON_URL,
    type: SCHEMA_TYPE,
    credentialSubject: { id: w.holderDID.string(), birthday, documentType },
    expiration: Math.floor(Date.now() / 1000) + 365 * 24 * 3600,
    revocationOpts: { type: CredentialStatusType.SparseMerkleTreeProof, id: REVOCATION_URL },
  };
  let cred = await w.issuer.idWallet.issueCredential(w.issuerDID, req, { documentLoader });
  let issuerState = null;
  if (kind !== 'sig') {
    const res = await w.issuer.idWallet.addCredentialsToMerkleTree([cred], w.issuerDID);
    await w.issuer.idWallet.updateIdentityState(w.issuerDID, false);
    issuerState = res.newTreeState.state.bigInt().toString();
    if (kind === 'mtp') {
      [cred] = await w.issuer.idWallet.generateIden3SparseMerkleTreeProof(
        w.issuerDID, res.credentials, undefined, undefined, undefined, undefined, { merklizeOpts: { documentLoader } },
      );
    } else {
      w.pendingMTP.push(cred.id);
    }
  }
  await w.issuer.credWallet.save(cred);
  const held = await deliver(cred);
  return { credential_id: held.id, kind, credential: JSON.parse(JSON.stringify(held)), issuer_state: issuerState };
}

// deliver gives the holder its own copy of cred, as over the wire (replacing
// an older copy with the same id).
async function deliver(cred) {
  const held = W3CCredential.fromJSON(JSON.parse(JSON.stringify(cred)));
  await needWorld().holder.credWallet.save(held);
  return held;
}

// publishIssuerState publishes the issuer's current tree state with
// transitStateGeneric from the issuer's Ethereum account, then hands the
// holder the MTP proofs of the "mtp-on-publish" credentials.
async function publishIssuerState() {
  const w = needWorld();
  const did = w.issuerDID;
  const old = published.get(did.string());
  const now = await treeState(w.issuer.idWallet, did);
  if (now.state.bigInt() === old.state.bigInt()) {
    return { state: now.state.bigInt().toString(), tx: null, changed: false, updated_credentials: [] };
  }
  const tx = await w.issuer.idWallet.transitState(did, old, false, w.issuerSigner);
  published.set(did.string(), now);
  const receipt = await provider.getTransactionReceipt(tx);
  const block = receipt ? await provider.getBlock(receipt.blockNumber) : null;
  const updated = [];
  for (const id of w.pendingMTP.splice(0)) {
    const cred = await w.issuer.credWallet.findById(id);
    if (!cred) throw new Error(`issuer lost credential ${id}`);
    const [withMTP] = await w.issuer.idWallet.generateIden3SparseMerkleTreeProof(
      did, [cred], tx, receipt?.blockNumber, block?.timestamp, now, { merklizeOpts: { documentLoader } },
    );
    await w.issuer.credWallet.save(withMTP);
    await deliver(withMTP);
    updated.push(id);
  }
  return { state: now.state.bigInt().toString(), tx, changed: true, updated_credentials: updated };
}

// ---- answering a request ------------------------------------------------------

function requestURLFrom(uri) {
  if (uri.startsWith('iden3comm://')) {
    const q = new URLSearchParams(uri.slice(uri.indexOf('?') + 1));
    const u = q.get('request_uri');
    if (!u) throw new Error(`${uri}: no request_uri`);
    return u;
  }
  return uri;
}

async function answer({ request_uri: requestURI, request_json: requestJSON, post = true } = {}) {
  const w = needWorld();
  let raw;
  if (requestJSON !== undefined && requestJSON !== null) {
    raw = typeof requestJSON === 'string' ? requestJSON : JSON.stringify(requestJSON);
  } else if (requestURI) {
    if (requestURI.startsWith('iden3comm://') && requestURI.includes('i_m=')) {
      const q = new URLSearchParams(requestURI.slice(requestURI.indexOf('?') + 1));
      raw = Buffer.from(q.get('i_m'), 'base64').toString('utf8');
    } else {
      const url = requestURLFrom(requestURI);
      const r = await fetch(url);
      if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${await r.text()}`);
      raw = await r.text();
    }
  } else {
    throw new Error('answer needs request_uri or request_json');
  }
  const started = Date.now();
  const { token, authRequest, authResponse } = await w.authHandler.handleAuthorizationRequest(
    w.holderDID,
    new TextEncoder().encode(raw),
  );
  const proveMs = Date.now() - started;
  const result = {
    token,
    request: JSON.parse(raw),
    response: authResponse,
    prove_ms: proveMs,
    status: 0,
    body: '',
  };
  if (post) {
    const cb = authRequest.body?.callbackUrl;
    if (!cb) throw new Error('the request has no body.callbackUrl');
    const r = await fetch(cb, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: token });
    result.status = r.status;
    result.body = await r.text();
  }
  return result;
}

// ---- second verifier ------------------------------------------------------------

async function verify({ token, request, rpc_url: rpcURL, state_contract: stateContract, accepted_state_transition_delay_ms: delay }) {
  const url = rpcURL ?? chain?.rpc_url;
  const addr = stateContract ?? chain?.state_contract;
  if (!url || !addr) throw new Error('verify needs rpc_url and state_contract');
  const req = typeof request === 'string' ? JSON.parse(request) : request;
  const resolver = new jsAuth.resolver.EthStateResolver(url, addr);
  const verifier = await jsAuth.auth.Verifier.newVerifier({
    stateResolver: { 'polygon:amoy': resolver },
    circuitsDir: path.join(HERE, 'node_modules', '@iden3', 'js-iden3-auth', 'circuits'),
    documentLoader,
  });
  try {
    const opts = delay ? { acceptedStateTransitionDelay: delay } : undefined;
    await verifier.fullVerify(token, req, opts);
    return { ok: true, error: '' };
  } catch (e) {
    return { ok: false, error: e?.message ?? String(e) };
  }
}

// ---- loop ---------------------------------------------------------------------------

const ops = {
  ping: async () => ({ versions: VERSIONS }),
  chain: startChain,
  setup,
  issue,
  publish_issuer_state: publishIssuerState,
  answer,
  verify,
};

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const queue = [];
let busy = false;

function write(obj) {
  process.stdout.write(safeJSON(obj) + '\n');
}

async function drain() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const line = queue.shift();
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      write({ id: null, ok: false, error: `bad request line: ${e.message}` });
      continue;
    }
    const fn = ops[req.op];
    if (!fn) {
      write({ id: req.id, ok: false, error: `unknown op ${req.op}` });
      continue;
    }
    try {
      const result = await fn(req);
      write({ id: req.id, ok: true, result });
    } catch (e) {
      toStderr(e);
      write({ id: req.id, ok: false, error: e?.message ?? String(e) });
    }
  }
  busy = false;
}

rl.on('line', (line) => {
  if (!line.trim()) return;
  queue.push(line);
  drain();
});
rl.on('close', async () => {
  while (busy || queue.length) await new Promise((r) => setTimeout(r, 20));
  await stopChain();
  process.exit(0);
});
// Last resort when the process ends otherwise: signal anvil (not reaped).
process.on('exit', () => {
  if (anvil && anvil.exitCode === null) anvil.kill('SIGKILL');
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => {
    await stopChain();
    process.exit(1);
  });
}
