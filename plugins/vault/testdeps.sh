#!/usr/bin/env bash
# Builds the real Vault server the vault plugin's tests run against, once per
# machine, into the knhk cache, and prints its path. Idempotent: does nothing
# when the binary is already there. The tool module in testvault/ pins the
# version: v1.21.0 builds from the Go module proxy with the two replace lines
# Vault's own go.mod carries; later releases (v1.21.4) do not, because the
# sdk module they publish differs from the sdk in their source tree.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${KNHK_CACHE:-$HOME/.cache/knhk}/vault-v1.21.0"
bin="$dir/vault"

if [[ ! -x "$bin" ]]; then
	mkdir -p "$dir"
	echo "building Vault v1.21.0 test server into $bin (first time only: several minutes)" >&2
	tmp="$(mktemp "$dir/vault.tmp.XXXXXX")"
	trap 'rm -f "$tmp"' EXIT
	(cd "$here/testvault" && go build -ldflags="-s -w" -o "$tmp" github.com/hashicorp/vault)
	chmod 0755 "$tmp"
	mv -f "$tmp" "$bin"
	trap - EXIT
fi
echo "$bin"
