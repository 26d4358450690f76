#!/usr/bin/env bash
# DNS benchmark: dnsperf against netloom's embedded DNS server and against Podman's aardvark-dns,
# same records, same query mix, same client settings, in ONE run.
#
#   sudo benches/e2e/dns.sh                   # N=50 names, DURATION=10 s x REPEAT=3 rounds per server, CLIENTS=4
#   sudo INSTALL=1 benches/e2e/dns.sh         # apt-get install dnsperf aardvark-dns first
#   sudo QPS=20000 benches/e2e/dns.sh         # both servers at the same offered load (latency)
#   sudo PIN=0 benches/e2e/dns.sh             # let the scheduler place servers and dnsperf
#
# Both servers answer on a loopback address of one private network namespace (`unshare -n`),
# so nothing touches the machine's network:
#   - netloom: a private daemon with `--host-dns 10.89.0.2:53` (the same hickory-based server
#     that answers 127.0.0.11 in containers and the gateway's :53), a network `benchnet` and N
#     containers `c1..cN` on it (real `sleep` processes, real endpoints);
#   - aardvark-dns 1.4 (`/usr/lib/podman/aardvark-dns`) on 10.89.0.1:53 with a config file for
#     `benchnet` listing the same names and addresses (format: first line the listen address,
#     then `ID IPV4S IPV6S NAMES`, single spaces, so no IPv6 = two spaces). aardvark-dns answers
#     PTR only to a requester that is itself a container of the network (otherwise it forwards
#     the query upstream, which here times out), so the config also lists a pseudo-container
#     `benchclient` with 10.89.0.3, and dnsperf and dig send from 10.89.0.3 (`-a`/`-b`) to both
#     servers. aardvark-dns daemonizes itself; it is stopped by the PID in its aardvark.pid.
# Query mix (Q=queries file, generated): for every name, `cI A` twice, `cI AAAA` once (NOERROR,
# no data: both are IPv4-only), and the PTR of its address once. Nothing is forwarded upstream.
# Reported per server and round: queries per second, completed %, latency percentiles
# p50/p90/p99/max computed from dnsperf's per-query (-v) output ("> RCODE NAME TYPE SECONDS"), and
# the server process's CPU; then the medians of the rounds and netloom's ratios to aardvark-dns.
# dnsperf's own summaries are kept next to OUT (OUT minus .txt, + -dnsperf-SERVER-ROUND.txt).
# NO_BUILD=1 uses target/release/netloom (or NL_BIN) as is. OUT=/tmp/netloom-dns-bench.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${N:-50}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
# QPS=N caps dnsperf's rate (its -Q), to compare latencies at the same offered load rather than
# at each server's saturation; empty (default) = as fast as the server answers.
QPS=${QPS:-}
REPEAT=${REPEAT:-3}
# PIN=1 (default with 2 CPUs or more) runs both servers on CPU 0 and dnsperf on CPU 1, so the
# load generator never shares a CPU with the server it measures: on 2 vCPUs the scheduler
# otherwise puts them on one CPU now and then, and the latency tail is that wait (2026-12-08:
# netloom's p99 at 93k qps 1.04 ms unpinned, 0.55 ms pinned). Pinned, each server has one CPU:
# netloom's runtime then starts one worker thread, aardvark-dns's likewise. PIN=0: unpinned.
if [ "$(nproc)" -ge 2 ]; then PIN=${PIN:-1}; else PIN=${PIN:-0}; fi
OUT=${OUT:-/tmp/netloom-dns-bench.txt}
AARDVARK=${AARDVARK:-/usr/lib/podman/aardvark-dns}

