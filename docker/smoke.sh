#!/usr/bin/env bash
# The docker lab's smoke test: builds the image (our binaries of the
# $PROFILE build, copied stripped to target/docker, on the local Debian
# base of docker/build-base.sh unless VDE_BASE names another), brings up
# the 3-site ring of docker/compose.yaml under a compose project of its
# own (vde-smoke), pings host-a -> host-b (the first reply within 30 s),
# then host-a -> host-b, host-a -> host-c, host-b -> host-a, host-c ->
# host-a and host-b -> host-c through the encrypted cables, checks that
# the spanning tree has one root and blocked exactly one port of the
# ring, and tears it all down (containers, network, volumes) whatever
# happened. Needs a running dockerd and docker-compose; run as root.
#   PROFILE=debug|release (release): which build the image takes
#   NO_CARGO=1: do not run cargo build (the binaries are there)
#   CARGO_TARGET_DIR: where cargo builds
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
export VDE_BIN=target/docker
project=vde-smoke
compose() { docker-compose -p "$project" -f docker/compose.yaml "$@"; }
t0=$(date +%s)
step() { echo "smoke [$(( $(date +%s) - t0 )) s]: $*"; }

made_key=""
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "${up:-}" ]; then
    echo "smoke: FAILED; the containers' logs:"
    compose logs --no-color --tail=30 || true
  fi
  compose down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
  [ -z "$made_key" ] || rm -f docker/keys/cab.key
  # out of the build context of a plain `docker-compose up --build`
  rm -rf target/docker
  step "torn down (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${NO_CARGO:-}" ]; then
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  [ "$PROFILE" = release ] || [ "$PROFILE" = debug ] || { echo "PROFILE=debug or release" >&2; exit 2; }
  step "cargo build --bins ${flag[*]}"
  cargo build --bins --locked "${flag[@]}"
fi
# The image takes the binaries from target/docker (in the build context,
# wherever cargo builds), stripped: a debug build's are ~50 MB each.
tdir=${CARGO_TARGET_DIR:-target}
mkdir -p target/docker
for b in vde_switch vde_plug vde_plug2tap vdeterm wirefilter vde_cryptcab; do
  cp "$tdir/$PROFILE/$b" target/docker/$b
  strip target/docker/$b 2>/dev/null || true
done
if [ -z "${VDE_BASE:-}" ] || [ "$VDE_BASE" = vde-base:bookworm ]; then
  docker/build-base.sh
fi
step "image vde-lab ($tdir/$PROFILE)"
# One build: every service uses the same image. The one it replaces is
# removed (no dangling image left per run).
old=$(docker image inspect -f '{{.Id}}' vde-lab 2>/dev/null || true)
compose build -q site-a
new=$(docker image inspect -f '{{.Id}}' vde-lab)
[ -z "$old" ] || [ "$old" = "$new" ] || docker rmi "$old" >/dev/null 2>&1 || true
if [ ! -s docker/keys/cab.key ]; then
  (umask 077; head -c 32 /dev/urandom > docker/keys/cab.key)
  made_key=1
fi
# Leftovers of an interrupted run.
compose down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
step "up"
up=1
compose up -d --no-build

# Runs in a host container, bounded.
ex() { timeout 20 docker-compose -p "$project" -f docker/compose.yaml exec -T "$@"; }
ping_ok() { # FROM ADDR COUNT: COUNT replies, no loss, no duplicates
  local out
  out=$(ex "$1" ping -n -c "$3" -i 0.3 -W 2 "$2" 2>&1) || { echo "$out"; return 1; }
  if grep -q 'DUP!' <<<"$out"; then echo "$out"; echo "duplicates: a loop?"; return 1; fi
}
first=""
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
  if ex host-a ping -n -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; then first=1; break; fi
  sleep 0.5
done
[ -n "$first" ] || { echo "smoke: host-a got no reply from 10.0.0.2 in 30 s"; ping_ok host-a 10.0.0.2 3 || true; exit 1; }
step "first ping host-a -> host-b"
for p in "host-a 10.0.0.2" "host-a 10.0.0.3" "host-b 10.0.0.1" "host-c 10.0.0.1" "host-b 10.0.0.3"; do
  set -- $p
  ping_ok "$1" "$2" 3 || { echo "smoke: $1 -> $2 failed"; exit 1; }
  step "$1 -> $2: 3/3"
done

# Loop-free: one root switch and exactly one blocked port in the ring.
roots=0; blocked=0
for s in site-a site-b site-c; do
  out=$(ex "$s" vdeterm /vde/mgmt -c fstp/print)
  r=$(grep -c 'ROOTSWITCH' <<<"$out" || true)
  b=$(grep -c 'role=Alternate' <<<"$out" || true)
  echo "  $s: root=$r blocked=$b"
  roots=$((roots + r)); blocked=$((blocked + b))
done
if [ "$roots" -ne 1 ] || [ "$blocked" -ne 1 ]; then
  echo "smoke: the ring is not one tree (roots $roots, blocked ports $blocked)"; exit 1
fi
step "ok: spanning tree (1 root, 1 blocked port), pings across the sites"
