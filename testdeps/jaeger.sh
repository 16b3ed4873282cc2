#!/usr/bin/env bash
# Builds the real Jaeger (v2, an OpenTelemetry Collector distribution) that
# the end-to-end telemetry test sends traces to and queries, once per machine,
# into the knhk cache, and prints its path. Idempotent: does nothing when the
# binary is already there. The tool module in jaeger/ pins the version; it has
# its own go.mod, so it stays out of the root module's ./... and the build
# never touches the root module's dependencies.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version=v1.76.0
dir="${KNHK_CACHE:-$HOME/.cache/knhk}/jaeger-$version"
bin="$dir/jaeger"

if [[ ! -x "$bin" ]]; then
	mkdir -p "$dir"
	echo "building Jaeger $version test server into $bin (first time only: several minutes)" >&2
	tmp="$(mktemp "$dir/jaeger.tmp.XXXXXX")"
	trap 'rm -f "$tmp"' EXIT
	(cd "$here/jaeger" && go build -ldflags="-s -w" -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
	chmod 0755 "$tmp"
	mv -f "$tmp" "$bin"
	trap - EXIT
fi
echo "$bin"
