#!/bin/sh
# A site: our vde_switch with the spanning tree on (-F: the ring must not
# loop), listening for one cryptcab cable on UDP 7667 and dialing the next
# site of the ring ($NEXT). Its control directory is shared with the
# site's host container through the volume at /vde. The pre-shared key
# (docker/keys/cab.key, mounted at /keys) is copied where only this
# container sees it, mode 0600.
set -e
if [ ! -s /keys/cab.key ]; then
  echo "site.sh: no key: head -c 32 /dev/urandom > docker/keys/cab.key" >&2
  exit 1
fi
key=/root/cab.key
install -m 600 /keys/cab.key "$key"
# The next site's name resolves once its container is up (docker's DNS);
# the cable is dialed by address, so wait for it a little.
i=0
while ! getent hosts "$NEXT" >/dev/null 2>&1 && [ "$i" -lt 150 ]; do
  i=$((i + 1)); sleep 0.2
done
# A restarted container finds the last switch's sockets in the volume.
rm -rf /vde/ctl /vde/mgmt
exec vde_switch -F -s /vde/ctl -M /vde/mgmt --nostdin \
  --listen "cryptcab://:7667/psk=$key/dead=0.3" \
  --cable "cryptcab://$NEXT:7667/psk=$key/dead=0.3"
