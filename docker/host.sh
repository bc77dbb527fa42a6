#!/bin/sh
# A host on its site's switch: a tap (eth1) plugged into the switch through
# the shared volume, addressed $ADDR. The container lives as long as the
# plug does.
set -e
i=0
while [ ! -S /vde/ctl/ctl ]; do
  i=$((i + 1))
  [ "$i" -le 300 ] || { echo "host.sh: no switch at /vde/ctl after 60 s" >&2; exit 1; }
  sleep 0.2
done
vde_plug2tap -s /vde/ctl eth1 &
plug=$!
i=0
while ! ip link show eth1 >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -le 50 ] || { echo "host.sh: no tap eth1 after 10 s" >&2; exit 1; }
  kill -0 "$plug" 2>/dev/null || { echo "host.sh: vde_plug2tap exited" >&2; exit 1; }
  sleep 0.2
done
ip addr add "$ADDR" dev eth1
ip link set eth1 up
wait "$plug"
