#!/bin/bash
# Connection rate of a published port from the daemon's loopback: the splice fast path
# (default) vs --no-port-splice (through the gateway). Root; N=2000 sequential connections.
# Usage: sudo [NL_BIN=path] [N=2000] benches/e2e/tools/connrate.sh
# Safety: the daemon runs in a namespace this script creates (cr-h) and removes; the clients
# connect to 127.0.0.1 inside it; the container is a netloom container of that daemon.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
NL_BIN=${NL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/netloom}
N=${N:-2000}
for mode in splice gateway; do
  D=$(mktemp -d /tmp/crnl.XXXX); ip netns add cr-h; ip -n cr-h link set lo up
  flags=(); [ $mode = gateway ] && flags=(--no-port-splice)
  ip netns exec cr-h $NL_BIN daemon -H unix://$D/s --data-root $D/data -l warn "${flags[@]}" </dev/null >$D/log 2>&1 &
  NLP=$!
  nl() { NETLOOM_HOST=unix://$D/s timeout 30 $NL_BIN "$@"; }
  for i in $(seq 50); do nl network ls >/dev/null 2>&1 && break; sleep 0.1; done
  nl run -d --name srv -p 8080:80 -- timeout 120 python3 -c "
import socket
l=socket.socket();l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);l.bind(('0.0.0.0',80));l.listen(512)
while True:
  c,_=l.accept();c.sendall(b'x');c.close()" >/dev/null
  sleep 0.5
  ip netns exec cr-h python3 -c "
import socket,time
def one():
  s=socket.create_connection(('127.0.0.1',8080),timeout=5);b=s.recv(1);s.close();return b
for i in range(50):
  try:
    if one()==b'x': break
  except OSError: time.sleep(0.1)
t=time.time();n=$N
for i in range(n): assert one()==b'x'
d=time.time()-t
print('$mode: %d sequential connections in %.2f s = %.0f conn/s, %.0f us each'%(n,d,n/d,d/n*1e6))"
  nl rm -f srv >/dev/null; kill $NLP; wait $NLP 2>/dev/null; ip netns del cr-h; rm -rf $D
done
