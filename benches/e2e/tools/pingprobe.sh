#!/usr/bin/env bash
# Ping RTT through the kernel bridge and through netloom, alternating within one run: ROUNDS
# rounds of COUNT pings at -i 0.01 each (default 3 x 100); prints each round's average and
# minimum RTT (us) and the daemon's CPU ticks (1/100 s) during netloom's pings. Root.
#   sudo [NL_BIN=path] [DAEMON_ARGS="--busy-poll 20000"] benches/e2e/tools/pingprobe.sh [ROUNDS] [COUNT]
# Safety: namespaces pp-b1 pp-b2 pp-bh (bridge) and pp-n1 pp-n2 (netloom) made here, 10.98.1.0/24
# and 10.98.2.0/24 inside them; the daemon under `unshare -n` with a temporary socket and data
# root; everything removed on exit (EXIT trap).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
NL_BIN=${NL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/netloom}
R=${1:-3}; C=${2:-100}
D=$(mktemp -d /tmp/pp.XXXX)
cleanup() { kill $NLP 2>/dev/null; wait 2>/dev/null; for n in pp-b1 pp-b2 pp-bh pp-n1 pp-n2; do ip netns del $n 2>/dev/null; done; rm -rf $D; }
trap cleanup EXIT
for n in pp-b1 pp-b2 pp-bh pp-n1 pp-n2; do ip netns add $n; ip -n $n link set lo up; done
ip -n pp-bh link add br0 type bridge; ip -n pp-bh link set br0 up
for i in 1 2; do
  ip -n pp-bh link add v$i type veth peer name eth0 netns pp-b$i
  ip -n pp-bh link set v$i master br0 up
  ip -n pp-b$i addr add 10.98.1.$((i+1))/24 dev eth0; ip -n pp-b$i link set eth0 up
done
unshare -n -- $NL_BIN daemon -H unix://$D/s --data-root $D/data -l warn ${DAEMON_ARGS:-} >$D/log 2>&1 &
NLP=$!
nl() { NETLOOM_HOST=unix://$D/s timeout 30 $NL_BIN "$@"; }
for i in $(seq 50); do nl network ls >/dev/null 2>&1 && break; sleep 0.1; done
nl network create --subnet 10.98.2.0/24 pp >/dev/null
nl attach --name pp-n1 --ip 10.98.2.2 --netns /run/netns/pp-n1 pp >/dev/null
nl attach --name pp-n2 --ip 10.98.2.3 --netns /run/netns/pp-n2 pp >/dev/null
ip netns exec pp-n1 ping -c 3 -i 0.2 -q 10.98.2.3 >/dev/null
ip netns exec pp-b1 ping -c 3 -i 0.2 -q 10.98.1.3 >/dev/null
for r in $(seq $R); do
  b=$(ip netns exec pp-b1 ping -n -q -c $C -i 0.01 10.98.1.3 | awk '/rtt/{split($4,a,"/"); print "avg " a[2]*1000 " min " a[1]*1000}')
  s1=$(awk '{print $14+$15}' /proc/$NLP/stat)
  n=$(ip netns exec pp-n1 ping -n -q -c $C -i 0.01 10.98.2.3 | awk '/rtt/{split($4,a,"/"); print "avg " a[2]*1000 " min " a[1]*1000}')
  s2=$(awk '{print $14+$15}' /proc/$NLP/stat)
  echo "round $r: bridge $b | netloom $n | daemon ticks $((s2-s1))"
done
