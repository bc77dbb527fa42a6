#!/usr/bin/env bash
# Switch-cryptcab-switch benchmark (issue #5), in one run:
#   C-cryptcab     Debian vde_switch x2 + Debian vde_cryptcab (-P pre-shared key)
#   ours-cryptcab  our vde_switch x2 + our vde_cryptcab (same command line)
#   ours-inproc    our vde_switch x2, the cryptcab inside them (--listen on
#                  one, --cable on the other, psk=; issue #9)
#   ours-udp       our vde_switch x2 + our vde_plug udp:// (plain cable)
#
#   bench/run-cryptcab.sh [--rounds R] [--frames N] [--pings N] [--sizes 64,1500]
#                         [--stacks C-cryptcab,ours-cryptcab,ours-inproc,ours-udp]
#                         [--ping-timeout-ms MS] [--startup-timeout S]
#                         [--ours-cipher chacha20-poly1305|aes-256-gcm|auto]
#                         [--no-build] [--json FILE] [-v]
#
# Builds our release binaries (vde_switch, vde_plug, vde_cryptcab), copies
# them to a temporary directory so that a concurrent rebuild cannot swap them
# mid-run, makes a random 32-byte pre-shared key there (the C tool reads its
# first 24 bytes), compiles bench/vdeperf.c against libvdeplug, then runs
# bench/cryptcabbench.py (python3, standard library only; it reuses
# bench/cablebench.py). The C vde_cryptcab gets OPENSSL_CONF (default
# ../shared/specs/openssl-legacy-provider.cnf beside the repo; override with the
# environment variable C_CRYPTCAB_OPENSSL_CONF): Blowfish lives in
# OpenSSL 3's legacy provider. Only unix sockets and UDP to 127.0.0.1 are used.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
c_switch=${C_VDE_SWITCH:-/usr/bin/vde_switch}
c_cryptcab=${C_VDE_CRYPTCAB:-/usr/bin/vde_cryptcab}
if [[ -n ${C_CRYPTCAB_OPENSSL_CONF:-} ]]; then
	openssl_conf=$C_CRYPTCAB_OPENSSL_CONF
else
	# ../shared beside the repository; from a git worktree, beside the
	# main checkout.
	openssl_conf=$(cd "$root/.." && pwd)/shared/specs/openssl-legacy-provider.cnf
	if [[ ! -r $openssl_conf ]] && common=$(cd "$root" && git rev-parse --path-format=absolute --git-common-dir 2>/dev/null); then
		alt=$(cd "$(dirname "$common")/.." && pwd)/shared/specs/openssl-legacy-provider.cnf
		[[ -r $alt ]] && openssl_conf=$alt
	fi
fi

build=1
stacks=C-cryptcab,ours-cryptcab,ours-inproc,ours-udp
pass=()
next_is_stacks=0
for a in "$@"; do
	if ((next_is_stacks)); then stacks=$a; next_is_stacks=0; continue; fi
	case $a in
	--no-build) build=0 ;;
	--stacks) next_is_stacks=1 ;;
	--stacks=*) stacks=${a#--stacks=} ;;
	*) pass+=("$a") ;;
	esac
done
want_ours_cab=0
[[ ,$stacks, == *,ours-cryptcab,* ]] && want_ours_cab=1

TMP=$(mktemp -d /tmp/vde-cryptcabbench.XXXX)
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
	# The C client leaves a copy of the key in /tmp/vde_XXXXXX.key: remove
	# the ones holding this run's key (normally the driver already did).
	if [[ -f $TMP/psk.key ]]; then
		for f in /tmp/vde_*.key; do
			[[ -f $f && -O $f ]] || continue
			if cmp -s "$f" <(head -c 24 "$TMP/psk.key"); then rm -f "$f"; fi
		done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ,$stacks, == *,C-cryptcab,* ]]; then
	for t in "$c_switch" "$c_cryptcab"; do
		[[ -x $t ]] || { echo "C tool not found: $t (package vde2)" >&2; exit 1; }
	done
	[[ -r $openssl_conf ]] || { echo "OPENSSL_CONF file not found: $openssl_conf" >&2; exit 1; }
fi

bins=(vde_switch vde_plug)
((want_ours_cab)) && bins+=(vde_cryptcab)
if ((build)); then
	echo "== building our ${bins[*]} (release)" >&2
	bargs=()
	for b in "${bins[@]}"; do bargs+=(--bin "$b"); done
	(cd "$root" && cargo build --release "${bargs[@]}") >&2
fi
mkdir "$TMP/bin"
for b in "${bins[@]}"; do
	[[ -x $root/target/release/$b ]] || { echo "missing $root/target/release/$b (build it, or leave its stack out with --stacks)" >&2; exit 1; }
	cp "$root/target/release/$b" "$TMP/bin/"
done
cab_args=()
((want_ours_cab)) && cab_args=(--ours-cryptcab "$TMP/bin/vde_cryptcab")

head -c 32 /dev/urandom >"$TMP/psk.key"
chmod 600 "$TMP/psk.key"

echo "== compiling vdeperf" >&2
cc -O2 -Wall -o "$TMP/vdeperf" "$here/vdeperf.c" -lvdeplug

# In the background, so that a signal to this script is handled at once:
# the driver gets SIGTERM, stops what it started and exits; then the EXIT
# trap sweeps whatever is left.
python3 "$here/cryptcabbench.py" --vdeperf "$TMP/vdeperf" \
	--c-switch "$c_switch" --c-cryptcab "$c_cryptcab" --openssl-conf "$openssl_conf" \
	--ours-switch "$TMP/bin/vde_switch" --ours-plug "$TMP/bin/vde_plug" "${cab_args[@]}" \
	--key "$TMP/psk.key" --stacks "$stacks" \
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
