#!/usr/bin/env bash
# knhk demo: sign and verify with the fake provider, end to end.
#
#   cmd/knhk-host/demo.sh BIN_DIR
#
# BIN_DIR holds knhk-host and plugins/knhk-plugin-fake (what `make build`
# writes to bin/). The script builds nothing. It creates a key in a
# throwaway state file, signs a message, verifies the signature, prints the
# public key, and removes everything it made.
set -euo pipefail

bin=${1:?usage: demo.sh BIN_DIR (the directory holding knhk-host and plugins/)}
knhk=$bin/knhk-host
[[ -x $knhk ]] || { echo "demo.sh: $knhk not found; run 'make build' first" >&2; exit 2; }
[[ -x $bin/plugins/knhk-plugin-fake ]] || { echo "demo.sh: $bin/plugins/knhk-plugin-fake not found; run 'make build' first" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

key="fake:demo?state=$work/keys.json"
knhk() { "$knhk" --plugin-dir "$bin/plugins" "$@"; }
# run shows a command as a user would type it (paths shortened).
run() { printf '\n$ %s\n' "$*" | sed "s|$work|\$TMP|g"; }

run knhk-host keys create --key "\"$key\"" --type ec-p256
knhk keys create --key "$key" --type ec-p256

printf 'hello from knhk\n' > "$work/message.txt"
run knhk-host sign --key "\"$key\"" --in "$work/message.txt" --out "$work/message.sig"
knhk sign --key "$key" --in "$work/message.txt" --out "$work/message.sig"
echo "signature ($(wc -c < "$work/message.sig") bytes, ASN.1 DER): $(base64 -w0 < "$work/message.sig")"

run knhk-host verify --key "\"$key\"" --in "$work/message.txt" --sig "$work/message.sig"
knhk verify --key "$key" --in "$work/message.txt" --sig "$work/message.sig"

run 'echo tampered | knhk-host verify' --key "\"$key\"" --sig "$work/message.sig"
if echo tampered | knhk verify --key "$key" --sig "$work/message.sig"; then
	echo "demo.sh: a tampered message verified" >&2
	exit 1
fi

run knhk-host pubkey --key "\"$key\""
knhk pubkey --key "$key"
