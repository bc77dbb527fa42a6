#!/bin/sh
# Makes the base image of the docker lab (docker/Dockerfile's default BASE)
# from Debian packages, with no image registry: debootstrap a minimal
# bookworm with the tools the containers use (iproute2 for the hosts'
# taps, ping) and libslirp0 (binaries built with the `slirp` feature, as
# scripts/test-all builds them, link it), then `docker import` it. Idempotent: nothing is done when
# the tag exists already (remove it with `docker rmi vde-base:bookworm`
# to make it again). Run as root (debootstrap needs it).
#   TAG (vde-base:bookworm), MIRROR (the mirror of /etc/apt, else
#   http://deb.debian.org/debian), SUITE (bookworm)
set -eu
TAG=${TAG:-vde-base:bookworm}
SUITE=${SUITE:-bookworm}
if docker image inspect "$TAG" >/dev/null 2>&1; then
  # an older base (before libslirp0 was in it) is made again
  if docker run --rm --network none "$TAG" test -e /usr/lib/x86_64-linux-gnu/libslirp.so.0 \
      2>/dev/null; then
    echo "$TAG: present"
    exit 0
  fi
  echo "$TAG: present but without libslirp0: making it again"
  docker rmi -f "$TAG" >/dev/null
fi
if [ -z "${MIRROR:-}" ]; then
  # The machine's own Debian mirror (apt's sources), if it has one.
  MIRROR=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p; s/^deb  *\(\[[^]]*\]  *\)\{0,1\}\(http[^ ]*\/debian\)  *.*/\2/p' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
command -v debootstrap >/dev/null || { echo "build-base.sh: debootstrap is not installed" >&2; exit 1; }
dir=$(mktemp -d /tmp/vde-base.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
echo "$TAG: debootstrap $SUITE from $MIRROR"
start=$(date +%s)
debootstrap --variant=minbase --include=iproute2,iputils-ping,libslirp0 "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1 || {
  tail -n 20 "$dir.log" >&2; rm -f "$dir.log"; exit 1; }
rm -f "$dir.log"
# What an image does not need: apt's lists and caches, docs, man pages.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
  "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
tar -C "$dir" -c . | docker import -c 'CMD ["/bin/bash"]' - "$TAG" >/dev/null
echo "$TAG: made in $(( $(date +%s) - start )) s"
