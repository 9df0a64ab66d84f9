#!/usr/bin/env node
// verify.mjs <cache dir>: checks the circuit files installed by install.sh.
// Every file listed in SHA256SUMS must be present with that digest, and every
// verification_key.json must equal, as JSON, @iden3/js-iden3-auth's copy
// (interop/iden3/node_modules). go-iden3-auth's embedded keys are compared by
// the Go test TestCircuitKeysMatchGoIden3Auth (internal/iden3wallet).
// Exits 1, naming every mismatch, when anything is wrong.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const cache = process.argv[2];
if (!cache) {
  console.error('usage: verify.mjs <cache dir>');
  process.exit(2);
}
const assets = path.join(cache, 'node_modules', '@rarimo', 'zkp-gen-iden3', 'assets');
const jsAuthKeys = path.join(here, '..', 'node_modules', '@iden3', 'js-iden3-auth', 'circuits');

const sha256 = (file) =>
  new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('error', reject).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex')));
  });

const problems = [];
const lines = readFileSync(path.join(here, 'SHA256SUMS'), 'utf8').split('\n').filter((l) => l.trim());
for (const line of lines) {
  const [want, rel] = line.split(/\s+/);
  const file = path.join(assets, rel);
  if (!existsSync(file)) {
    problems.push(`${rel}: missing`);
    continue;
  }
  const got = await sha256(file);
  if (got !== want) problems.push(`${rel}: sha256 ${got}, want ${want}`);
  if (rel.endsWith('/verification_key.json')) {
    const circuit = rel.split('/')[0];
    const ref = path.join(jsAuthKeys, circuit, 'verification_key.json');
    if (!existsSync(ref)) {
      problems.push(`${rel}: no reference key at ${ref} (install interop/iden3 first: make deps)`);
    } else if (!isDeepStrictEqual(JSON.parse(readFileSync(file, 'utf8')), JSON.parse(readFileSync(ref, 'utf8')))) {
      problems.push(`${rel}: differs from @iden3/js-iden3-auth's verification key`);
    }
  }
}
if (problems.length) {
  console.error(`iden3 circuit files in ${assets} are not the expected ones:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`iden3 circuit files verified: ${lines.length} files in ${assets}`);
