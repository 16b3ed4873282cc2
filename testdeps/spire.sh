#!/usr/bin/env bash
# Builds the real SPIRE server and agent that the end-to-end test of the
# SPIRE KeyManager plugin (plugins/spire) runs, once per machine, into the
# knhk cache, and prints the directory that holds them. Idempotent: does
# nothing when both binaries are already there. The tool module in spire/
# pins the version; it has its own go.mod, so it stays out of the root
# module's ./... and the build never touches the root module's dependencies.
# SPIRE links sqlite with cgo, so a C compiler must be on PATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version=v1.13.3
dir="${KNHK_CACHE:-$HOME/.cache/knhk}/spire-$version"

for cmd in spire-server spire-agent; do
	bin="$dir/$cmd"
	if [[ ! -x "$bin" ]]; then
		mkdir -p "$dir"
		echo "building SPIRE $version $cmd into $bin (first time only: several minutes)" >&2
		tmp="$(mktemp "$dir/$cmd.tmp.XXXXXX")"
		trap 'rm -f "$tmp"' EXIT
		(cd "$here/spire" && CGO_ENABLED=1 go build -ldflags="-s -w" -o "$tmp" "github.com/spiffe/spire/cmd/$cmd")
		chmod 0755 "$tmp"
		mv -f "$tmp" "$bin"
		trap - EXIT
	fi
done
echo "$dir"
