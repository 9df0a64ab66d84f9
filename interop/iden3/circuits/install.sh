#!/bin/sh
# install.sh: installs the iden3 circuit files (npm @rarimo/zkp-gen-iden3,
# about 200 MB packed, 410 MB installed) OUTSIDE the work tree, from the lock
# file committed next to this script, and verifies them (verify.mjs).
#
# Cache: $AGENTD_IDEN3_CIRCUITS_CACHE, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/agentd/iden3-circuits. When the cache was
# installed from the same package.json/package-lock.json/.npmrc and still
# verifies, nothing is downloaded. Run by `make deps`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${AGENTD_IDEN3_CIRCUITS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentd/iden3-circuits}
stamp="$cache/.agentd-installed"
want=$(cat "$here/package.json" "$here/package-lock.json" "$here/.npmrc" | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	if node "$here/verify.mjs" "$cache"; then
		exit 0
	fi
	echo "iden3 circuits: the cache in $cache does not verify; reinstalling" >&2
fi

echo "iden3 circuits: installing $(node -p "require('$here/package.json').dependencies['@rarimo/zkp-gen-iden3']") into $cache"
mkdir -p "$cache"
rm -f "$stamp"
cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$cache/"
# --prefix makes npm read $cache/.npmrc (legacy-peer-deps: the package's peer
# ranges conflict and are not needed for its files; ignore-scripts).
npm ci --prefix "$cache" --no-audit --no-fund
node "$here/verify.mjs" "$cache"
echo "$want" >"$stamp"
