#!/usr/bin/env bash
# Switch-cable-switch benchmark: our vde_switch + vde_plug (+ dpipe) against
# the Debian C tools, for the stream cable (dpipe vde_plug A = vde_plug B)
# and for udp:// on 127.0.0.1.
#
#   bench/run-cables.sh [--rounds R] [--frames N] [--pings N] [--sizes 64,1500]
#                       [--cables stream,udp] [--ping-timeout-ms MS]
#                       [--c-dpipe-for-ours] [--no-build] [--json FILE] [-v]
#
# Builds our release binaries (vde_switch, vde_plug, and dpipe when the
# crate has it), copies them to a temporary directory so that a concurrent
# rebuild cannot swap them mid-run, compiles bench/vdeperf.c against
# libvdeplug, then runs bench/cablebench.py (python3, standard library only).
# Our stack uses our dpipe if target/release/dpipe exists after the build,
# the C /usr/bin/dpipe otherwise (or with --c-dpipe-for-ours).
# Only unix sockets and UDP on 127.0.0.1 are used.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
c_switch=${C_VDE_SWITCH:-/usr/bin/vde_switch}
c_plug=${C_VDE_PLUG:-/usr/bin/vde_plug}
c_dpipe=${C_DPIPE:-/usr/bin/dpipe}

build=1
ours_dpipe=auto
pass=()
for a in "$@"; do
	case $a in
	--no-build) build=0 ;;
	--c-dpipe-for-ours) ours_dpipe=c ;;
	*) pass+=("$a") ;;
	esac
done

TMP=$(mktemp -d /tmp/vde-cablebench.XXXX)
cleanup() {
	# Sessions the driver started (normally already gone): kill by pid
	# every process that is still in one of them.
	if [[ -f $TMP/sids ]]; then
		while read -r sid; do
			for pid in $(ps -o pid= -s "$sid" 2>/dev/null); do
				kill -KILL "$pid" 2>/dev/null || true
			done
		done <"$TMP/sids"
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for t in "$c_switch" "$c_plug" "$c_dpipe"; do
	[[ -x $t ]] || { echo "C tool not found: $t (packages vde2, vdeplug)" >&2; exit 1; }
done

if ((build)); then
	echo "== building our vde_switch and vde_plug (release)" >&2
	(cd "$root" && cargo build --release --bin vde_switch --bin vde_plug) >&2
	if [[ -f $root/src/bin/dpipe.rs ]]; then
		echo "== building our dpipe (release)" >&2
		(cd "$root" && cargo build --release --bin dpipe) >&2 ||
			echo "   (our dpipe did not build: using the C dpipe)" >&2
	fi
fi
mkdir "$TMP/bin"
cp "$root/target/release/vde_switch" "$root/target/release/vde_plug" "$TMP/bin/"
dpipe_args=()
if [[ $ours_dpipe == auto && -x $root/target/release/dpipe ]]; then
	cp "$root/target/release/dpipe" "$TMP/bin/"
	dpipe_args=(--ours-dpipe "$TMP/bin/dpipe")
fi
echo "== compiling vdeperf" >&2
cc -O2 -Wall -o "$TMP/vdeperf" "$here/vdeperf.c" -lvdeplug

# In the background, so that a signal to this script is handled at once:
# the driver gets SIGTERM, stops what it started and exits; then the EXIT
# trap sweeps whatever is left.
python3 "$here/cablebench.py" --vdeperf "$TMP/vdeperf" \
	--c-switch "$c_switch" --c-plug "$c_plug" --c-dpipe "$c_dpipe" \
	--ours-switch "$TMP/bin/vde_switch" --ours-plug "$TMP/bin/vde_plug" "${dpipe_args[@]}" \
	--sid-file "$TMP/sids" --tmpdir "$TMP" "${pass[@]}" &
py=$!
stop_driver() {
	kill -TERM "$py" 2>/dev/null || true
	wait "$py" 2>/dev/null || true
	exit "$1"
}
trap 'stop_driver 130' INT
trap 'stop_driver 143' TERM
wait "$py"
