#!/usr/bin/env bash
# Where the machine's CPU goes while two namespaces talk through the kernel bridge and through
# netloom: for UDP 64 B (iperf3 -u -l 64 -b 0), TCP at MTU 1500 and TCP at MTU 65520, ROUNDS
# rounds (default 2), the bridge and netloom alternating. Per run: the delivered rate, the CPU
# of the iperf3 client and server (iperf3's own figures), of netloom's daemon (/proc/PID/stat),
# the whole machine's busy CPU (/proc/stat, all CPUs; 100 = one core), and "kernel" = the
# machine's busy CPU that no process here was charged with (softirq, ksoftirqd, other tasks).
# Root.
#   sudo [NL_BIN=path] [T=4] [CC=bbr] benches/e2e/tools/cpubudget.sh [ROUNDS]
# Safety: namespaces cb-* made here (10.98.4-6.0/24), the bridge in its own namespace cb-br,
# the daemon under `unshare -n` with a temporary socket and data root; every iperf3 is bounded
# by `timeout`; everything removed on exit (EXIT trap).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
NL_BIN=${NL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/netloom}
R=${1:-2}; T=${T:-4}; CC=${CC:-}
D=$(mktemp -d /tmp/cb.XXXX)
NSS="cb-b1 cb-b2 cb-br cb-n1 cb-n2 cb-m1 cb-m2"
NLP=
cleanup() {
    for n in $NSS; do ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null; done
    [ -n "$NLP" ] && kill $NLP 2>/dev/null
    wait 2>/dev/null
    for n in $NSS; do ip netns del $n 2>/dev/null; done
    rm -rf "$D"
}
trap cleanup EXIT
for n in $NSS; do ip netns add $n; ip -n $n link set lo up; done

# The kernel bridge, as peers.sh's topology B builds it.
ip -n cb-br link add cb-br0 type bridge
ip -n cb-br link set cb-br0 up
for i in 1 2; do
    ip -n cb-b$i link add cb-v$i type veth peer name cb-p$i netns cb-br
    ip -n cb-br link set cb-p$i master cb-br0
    ip -n cb-br link set cb-p$i up
    ip -n cb-b$i addr add 10.98.4.$i/24 dev cb-v$i
    ip -n cb-b$i link set cb-v$i up
done
bridge_mtu() {
    local i
    for i in 1 2; do
        ip -n cb-b$i link set cb-v$i mtu "$1"
        ip -n cb-br link set cb-p$i mtu "$1"
    done
}

# netloom: one network per MTU.
unshare -n -- "$NL_BIN" daemon -H "unix://$D/s" --data-root "$D/data" -l warn >"$D/log" 2>&1 &
NLP=$!
nl() { NETLOOM_HOST="unix://$D/s" timeout 30 "$NL_BIN" "$@"; }
for _ in $(seq 50); do nl network ls >/dev/null 2>&1 && break; sleep 0.1; done
nl network create --subnet 10.98.5.0/24 cbn >/dev/null
nl network create --subnet 10.98.6.0/24 -o com.docker.network.driver.mtu=65520 cbm >/dev/null
nl attach --name cb-n1 --ip 10.98.5.2 --netns /run/netns/cb-n1 cbn >/dev/null
nl attach --name cb-n2 --ip 10.98.5.3 --netns /run/netns/cb-n2 cbn >/dev/null
nl attach --name cb-m1 --ip 10.98.6.2 --netns /run/netns/cb-m1 cbm >/dev/null
nl attach --name cb-m2 --ip 10.98.6.3 --netns /run/netns/cb-m2 cbm >/dev/null

for s in cb-b2:10.98.4.2 cb-n2:10.98.5.3 cb-m2:10.98.6.3; do
    ip netns exec "${s%%:*}" iperf3 -s -B "${s#*:}" -p 5398 -D
done
sleep 0.5
for p in cb-b1:10.98.4.2 cb-n1:10.98.5.3 cb-m1:10.98.6.3; do
    ip netns exec "${p%%:*}" ping -c 2 -i 0.2 -q "${p#*:}" >/dev/null || { echo "no path ${p}" >&2; exit 1; }
done

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
ticks() { [ -n "$1" ] && awk '{print $14+$15}' "/proc/$1/stat" || echo 0; }
hz=$(getconf CLK_TCK)

# run FABRIC TEST: one iperf3 run, one line of figures.
run() {
    local fabric=$1 test=$2 cns dst daemon args b1 b2 d1 d2 out
    case $fabric in
        bridge) cns=cb-b1; dst=10.98.4.2; daemon= ;;
        netloom) daemon=$NLP
                 if [ "$test" = tcp@65520 ]; then cns=cb-m1; dst=10.98.6.3; else cns=cb-n1; dst=10.98.5.3; fi ;;
    esac
    case $test in
        udp64) args="-u -l 64 -b 0"; [ "$fabric" = bridge ] && bridge_mtu 1500 ;;
        tcp@1500) args="${CC:+-C $CC}"; [ "$fabric" = bridge ] && bridge_mtu 1500 ;;
        tcp@65520) args="${CC:+-C $CC}"; [ "$fabric" = bridge ] && bridge_mtu 65520 ;;
    esac
    out=$D/run.json
    b1=$(busy); d1=$(ticks "$daemon")
    # shellcheck disable=SC2086
    timeout $((T + 15)) ip netns exec $cns iperf3 -c $dst -p 5398 -t "$T" $args -J >"$out" 2>/dev/null
    b2=$(busy); d2=$(ticks "$daemon")
    python3 - "$out" "$fabric" "$test" "$((b2 - b1))" "$((d2 - d1))" "$hz" <<'EOF'
import json, sys
path, fabric, test, busy, daemon, hz = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
d = json.load(open(path))
e = d['end']
secs = e['sum_received']['seconds'] if 'sum_received' in e else e['sum']['seconds']
cpu = e['cpu_utilization_percent']
client, server = cpu['host_total'], cpu['remote_total']
machine = 100.0 * busy / hz / secs
sw = 100.0 * daemon / hz / secs
kernel = max(machine - client - server - sw, 0.0)
if test == 'udp64':
    rate = e['sum_received']['bytes'] / 64.0 / secs / 1e3
    unit, per = 'kpps', 'us/pkt'
    cost = lambda pct: pct / 100.0 / (rate * 1e3) * 1e6
else:
    rate = e['sum_received']['bits_per_second'] / 1e9
    unit, per = 'Gbit/s', '%/Gbit'
    cost = lambda pct: pct / rate
print(f"{fabric:8s} {test:10s} {rate:8.2f} {unit:6s} | CPU %: client {client:5.1f} server {server:5.1f} "
      f"switch {sw:5.1f} kernel {kernel:5.1f} machine {machine:5.1f} | machine {cost(machine):6.2f} {per}, "
      f"switch {cost(sw):5.2f} {per}")
EOF
}

echo "# cpubudget $(date -u +%FT%TZ) $(nproc) CPUs, ${T}s per run, ${CC:-default} congestion control, netloom $NL_BIN"
for r in $(seq "$R"); do
    for test in udp64 tcp@1500 tcp@65520; do
        run bridge "$test"
        run netloom "$test"
    done
done
