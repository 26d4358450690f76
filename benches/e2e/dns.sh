#!/usr/bin/env bash
# DNS benchmark: dnsperf against netloom's embedded DNS server and against Podman's aardvark-dns,
# same records, same query mix, same client settings, in ONE run.
#
#   sudo benches/e2e/dns.sh                   # N=50 names, DURATION=10 s per server, CLIENTS=4
#   sudo INSTALL=1 benches/e2e/dns.sh         # apt-get install dnsperf aardvark-dns first
#
# Both servers answer on a loopback address of one private network namespace (`unshare -n`),
# so nothing touches the machine's network:
#   - netloom: a private daemon with `--host-dns 10.89.0.2:53` (the same hickory-based server
#     that answers 127.0.0.11 in containers and the gateway's :53), a network `benchnet` and N
#     containers `c1..cN` on it (real `sleep` processes, real endpoints);
#   - aardvark-dns 1.4 (`/usr/lib/podman/aardvark-dns`) on 10.89.0.1:53 with a config file for
#     `benchnet` listing the same names and addresses.
# Query mix (Q=queries file, generated): for every name, `cI A` twice, `cI AAAA` once (NOERROR,
# no data: both are IPv4-only), and the PTR of its address once. Nothing is forwarded upstream.
# Reported per server: queries per second, completed %, and latency percentiles p50/p90/p99/max
# computed from dnsperf's per-query (-v) output; then netloom's ratios to aardvark-dns.
# NO_BUILD=1 uses target/release/netloom (or NL_BIN) as is. OUT=/tmp/netloom-dns-bench.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${N:-50}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
OUT=${OUT:-/tmp/netloom-dns-bench.txt}
AARDVARK=${AARDVARK:-/usr/lib/podman/aardvark-dns}

if [ "${1:-}" != --inner ]; then
    [ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
    if [ "${INSTALL:-0}" = 1 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf aardvark-dns
    fi
    command -v dnsperf >/dev/null || { echo "dnsperf missing: INSTALL=1 $0, or apt-get install dnsperf" >&2; exit 1; }
    [ -x "$AARDVARK" ] || { echo "aardvark-dns missing at $AARDVARK: INSTALL=1 $0, or apt-get install aardvark-dns" >&2; exit 1; }
    if [ "${NO_BUILD:-0}" != 1 ]; then
        echo "== building netloom (release)" >&2
        (cd "$ROOT" && cargo build --release -p netloom) >&2
    fi
    export NL_BIN=${NL_BIN:-$ROOT/target/release/netloom}
    exec unshare -n -- "$0" --inner
fi

# ---- inside the private namespace --------------------------------------------------------------
dir=$(mktemp -d /tmp/netloom-dns-bench.XXXXXX)
sock=$dir/netloom.sock
pids=()
cleanup() {
    "$NL_BIN" -H "unix://$sock" rm -f $(seq -f 'c%g' 1 "$N") >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    pkill -f "aardvark-dns --config $dir" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

ip link set lo up
ip addr add 10.89.0.1/32 dev lo
ip addr add 10.89.0.2/32 dev lo

"$NL_BIN" daemon -H "unix://$sock" --data-root "$dir/data" --host-dns 10.89.0.2:53 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$dir/daemon.log" >&2; exit 1; }
nl() { "$NL_BIN" -H "unix://$sock" "$@"; }

echo "== $N containers on benchnet" >&2
nl network create --subnet 10.90.0.0/16 benchnet >/dev/null
mkdir -p "$dir/aardvark"
echo "10.89.0.1" >"$dir/aardvark/benchnet"
: >"$dir/queries"
for i in $(seq 1 "$N"); do
    id=$(nl run -d --network benchnet --name "c$i" -- sleep 3600)
    ip=$(nl inspect -f '{{.NetworkSettings.Networks.benchnet.IPAddress}}' "c$i")
    # containerID ipv4s ipv6s names (aardvark-dns 1.4 config format; no IPv6 list)
    echo "$id $ip  c$i,${id:0:12}" >>"$dir/aardvark/benchnet"
    IFS=. read -r a b c d <<<"$ip"
    printf 'c%s A\nc%s A\nc%s AAAA\n%s.%s.%s.%s.in-addr.arpa PTR\n' "$i" "$i" "$i" "$d" "$c" "$b" "$a" >>"$dir/queries"
done

"$AARDVARK" --config "$dir/aardvark" -p 53 run >"$dir/aardvark.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    dig +time=1 +tries=1 +short @10.89.0.1 c1 2>/dev/null | grep -q . && break
    sleep 0.1
done

# Both must give the same answers before they are timed.
for q in c1 "c$N"; do
    a=$(dig +short @10.89.0.1 "$q" A); n=$(dig +short @10.89.0.2 "$q" A)
    [ -n "$a" ] && [ "$a" = "$n" ] || { echo "servers disagree on $q: aardvark '$a' netloom '$n'" >&2; cat "$dir/aardvark.log" >&2; exit 1; }
done

# One dnsperf run against SERVER; prints "qps completed% p50 p90 p99 max" (latencies in ms).
perf() {
    local server=$1 raw=$dir/perf-$1.txt
    dnsperf -s "$server" -p 53 -d "$dir/queries" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -v >"$raw" 2>&1 || true
    local qps completed
    qps=$(awk '/Queries per second:/ {print $4}' "$raw")
    completed=$(awk '/Queries completed:/ {gsub(/[()%]/,"",$4); print $4}' "$raw")
    # verbose lines: "> NOERROR c1 A 0.000123" -> the last field is the latency in seconds
    awk '/^> / {print $NF * 1000}' "$raw" | sort -n >"$raw.lat"
    local n p50 p90 p99 max
    n=$(wc -l <"$raw.lat")
    if [ "$n" -eq 0 ]; then echo "$qps $completed - - - -"; return; fi
    p50=$(sed -n "$(( (n * 50 + 99) / 100 ))p" "$raw.lat")
    p90=$(sed -n "$(( (n * 90 + 99) / 100 ))p" "$raw.lat")
    p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$raw.lat")
    max=$(tail -n 1 "$raw.lat")
    echo "$qps $completed $p50 $p90 $p99 $max"
}

echo "== dnsperf: ${DURATION}s per server, $CLIENTS clients, $OUTSTANDING outstanding" >&2
read -r aq ac a50 a90 a99 amax <<<"$(perf 10.89.0.1)"
read -r nq nc n50 n90 n99 nmax <<<"$(perf 10.89.0.2)"
{
    echo "DNS benchmark $(date -u +%FT%TZ): $N names, query mix A/A/AAAA/PTR, ${DURATION}s, $CLIENTS clients, $OUTSTANDING outstanding, $(nproc) CPUs"
    printf '%-14s %12s %10s %9s %9s %9s %9s\n' server qps completed% p50_ms p90_ms p99_ms max_ms
    printf '%-14s %12s %10s %9s %9s %9s %9s\n' aardvark-dns "$aq" "$ac" "$a50" "$a90" "$a99" "$amax"
    printf '%-14s %12s %10s %9s %9s %9s %9s\n' netloom "$nq" "$nc" "$n50" "$n90" "$n99" "$nmax"
    awk -v a="$aq" -v n="$nq" -v a50="$a50" -v n50="$n50" -v a99="$a99" -v n99="$n99" 'BEGIN {
        if (a > 0) printf "netloom/aardvark: qps %.2fx", n / a;
        if (n50 > 0) printf ", p50 latency %.2fx lower", a50 / n50;
        if (n99 > 0) printf ", p99 latency %.2fx lower", a99 / n99;
        print "" }'
} | tee "$OUT"
