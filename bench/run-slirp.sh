#!/usr/bin/env bash
# slirp benchmark (issue #11): TCP from a guest to a server on the host's
# loopback through a slirp router, with iperf3. The guest is a network
# namespace whose tap is a port of our vde_switch; the router is one of
#   ours-slirpvde  our slirpvde -D                                  (release)
#   ours-plug      our vde_plug vde://SW slirp://                    (release)
#   c-slirpvde     Debian's slirpvde -D (vde2, the old built-in slirp)
#   c-plug         Debian's vde_plug vde://SW slirp:// (libvdeplug_slirp)
# For each: the guest takes a DHCP lease, runs `iperf3 -c 10.0.2.2 -t T`
# against `iperf3 -s -1` on 127.0.0.1 (libslirp maps 10.0.2.2 to the
# host's loopback), and the router process's CPU time (user+sys, all its
# threads, from /proc/PID/stat) is read before and after.
#
#   bench/run-slirp.sh [--time T] [--no-build] [--only NAME,NAME]
#
# Needs root (namespace, tap), iperf3, busybox, and the Debian packages
# vde2, vdeplug, libvdeplug-slirp. Traffic: only the namespace and the
# host's loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
time_s=10
build=1
only=""
while (($#)); do
	case $1 in
	--time) time_s=$2; shift ;;
	--no-build) build=0 ;;
	--only) only=$2; shift ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

for t in iperf3 busybox ip /usr/bin/slirpvde /usr/bin/vde_plug; do
	command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "run as root (namespace and tap)" >&2; exit 1; }

target=${CARGO_TARGET_DIR:-$root/target}
if ((build)); then
	echo "== building our vde_switch, vde_plug, slirpvde (release, --features slirp)" >&2
	(cd "$root" && cargo build --release --features slirp --bin vde_switch --bin vde_plug --bin slirpvde) >&2
fi

TMP=$(mktemp -d /tmp/vde-slirpbench.XXXX)
NS=vdeslirpb$$
TAP=vsb$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.2
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
for b in vde_switch vde_plug slirpvde; do
	cp "$target/release/$b" "$TMP/$b"
done

cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

cat >"$TMP/udhcpc.sh" <<'EOF'
#!/bin/sh
case "$1" in bound|renew)
  busybox ifconfig "$interface" "$ip" netmask "$subnet" up
  set -- $router
  busybox ip route add default via "$1" dev "$interface"
  echo "$ip" > "$LEASE"
;; esac
EOF
chmod +x "$TMP/udhcpc.sh"

run_one() {
	local name=$1
	shift
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP/sw" "$TMP/lease"
	# -d returns once the sockets are there
	"$TMP/vde_switch" -s "$TMP/sw" -t "$TAP" -d -p "$TMP/sw.pid" </dev/null >/dev/null 2>&1
	for _ in $(seq 50); do [[ -s $TMP/sw.pid ]] && break; sleep 0.1; done
	local sw
	sw=$(cat "$TMP/sw.pid")
	rm -f "$TMP/sw.pid"
	pids+=("$sw")
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	ip link set "$TAP" netns "$NS"
	ip -n "$NS" link set "$TAP" up
	"$@" </dev/null >"$TMP/$name.log" 2>&1 &
	local r=$!
	pids+=("$r")
	sleep 1
	LEASE=$TMP/lease ip netns exec "$NS" busybox udhcpc -i "$TAP" -f -q -n -t 8 -T 2 -A 1 -s "$TMP/udhcpc.sh" >/dev/null 2>&1 || true
	if [[ ! -s $TMP/lease ]]; then
		echo "| $name | no lease | | | | |"
		kill "$r" "$sw" 2>/dev/null || true
		wait "$r" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$sw" 2>/dev/null || break; sleep 0.1; done
		return
	fi
	local port=$((20000 + RANDOM % 20000))
	# the receiver's figures: Debian's slirpvde can lose iperf3's closing
	# exchange (or crash) after the data went through
	iperf3 -s -1 -J -B 127.0.0.1 -p "$port" >"$TMP/$name.json" 2>/dev/null &
	local srv=$!
	pids+=("$srv")
	sleep 0.5
	# CPU ticks of the router and of the switch, sampled until the end
	(while kill -0 "$r" 2>/dev/null; do
		echo "$(cputicks "$r" 2>/dev/null || echo -) $(cputicks "$sw" 2>/dev/null || echo -)" >>"$TMP/$name.cpu"
		sleep 0.2
	done) &
	local sampler=$!
	pids+=("$sampler")
	sleep 0.3
	ip netns exec "$NS" timeout $((time_s + 15)) iperf3 -c 10.0.2.2 -p "$port" -t "$time_s" --connect-timeout 5000 >/dev/null 2>&1 || true
	sleep 0.3
	kill "$sampler" 2>/dev/null || true
	for _ in $(seq 30); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
	kill "$srv" 2>/dev/null || true
	local alive=yes
	kill -0 "$r" 2>/dev/null || alive="no (exited)"
	python3 - "$TMP/$name.json" "$name" "$TMP/$name.cpu" "$hz" "$alive" <<'EOF'
import json, sys
path, name, cpu, hz, alive = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
try:
    j = json.load(open(path))
    end = j["end"]["sum_received"]
    bps, nbytes, secs = end["bits_per_second"], end["bytes"], end["seconds"]
except Exception as e:
    print(f"| {name} | iperf3 failed ({type(e).__name__}) | | | | {alive} |")
    sys.exit(0)
rows = [l.split() for l in open(cpu) if len(l.split()) == 2 and "-" not in l.split()]
(r0, s0), (r1, s1) = map(int, rows[0]), map(int, rows[-1])
rcpu, scpu = (r1 - r0) / hz, (s1 - s0) / hz
gb = nbytes / 1e9
print(f"| {name} | {bps/1e6:.0f} | {rcpu:.2f} ({100*rcpu/secs:.0f}%) | {rcpu/gb:.2f} | {scpu/gb:.2f} | {alive} |")
EOF
	kill "$r" "$sw" 2>/dev/null || true
	wait "$r" 2>/dev/null || true
	# the switch is a daemon, not our child: wait for it to go
	for _ in $(seq 50); do kill -0 "$sw" 2>/dev/null || break; sleep 0.1; done
}

want() { [[ -z $only || ,$only, == *,$1,* ]]; }

echo "slirp benchmark: guest -> host loopback, iperf3 TCP, ${time_s} s, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| router | Mbit/s (receiver) | router CPU s (% of one core) | router CPU s/GB | switch CPU s/GB | router alive after |"
echo "|---|---|---|---|---|---|"
want ours-slirpvde && run_one ours-slirpvde "$TMP/slirpvde" -s "$TMP/sw" -D -q
want ours-plug && run_one ours-plug "$TMP/vde_plug" "vde://$TMP/sw" "slirp:///v4"
want c-slirpvde && run_one c-slirpvde /usr/bin/slirpvde -s "$TMP/sw" -D
want c-plug && run_one c-plug /usr/bin/vde_plug "vde://$TMP/sw" "slirp:///v4"
