#!/bin/sh
# A site: our vde_switch with the spanning tree on, listening for one
# cryptcab cable on UDP 7667 and dialing the next site of the ring
# ($NEXT). Its control directory is shared with the site's host container
# through the volume at /vde.
set -e
key=/vde/cab.key
[ -s /keys/cab.key ] && { cp /keys/cab.key "$key"; chmod 600 "$key"; }
exec vde_switch -F -s /vde/ctl -M /vde/mgmt --nostdin \
  --listen "cryptcab://:7667/psk=$key/dead=0.3" \
  --cable "cryptcab://$NEXT:7667/psk=$key/dead=0.3"
