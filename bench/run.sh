#!/usr/bin/env bash
# Side-by-side benchmark of our vde_switch against the Debian C vde_switch.
#
#   bench/run.sh [--frames N] [--rounds R] [--sizes 64,1500] [--json FILE]
#                [--sink-single] [--source-batch B] [--pin] [-v]
#
# Builds our release binary, compiles bench/vdeperf.c against libvdeplug,
# then runs bench/switchbench.py (python3, standard library only), which
# alternates C and ours for every round and prints the table.
# Only unix sockets are used: no network traffic.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
c_switch=${C_VDE_SWITCH:-/usr/bin/vde_switch}

TMP=$(mktemp -d /tmp/vde-bench.XXXX)
cleanup() {
	# Process groups the driver started (normally already gone).
	if [[ -f $TMP/pgids ]]; then
		while read -r pg; do
			kill -KILL -- "-$pg" 2>/dev/null || true
		done <"$TMP/pgids"
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ -x $c_switch ]] || { echo "C vde_switch not found at $c_switch (package vde2)" >&2; exit 1; }

echo "== building our vde_switch (release)" >&2
(cd "$root" && cargo build --release --bin vde_switch) >&2
echo "== compiling vdeperf" >&2
cc -O2 -Wall -o "$TMP/vdeperf" "$here/vdeperf.c" -lvdeplug

python3 "$here/switchbench.py" --vdeperf "$TMP/vdeperf" \
	--ours "$root/target/release/vde_switch" --c-switch "$c_switch" \
	--pgid-file "$TMP/pgids" "$@"
