// keygen.mjs plays a Zenflows front end for agentd's user-account tests: it
// runs Zencode in Zenroom (npm zenroom, pinned in package.json) that
// creates a keyring and its public keys the way Zenflows' keygen does, and
// prints Zenroom's JSON output (keyring, pubkeys, ethereum_address) on
// stdout, exactly as Zenroom wrote it.
import { zencode_exec } from "zenroom";

const script = `
Scenario 'ecdh': keys
Scenario 'ethereum': keys
Scenario 'schnorr': keys
Scenario 'reflow': keys
Scenario 'eddsa': keys

Given nothing
When I create the ecdh key
When I create the reflow key
When I create the schnorr key
When I create the ethereum key
When I create the eddsa key

When I create the 'base64 dictionary' named 'pubkeys'
When I create the ecdh public key
and I move 'ecdh public key' in 'pubkeys'
When I create the reflow public key
and I move 'reflow public key' in 'pubkeys'
When I create the schnorr public key
and I move 'schnorr public key' in 'pubkeys'
When I create the eddsa public key
and I move 'eddsa public key' in 'pubkeys'
When I create the ethereum address

Then print the 'keyring'
and print the 'pubkeys'
and print the 'ethereum address'
`;

try {
  const { result } = await zencode_exec(script, {});
  process.stdout.write(result.trim() + "\n");
} catch (e) {
  process.stderr.write("zenroom failed: " + (e && e.logs ? e.logs : String(e)) + "\n");
  process.exit(1);
}
