#!/bin/sh
# A host on its site's switch: a tap plugged into the switch through the
# shared volume, addressed $ADDR.
set -e
while [ ! -S /vde/ctl/ctl ]; do sleep 0.2; done
vde_plug2tap -s /vde/ctl -d eth1
ip addr add "$ADDR" dev eth1
ip link set eth1 up
exec sleep infinity
