#!/usr/bin/env bash
# Overlay benchmark (issue #9): two hosts (network namespaces joined by a
# veth "WAN"), a tap on each carrying the host's LAN address, the two joined
# by an encrypted cable; iperf3 TCP and ping RTT tap to tap. Four stacks in
# one run, alternating from round to round:
#   ours-inproc    our vde_switch -t tap --listen/--cable cryptcab://…/psk=KEY
#   ours-quic      our vde_switch -t tap --listen/--cable quic://…/cert=…/pin=…
#   ours-cryptcab  our vde_switch -t tap + our vde_cryptcab -P KEY per host
#   C              Debian vde_switch -t tap + Debian vde_cryptcab -P KEY
#   tinc           tinc 1.0 tincd, Mode = switch, one daemon per host
#
#   bench/run-overlay.sh [--rounds R] [--duration S] [--pings N]
#                        [--stacks ours-inproc,ours-quic,ours-cryptcab,C,tinc]
#                        [--tinc-cipher NAME] [--tinc-digest NAME] [--tinc-bits N]
#                        [--wan-mtu N] [--startup-timeout S]
#                        [--no-build] [--json FILE] [-v]
#
# Run as root (namespaces, taps). Installs nothing: it checks for ip, ping,
# iperf3, tincd, openssl (the quic stack's certificates), the Debian vde2 and vde2-cryptcab tools and says what is
# missing. Builds our release binaries (vde_switch, vde_cryptcab), copies
# them to a temporary directory so that a concurrent rebuild cannot swap
# them mid-run, makes a random 32-byte pre-shared key there, then runs
# bench/overlaybench.py (python3, standard library only). The C
# vde_cryptcab gets OPENSSL_CONF (default
# ../shared/specs/openssl-legacy-provider.cnf beside the repo, or beside the
# main checkout when run from a git worktree; override with
# C_CRYPTCAB_OPENSSL_CONF): Blowfish lives in OpenSSL 3's legacy provider.
# All traffic stays in the namespaces the run makes (10.201.0.0/24 WAN,
# 10.202.0.0/24 LAN); every process and namespace is removed on exit.
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
pass=()
for a in "$@"; do
	case $a in
	--no-build) build=0 ;;
	*) pass+=("$a") ;;
	esac
done

missing=()
[[ $(id -u) == 0 ]] || missing+=("root (network namespaces and taps)")
for t in ip ping iperf3 tincd openssl python3 cargo; do
	command -v "$t" >/dev/null 2>&1 || case $t in
		ip) missing+=("ip (package iproute2)") ;;
		ping) missing+=("ping (package iputils-ping)") ;;
		iperf3) missing+=("iperf3 (package iperf3)") ;;
		tincd) missing+=("tincd (package tinc, 1.0)") ;;
		*) missing+=("$t") ;;
		esac
done
[[ -x $c_switch ]] || missing+=("$c_switch (package vde2)")
[[ -x $c_cryptcab ]] || missing+=("$c_cryptcab (package vde2-cryptcab)")
[[ -r $openssl_conf ]] || missing+=("OPENSSL_CONF file $openssl_conf (set C_CRYPTCAB_OPENSSL_CONF)")
if ((${#missing[@]})); then
	echo "missing:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/vde-overlaybench.XXXX)
NS_PREFIX=vdeov$$
cleanup() {
	# Sessions the driver started (normally already gone): kill by pid
	# every process still in one of them.
	if [[ -f $TMP/sids ]]; then
		while read -r sid; do
			for pid in $(ps -o pid= -s "$sid" 2>/dev/null); do
				kill -KILL "$pid" 2>/dev/null || true
			done
		done <"$TMP/sids"
	fi
	# Namespaces the driver made (normally already deleted).
	if [[ -f $TMP/netns ]]; then
		while read -r ns; do
			[[ $ns == "$NS_PREFIX"-* ]] || continue
			if ip netns list | grep -qw -- "$ns"; then
				for pid in $(ip netns pids "$ns" 2>/dev/null); do
					kill -KILL "$pid" 2>/dev/null || true
				done
				ip netns del "$ns" 2>/dev/null || true
			fi
		done <"$TMP/netns"
	fi
	# The C client leaves a copy of the key in /tmp/vde_XXXXXX.key.
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

bins=(vde_switch vde_cryptcab)
if ((build)); then
	echo "== building our ${bins[*]} (release)" >&2
	(cd "$root" && cargo build --release --bin vde_switch --bin vde_cryptcab) >&2
fi
mkdir "$TMP/bin"
for b in "${bins[@]}"; do
	[[ -x $root/target/release/$b ]] || { echo "missing $root/target/release/$b (build it)" >&2; exit 1; }
	cp "$root/target/release/$b" "$TMP/bin/"
done

head -c 32 /dev/urandom >"$TMP/psk.key"
chmod 600 "$TMP/psk.key"

echo "== ours at commit $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$root" && git diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'); $(tincd --version | head -1); $(iperf3 --version | head -1)" >&2

# In the background, so that a signal to this script is handled at once:
# the driver gets SIGTERM, stops what it started and exits; then the EXIT
# trap sweeps whatever is left.
python3 "$here/overlaybench.py" \
	--ours-switch "$TMP/bin/vde_switch" --ours-cryptcab "$TMP/bin/vde_cryptcab" \
	--c-switch "$c_switch" --c-cryptcab "$c_cryptcab" --openssl-conf "$openssl_conf" \
	--key "$TMP/psk.key" --ns-prefix "$NS_PREFIX" --ns-file "$TMP/netns" \
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