if [ "${1:-}" != --inner ]; then
    [ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
    if [ "${INSTALL:-0}" = 1 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf aardvark-dns
    fi
    command -v dnsperf >/dev/null || { echo "dnsperf missing: INSTALL=1 $0, or apt-get install dnsperf" >&2; exit 1; }
    [ -x "$AARDVARK" ] || { echo "aardvark-dns missing at $AARDVARK: INSTALL=1 $0, or apt-get install aardvark-dns" >&2; exit 1; }
    . "$HERE/build.sh"
    exec unshare -n -- "$0" --inner
fi

# ---- inside the private namespace --------------------------------------------------------------
server_pin=(); client_pin=()
if [ "$PIN" = 1 ]; then
    [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs 2 CPUs" >&2; exit 1; }
    server_pin=(taskset -c 0); client_pin=(taskset -c 1)
fi
dir=$(mktemp -d /tmp/netloom-dns-bench.XXXXXX)
sock=$dir/netloom.sock
pids=()
cleanup() {
    "$NL_BIN" -H "unix://$sock" rm -f $(seq -f 'c%g' 1 "$N") >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    local ap
    ap=$(cat "$dir/aardvark/aardvark.pid" 2>/dev/null || true)
    if [ -n "$ap" ] && [ "$(cat "/proc/$ap/comm" 2>/dev/null)" = aardvark-dns ]; then kill "$ap" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

ip link set lo up
ip addr add 10.89.0.1/32 dev lo
ip addr add 10.89.0.2/32 dev lo
ip addr add 10.89.0.3/32 dev lo   # the client (a pseudo-container in aardvark's config)
SRC=10.89.0.3

"${server_pin[@]}" "$NL_BIN" daemon -H "unix://$sock" --data-root "$dir/data" --host-dns 10.89.0.2:53 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$dir/daemon.log" >&2; exit 1; }
nl() { "$NL_BIN" -H "unix://$sock" "$@"; }

echo "== $N containers on benchnet" >&2
nl network create --subnet 10.90.0.0/16 benchnet >/dev/null
mkdir -p "$dir/aardvark"
echo "10.89.0.1" >"$dir/aardvark/benchnet"
echo "$(printf 'f%.0s' $(seq 64)) $SRC  benchclient" >>"$dir/aardvark/benchnet"
: >"$dir/queries"
for i in $(seq 1 "$N"); do
    id=$(nl run -d --network benchnet --name "c$i" -- sleep 3600)
    ip=$(nl inspect -f '{{.NetworkSettings.Networks.benchnet.IPAddress}}' "c$i")
    # containerID ipv4s ipv6s names (aardvark-dns 1.4 config format; no IPv6 list)
    echo "$id $ip  c$i,${id:0:12}" >>"$dir/aardvark/benchnet"
    IFS=. read -r a b c d <<<"$ip"
    printf 'c%s A\nc%s A\nc%s AAAA\n%s.%s.%s.%s.in-addr.arpa PTR\n' "$i" "$i" "$i" "$d" "$c" "$b" "$a" >>"$dir/queries"
done

# aardvark-dns forks into the background once it serves (the parent exits)
"${server_pin[@]}" timeout 20 "$AARDVARK" --config "$dir/aardvark" -p 53 run >"$dir/aardvark.log" 2>&1 || true
for _ in $(seq 100); do
    dig +time=1 +tries=1 +short -b $SRC @10.89.0.1 c1 2>/dev/null | grep -q . && break
    sleep 0.1
done

# Both must give the same answers before they are timed. PTR: the names differ by design
# (aardvark-dns: `cI.` and the short id; netloom, like Docker: `cI.benchnet.`), so both must
# answer with a name that starts with `cI.`.
q1() { dig +time=1 +tries=1 +short -b $SRC "@$1" "${@:2}" 2>/dev/null | sort | head -1; }
for q in c1 "c$N"; do
    a=$(q1 10.89.0.1 "$q" A); n=$(q1 10.89.0.2 "$q" A)
    [ -n "$a" ] && [ "$a" = "$n" ] || { echo "servers disagree on $q: aardvark '$a' netloom '$n'" >&2; cat "$dir/aardvark.log" >&2; exit 1; }
    a=$(dig +time=1 +tries=1 +short -b $SRC @10.89.0.1 -x "$n" 2>/dev/null | grep "^$q\." || true)
    p=$(dig +time=1 +tries=1 +short -b $SRC @10.89.0.2 -x "$n" 2>/dev/null | grep "^$q\." || true)
    [ -n "$a" ] && [ -n "$p" ] || { echo "a server does not answer PTR $n: aardvark '$a' netloom '$p'" >&2; exit 1; }
    a=$(dig +time=1 +tries=1 -b $SRC @10.89.0.1 "$q" AAAA 2>/dev/null | grep -o 'status: [A-Z]*')
    p=$(dig +time=1 +tries=1 -b $SRC @10.89.0.2 "$q" AAAA 2>/dev/null | grep -o 'status: [A-Z]*')
    [ "$a" = "$p" ] || echo "note: AAAA $q: aardvark '$a' netloom '$p'" >&2
done

# One dnsperf run against SERVER (PID: its process, for CPU); prints
# "qps completed% p50 p90 p99 max cpu%" (latencies in ms, CPU in % of one core).
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
perf() {
    local server=$1 pid=$2 round=$3 raw=$dir/perf-$1.txt t0 t1 w0 w1 cpu
    t0=$(ticks "$pid"); w0=$(date +%s.%N)
    "${client_pin[@]}" timeout $((DURATION + 30)) dnsperf -s "$server" -a $SRC -p 53 -d "$dir/queries" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" ${QPS:+-Q "$QPS"} -v >"$raw" 2>&1 || true
    t1=$(ticks "$pid"); w1=$(date +%s.%N)
    cpu=$(awk -v a="$t0" -v b="$t1" -v c="$w0" -v d="$w1" -v hz="$HZ" 'BEGIN{printf "%.0f", (b-a)*100/hz/(d-c)}')
    # dnsperf's own summary (everything but the per-query lines), kept next to OUT
    grep -v '^> ' "$raw" >"${OUT%.txt}-dnsperf-$server-$round.txt" 2>/dev/null || true
    local qps completed
    qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$raw")
    completed=$(awk '/Queries completed:/ {gsub(/[()%]/,"",$4); print $4}' "$raw")
    # verbose lines: "> NOERROR c1 A 0.000123" -> the last field is the latency in seconds
    awk '/^> / {print $NF * 1000}' "$raw" | sort -n >"$raw.lat"
    local n p50 p90 p99 max
    n=$(wc -l <"$raw.lat")
    if [ "$n" -eq 0 ]; then echo "${qps:-0} ${completed:--} - - - - $cpu"; return; fi
    p50=$(sed -n "$(( (n * 50 + 99) / 100 ))p" "$raw.lat")
    p90=$(sed -n "$(( (n * 90 + 99) / 100 ))p" "$raw.lat")
    p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$raw.lat")
    max=$(tail -n 1 "$raw.lat")
    echo "$qps $completed $p50 $p90 $p99 $max $cpu"
}

APID=$(cat "$dir/aardvark/aardvark.pid")
NPID=${pids[0]}
echo "== dnsperf: ${DURATION}s per server, $CLIENTS clients, $OUTSTANDING outstanding, $REPEAT rounds" >&2
: >"$dir/rounds"
for r in $(seq 1 "$REPEAT"); do
    # alternate which server goes first, so a slow spell of the shared machine hits both
    if [ $((r % 2)) = 1 ]; then order="aardvark netloom"; else order="netloom aardvark"; fi
    for who in $order; do
        case $who in
            aardvark) line=$(perf 10.89.0.1 "$APID" "$r") ;;
            netloom)  line=$(perf 10.89.0.2 "$NPID" "$r") ;;
        esac
        echo "$who $r $line" >>"$dir/rounds"
        echo "  round $r $who: $line" >&2
    done
done
{
    echo "DNS benchmark $(date -u +%FT%TZ): $N names, query mix A/A/AAAA/PTR, ${DURATION}s x $REPEAT rounds per server (alternating order), $CLIENTS clients, $OUTSTANDING outstanding${QPS:+, rate capped at $QPS qps}, $(nproc) CPUs$([ "$PIN" = 1 ] && echo ", servers pinned to CPU 0 and dnsperf to CPU 1")"
    echo "(qps and latencies: median of the rounds; cpu = the server process, % of one core)"
    printf '%-14s %5s %9s %10s %8s %8s %8s %8s %6s\n' server round qps completed% p50_ms p90_ms p99_ms max_ms cpu%
    sort -k1,1 -k2n "$dir/rounds" | awk '{printf "%-14s %5s %9s %10s %8s %8s %8s %8s %6s\n", ($1=="aardvark"?"aardvark-dns":$1), $2, $3, $4, $5, $6, $7, $8, $9}'
    awk '
        function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                       return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        { k = $1; c[k]++; for (f = 3; f <= 9; f++) v[k, f, c[k]] = $f }
        END {
            for (k in c) for (f = 3; f <= 9; f++) { delete t; for (i = 1; i <= c[k]; i++) t[i] = v[k, f, i] + 0; m[k, f] = med(t, c[k]) }
            for (s = 0; s < 2; s++) { k = s ? "netloom" : "aardvark"
                printf "%-14s %5s %9.0f %10.2f %8.3f %8.3f %8.3f %8.3f %6.0f\n", (s ? "netloom" : "aardvark-dns"), "med", m[k,3], m[k,4], m[k,5], m[k,6], m[k,7], m[k,8], m[k,9] }
            if (m["aardvark",3] > 0) printf "netloom/aardvark (medians): qps %.2fx", m["netloom",3] / m["aardvark",3]
            for (f = 5; f <= 7; f++) if (m["netloom",f] > 0) printf ", p%s latency %.2fx lower", (f == 5 ? "50" : f == 6 ? "90" : "99"), m["aardvark",f] / m["netloom",f]
            if (m["netloom",3] > 0 && m["aardvark",3] > 0 && m["netloom",9] > 0 && m["aardvark",9] > 0)
                printf ", CPU per query %.2fx", (m["netloom",9] / m["netloom",3]) / (m["aardvark",9] / m["aardvark",3])
            print ""
        }' "$dir/rounds"
} | tee "$OUT"
