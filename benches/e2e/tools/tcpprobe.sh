#!/usr/bin/env bash
# TCP through netloom between two namespaces: ROUNDS iperf3 runs of 3 s (default 3) at MTU
# $MTU (default 65520), optionally after 100 pings (PINGFIRST=1, sparse traffic first); prints
# each run's Gbit/s, the daemon's CPU ticks (1/100 s) and its busy-polling counters. Root.
#   sudo [NL_BIN=path] [DAEMON_ARGS="--busy-poll 20000"] [MTU=1500] benches/e2e/tools/tcpprobe.sh [ROUNDS]
# Safety: namespaces tp-n1 tp-n2 made here (10.98.3.0/24), the daemon under `unshare -n` with a
# temporary socket and data root; everything removed on exit (EXIT trap).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
NL_BIN=${NL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/netloom}
R=${1:-3}; MTU=${MTU:-65520}
D=$(mktemp -d /tmp/tp.XXXX)
cleanup() { ip netns pids tp-n2 2>/dev/null | xargs -r kill 2>/dev/null; kill $NLP 2>/dev/null; wait 2>/dev/null; for n in tp-n1 tp-n2; do ip netns del $n 2>/dev/null; done; rm -rf $D; }
trap cleanup EXIT
for n in tp-n1 tp-n2; do ip netns add $n; ip -n $n link set lo up; done
unshare -n -- $NL_BIN daemon -H unix://$D/s --data-root $D/data -l warn ${DAEMON_ARGS:-} >$D/log 2>&1 &
NLP=$!
nl() { NETLOOM_HOST=unix://$D/s timeout 30 $NL_BIN "$@"; }
for i in $(seq 50); do nl network ls >/dev/null 2>&1 && break; sleep 0.1; done
nl network create --subnet 10.98.3.0/24 -o com.docker.network.driver.mtu=$MTU tp >/dev/null
nl attach --name tp-n1 --ip 10.98.3.2 --netns /run/netns/tp-n1 tp >/dev/null 2>&1
nl attach --name tp-n2 --ip 10.98.3.3 --netns /run/netns/tp-n2 tp >/dev/null 2>&1
ip netns exec tp-n2 iperf3 -s -p 5399 -D
ip netns exec tp-n1 ping -c 3 -i 0.2 -q 10.98.3.3 >/dev/null
[ -n "${PINGFIRST:-}" ] && ip netns exec tp-n1 ping -c 100 -i 0.01 -q 10.98.3.3 | tail -1
for r in $(seq $R); do
  s1=$(awk '{print $14+$15}' /proc/$NLP/stat)
  g=$(ip netns exec tp-n1 iperf3 -c 10.98.3.3 -p 5399 -t 3 -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
  s2=$(awk '{print $14+$15}' /proc/$NLP/stat)
  echo "run $r: $g Gbit/s daemon ticks $((s2-s1)) polled $(nl stats --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["BusyPoll"])')"
done
