#!/usr/bin/env bash
# Scale benchmark: N containers on one network, then NETS networks, against one private daemon.
#
#   sudo benches/e2e/scale.sh                          # N=1000, NETS=100, PER_NET=2: 2-5 min on 2 vCPUs
#   sudo N=200 NETS=20 benches/e2e/scale.sh            # a quick look
#   sudo NO_BUILD=1 NL_BIN=/path/to/netloom PAR=4 benches/e2e/scale.sh
#
# Phase 1, one big network: `network create --subnet 10.200.0.0/16 big`, then N real containers
#   `netloom run -d --network big --name cK -- sleep infinity` (create + start + attach: the
#   daemon makes the namespace, the TAP, the address and route, the DNS server, and spawns the
#   shim), in chunks of CHUNK, each chunk PAR at a time (PAR=1: strictly one after another, so
#   the per-container times are latencies; PAR>1: xargs -P, then total/N is the throughput).
#   After every chunk: the chunk's mean time, the daemon's CPU per container and its VmRSS /
#   RssAnon / fds / threads, so growth with size (an O(n^2) path) shows as a rising per-chunk mean.
#   At size: DNS (dig @127.0.0.11 from c1's namespace for c1, c(N/2), cN, compared with inspect;
#   `netloom exec c1 getent hosts cN`, the container's own resolv.conf path; dnsperf over all N
#   names for DNS_T seconds, also run once after the first chunk to compare), forwarding (ping
#   c1 -> c(N/2) and cN by address, `netloom exec c1 ping cN` by name, iperf3 c1 -> cN for 2 s),
#   then ATTACH_N namespaces made here (`ip netns add nl-scale-aK`) plugged into `big` with
#   `netloom attach --netns` (the cheaper path: no shim, no DNS server), timed, and detached.
#   Teardown: `rm -f` of all containers (100 names per command), `network rm big`.
# Phase 2, many networks: NETS networks `netK` (10.201.K.0/24), each with PER_NET containers
#   `nK-1..`, timed per network create and per container; daemon memory per network (empty) and
#   per network with its containers; in the first, middle and last network: DNS (nK-2 from nK-1)
#   and ping, and isolation (nK-1 must neither resolve nor reach a container of another network).
#   Teardown timed; then the daemon's RSS and fds with nothing left, against its start.
# Memory: daemon VmRSS and RssAnon (anonymous memory, the part that grows per endpoint) from
#   /proc/PID/status; the shims (`netloom _shim`, one per container) summed separately as RSS
#   and PSS (smaps_rollup: their 89 MB binary is shared, so RSS over-counts); MemAvailable's
#   drop (kernel: TAPs, namespaces, sockets; noisy on a shared machine) for reference.
#
# Knobs: N=1000 NETS=100 PER_NET=2 (>= 2 for the east-west checks) CHUNK=100 PAR=1
#   ATTACH_N=100 (0 skips) DNS_T=3 (dnsperf seconds, 0 skips) IPERF=1 PHASES="1 2"
#   TRIM=1 (call malloc_trim(0) in the daemon through gdb, see trim_row; 0 skips)
#   OUT=/tmp/netloom-scale-results.txt NO_BUILD=1 (use target/release/netloom or NL_BIN).
#
# Safety: the daemon runs under `unshare -n` (its own empty network namespace) with a
# temporary socket and data root (/tmp/nl-scale.XXXXXX); the containers' namespaces are made by
# the daemon; the only namespaces made here are nl-scale-a* (`ip netns add`); the root
# namespace's interfaces are never touched and no packet leaves these namespaces (10.200.0.0/16
# and 10.201.0.0/16 exist only on the userspace switch). Every command is bounded by `timeout`.
# The EXIT trap (also on failure and Ctrl-C) kills the running phase, the iperf3 server it
# started, the daemon by its PID, then the shims of this data root (each shim is its own process
# group: the group is killed, the command with it), deletes nl-scale-a*, removes the directory,
# and says whether anything is left. A failing phase is reported in the table (PHASE FAILED) and
# the next one still runs; the table so far is written to OUT even when the run is cut short, and
# the daemon's log and the clients' errors are kept in OUT minus .txt + -daemon.log.
# Not part of the test suite: nothing calls this but a person.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }

N=${N:-1000}
NETS=${NETS:-100}
PER_NET=${PER_NET:-2}
CHUNK=${CHUNK:-100}
PAR=${PAR:-1}
ATTACH_N=${ATTACH_N:-100}
DNS_T=${DNS_T:-3}
IPERF=${IPERF:-1}
PHASES=${PHASES:-"1 2"}
OUT=${OUT:-/tmp/netloom-scale-results.txt}
[ "$NETS" -le 254 ] || { echo "NETS must be <= 254 (10.201.K.0/24)" >&2; exit 1; }
[ "$N" -ge 3 ] && [ "$PER_NET" -ge 2 ] || { echo "need N >= 3 and PER_NET >= 2" >&2; exit 1; }

. "$HERE/build.sh"
[ -x "$NL_BIN" ] || { echo "no netloom binary at $NL_BIN" >&2; exit 1; }

DIR=$(mktemp -d /tmp/nl-scale.XXXXXX)
SOCK=$DIR/netloom.sock
DPID=""
PHASE_PID=""
TABLE=$DIR/table
: >"$TABLE"
export NL_BIN SOCK DIR

nl() { timeout 60 "$NL_BIN" -H "unix://$SOCK" "$@"; }
say() { echo "== $*" >&2; }
row() { printf '%-8s %-46s %s\n' "$1" "$2" "$3" | tee -a "$TABLE" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- cleanup -----------------------------------------------------------------------------------
shim_pids() {  # the shims of THIS data root (their args name files under it)
    # (field 3, not a regexp over the line: this awk's own arguments contain both strings)
    ps -eo pid=,args= | awk -v d="$DIR/data/" '$3 == "_shim" && index($0, d) { print $1 }'
}
cleanup() {
    local rc=$? p i left
    set +e
    trap - EXIT INT TERM
    # the iperf3 server's `timeout` (its own process group), if a phase was cut short
    p=$(cat "$DIR/iperf.pid" 2>/dev/null); [ -n "$p" ] && kill "$p" 2>/dev/null
    # the running phase first (its in-flight commands are bounded and fail once the daemon is
    # gone), then the daemon, so that no new shim can appear after the shims are listed
    [ -n "$PHASE_PID" ] && kill "$PHASE_PID" 2>/dev/null
    # and the commands it was running that name this run's directory (netloom clients, dnsperf):
    # each runs under `timeout`, in a process group of its own, so a Ctrl-C does not reach them
    for p in $(ps -eo pid=,args= | awk -v d="$DIR/" -v dp="$DPID" \
        'index($0, d) && $1 != dp && $2 != "awk" && $3 != "_shim" { print $1 }'); do
        kill "$p" 2>/dev/null
    done
    if [ -n "$DPID" ] && [ "$(cat "/proc/$DPID/comm" 2>/dev/null)" = "$(basename "$NL_BIN" | cut -c1-15)" ]; then
        kill "$DPID" 2>/dev/null
        for i in $(seq 1 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        [ "$(cat "/proc/$DPID/comm" 2>/dev/null)" = "$(basename "$NL_BIN" | cut -c1-15)" ] && kill -KILL "$DPID" 2>/dev/null
    fi
    # each shim is a session and process-group leader: killing the group ends its command too
    for p in $(shim_pids); do kill -KILL -- "-$p" 2>/dev/null; done
    wait 2>/dev/null
    for p in $(ip netns list 2>/dev/null | awk '/^nl-scale-/{print $1}'); do ip netns del "$p"; done
    # the daemon's log and the clients' errors, kept when anything failed
    if [ -s "$DIR/failed" ] || [ ! -s "$DIR/done" ]; then
        cat "$DIR/daemon.log" "$DIR"/*-errors.log >"${OUT%.txt}-daemon.log" 2>/dev/null &&
            echo "daemon log and client errors kept in ${OUT%.txt}-daemon.log" >&2
    fi
    # whatever was printed so far, even after a failure
    if [ -s "$TABLE" ] && [ ! -s "$DIR/done" ]; then
        { echo "netloom scale run (INCOMPLETE, exit $rc) $(date -u +%FT%TZ)"; cat "$TABLE"; } >"$OUT"
        echo "partial table written to $OUT" >&2
    fi
    sleep 0.5
    left=$(shim_pids | wc -l)
    rm -rf "$DIR"
    if [ "$left" = 0 ] && ! ip netns list 2>/dev/null | grep -q '^nl-scale-' &&
        ! pgrep -f -- "$DIR/" >/dev/null && ! { [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; } && [ ! -e "$DIR" ]; then
        echo "cleanup: nothing left (no shim, no daemon, no nl-scale-* namespace, no $DIR)" >&2
    else
        echo "cleanup: WARNING something is left: $(pgrep -af -- "$DIR/" | head -5) $(ip netns list | grep nl-scale- | head -3)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# ---- daemon and measurements -------------------------------------------------------------------
unshare -n -- "$NL_BIN" daemon -H "unix://$SOCK" --data-root "$DIR/data" -l warn \
    </dev/null >"$DIR/daemon.log" 2>&1 &
DPID=$!   # unshare execs, so this is the daemon
for _ in $(seq 1 200); do nl network ls >/dev/null 2>&1 && break; sleep 0.05; done
nl network ls >/dev/null 2>&1 || { cat "$DIR/daemon.log" >&2; exit 1; }

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$DPID/status"; }
fds() { find "/proc/$DPID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$DPID/stat"; }
memavail() { awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo; }
shims() {  # "count rss_kib pss_kib" of this data root's shims
    local p
    p=$(shim_pids)
    [ -z "$p" ] && { echo "0 0 0"; return; }
    # shellcheck disable=SC2086
    echo "$(echo "$p" | wc -l) $(echo "$p" | sed 's|.*|/proc/&/status|' | xargs cat 2>/dev/null |
        awk '$1 == "VmRSS:" { s += $2 } END { print s + 0 }') $(echo "$p" | sed 's|.*|/proc/&/smaps_rollup|' |
        xargs cat 2>/dev/null | awk '$1 == "Pss:" { s += $2 } END { print s + 0 }')"
}
snap() {  # "rss anon fds threads cpu_ms"
    echo "$(kib VmRSS) $(kib RssAnon) $(fds) $(kib Threads) $(cpu_ms)"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f KiB", (b - a) / n }'; }
stats() {  # FILE of "ms" lines -> "median p90 p99 max mean"
    sort -n "$1" | awk '{ v[NR] = $1; s += $1 } END {
        if (NR == 0) { print "- - - - -"; exit }
        printf "%d %d %d %d %.1f", v[int((NR + 1) / 2)], v[int((NR * 90 + 99) / 100)], v[int((NR * 99 + 99) / 100)], v[NR], s / NR }'
}
# one timed `run -d`: NAME NETWORK -> "NAME ms rc" (stderr to DIR/run-errors.log); used by xargs
one_run() {
    local t0 t1 rc=0
    t0=$(date +%s%N)
    timeout 60 "$NL_BIN" -H "unix://$SOCK" run -d --network "$2" --name "$1" -- sleep infinity \
        >/dev/null 2>>"$DIR/run-errors.log" || rc=$?
    t1=$(date +%s%N)
    echo "$1 $(((t1 - t0) / 1000000)) $rc"
}
export -f one_run
run_many() {  # NETWORK NAME... : PAR at a time; appends "NAME ms rc" lines to DIR/runs
    local net=$1; shift
    printf '%s\n' "$@" | xargs -P "$PAR" -I{} bash -c 'one_run "$1" "$2"' _ {} "$net" >>"$DIR/runs"
}
ip_of() { nl inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }  # one network each
pid_of() { nl inspect -f '{{.State.Pid}}' "$1"; }
in_ns() { local p=$1; shift; timeout 20 nsenter -n -t "$p" "$@"; }
dig1() {  # PID NAME -> "ADDRESS QUERY_MS" (the server's answer time as dig measures it)
    in_ns "$1" dig +time=2 +tries=1 +noall +answer +stats @127.0.0.11 "$2" A 2>/dev/null |
        awk '$4 == "A" && !a { a = $5 } /Query time:/ { t = $4 "" } END { print (a ? a : "none"), (t != "" ? t : "-") }' || true
}
ping3() {  # PID IP -> "ok rtt_min/avg/max ms" or "FAILED"
    local o
    o=$(in_ns "$1" ping -n -c 3 -i 0.2 -W 2 "$2" 2>&1) || { echo "FAILED ($(echo "$o" | tail -2 | tr '\n' ' '))"; return; }
    echo "ok $(echo "$o" | awk -F'[ /]' '/^rtt/ { print $7 "/" $8 "/" $9 " ms" }') (first includes ARP)"
}
dnsperf_in() {  # PID QUERYFILE -> "qps completed%"
    command -v dnsperf >/dev/null || { echo "- (no dnsperf)"; return; }
    [ "$DNS_T" -gt 0 ] || { echo "- (DNS_T=0)"; return; }
    timeout $((DNS_T + 15)) nsenter -n -t "$1" dnsperf -s 127.0.0.11 -d "$2" -l "$DNS_T" -c 2 -q 50 >"$DIR/dnsperf.out" 2>&1 || true
    awk '/Queries per second:/ { q = $4 } /Queries completed:/ { gsub(/[()%]/, "", $4); c = $4 }
         END { printf "%.0f qps, %s%% completed", q, c }' "$DIR/dnsperf.out"
}

# How much of RssAnon is live: glibc keeps freed memory in its per-thread arenas, so RSS is a
# high-water mark. `malloc_trim(0)` called in the daemon through gdb (TRIM=1, if gdb exists; it
# stops the daemon for a moment) returns what is free; RssAnon after it ~ live memory.
trim_row() {  # PHASE WHEN ENDPOINTS
    [ "${TRIM:-1}" = 1 ] && command -v gdb >/dev/null || return 0
    local b a
    b=$(kib RssAnon)
    timeout 60 gdb -p "$DPID" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
    a=$(kib RssAnon)
    row "$1" "RssAnon $2, before -> after malloc_trim(0)" "$(mib "$b") -> $(mib "$a")$( [ "$3" -gt 0 ] && echo " = $(per "$A0" "$a" "$3") live per endpoint")"
}

HZ_NOTE="$(nproc) CPUs, load $(uptime | sed 's/.*load average: //')"
say "netloom $("$NL_BIN" --version | head -1), daemon pid $DPID, $HZ_NOTE, N=$N NETS=$NETS PER_NET=$PER_NET PAR=$PAR"
read -r R0 A0 F0 T0 C0 <<<"$(snap)"
M0=$(memavail)
row start "daemon VmRSS / RssAnon / fds / threads" "$(mib "$R0") / $(mib "$A0") / $F0 / $T0 (fd limit $(awk '/Max open files/ { print $4 }' "/proc/$DPID/limits"))"

# ---- phase 1: N containers on one network ------------------------------------------------------
phase1() {
    local t0 t1 k hi names r a f th c chunk_ms cnt bad
    t0=$(now_ms)
    nl network create --subnet 10.200.0.0/16 big >/dev/null
    row 1 "network create big (10.200.0.0/16)" "$(($(now_ms) - t0)) ms"
    : >"$DIR/runs"
    printf '%-8s %-46s %s\n' 1 "checkpoint: containers: run -d mean ms" "daemon CPU ms/container / VmRSS / RssAnon / fds / threads" | tee -a "$TABLE" >&2
    local c0 w0 wall=0 dcpu=0
    c0=$(cpu_ms)
    k=0
    while [ "$k" -lt "$N" ]; do
        hi=$((k + CHUNK)); [ "$hi" -gt "$N" ] && hi=$N
        names=(); for ((i = k + 1; i <= hi; i++)); do names+=("c$i"); done
        w0=$(now_ms)
        run_many big "${names[@]}"
        wall=$((wall + $(now_ms) - w0))
        read -r r a f th c <<<"$(snap)"
        dcpu=$((dcpu + c - c0))
        chunk_ms=$(tail -n $((hi - k)) "$DIR/runs" | awk '{ s += $2 } END { printf "%.1f", s / NR }')
        printf '%-8s %-46s %s\n' 1 "  $hi: $chunk_ms ms" "$(awk -v a="$c0" -v b="$c" -v n=$((hi - k)) 'BEGIN { printf "%.1f", (b - a) / n }') / $(mib "$r") / $(mib "$a") / $f / $th" | tee -a "$TABLE" >&2
        c0=$c
        if [ "$hi" = "$CHUNK" ] || { [ "$hi" -lt "$CHUNK" ] && [ "$hi" = "$N" ]; }; then
            # DNS throughput and ping while small, to compare with the same tests at size
            seq -f 'c%g A' 1 "$hi" >"$DIR/q-small"
            DNS_SMALL="$(dnsperf_in "$(pid_of c1)" "$DIR/q-small") ($hi names)"
            PING_SMALL="$(ping3 "$(pid_of c1)" "$(ip_of "c$hi" big)") (c1 -> c$hi at $hi)"
            c0=$(cpu_ms)
        fi
        k=$hi
    done
    bad=$(awk '$3 != 0' "$DIR/runs" | wc -l)
    cnt=$(awk '$3 == 0' "$DIR/runs" | wc -l)
    awk '$3 == 0 { print $2 }' "$DIR/runs" >"$DIR/ms"
    read -r med p90 p99 max mean <<<"$(stats "$DIR/ms")"
    row 1 "containers running / failed" "$cnt / $bad$( [ "$bad" -gt 0 ] && echo " (first error: $(head -1 "$DIR/run-errors.log"))")"
    row 1 "run -d x$N wall (PAR=$PAR; checks excluded)" "$(awk -v w="$wall" -v n="$N" 'BEGIN { printf "%.1f s = %.1f ms per container", w / 1000, w / n }')"
    row 1 "per run -d: median / p90 / p99 / max / mean" "$med / $p90 / $p99 / $max / $mean ms"
    row 1 "per run -d: first $CHUNK vs last $CHUNK mean" "$(head -n "$CHUNK" "$DIR/runs" | awk '{ s += $2 } END { printf "%.1f", s / NR }') vs $(tail -n "$CHUNK" "$DIR/runs" | awk '{ s += $2 } END { printf "%.1f", s / NR }') ms"
    row 1 "daemon CPU per container start" "$(awk -v c="$dcpu" -v n="$N" 'BEGIN { printf "%.1f ms (%d ms total)", c / n, c }')"
    read -r r a f th c <<<"$(snap)"
    local sh_n sh_rss sh_pss m1
    read -r sh_n sh_rss sh_pss <<<"$(shims)"
    m1=$(memavail)
    row 1 "daemon VmRSS start -> $cnt endpoints" "$(mib "$R0") -> $(mib "$r") = $(per "$R0" "$r" "$cnt") per endpoint"
    row 1 "daemon RssAnon start -> $cnt endpoints" "$(mib "$A0") -> $(mib "$a") = $(per "$A0" "$a" "$cnt") per endpoint"
    row 1 "daemon fds / threads" "$F0 -> $f ($(awk -v a="$F0" -v b="$f" -v n="$cnt" 'BEGIN { printf "%.1f", (b - a) / n }') per endpoint) / $T0 -> $th"
    row 1 "shims: count / RSS sum / PSS sum" "$sh_n / $(mib "$sh_rss") / $(mib "$sh_pss") = $(per 0 "$sh_pss" "$cnt") PSS per container"
    row 1 "MemAvailable drop (whole machine, noisy)" "$(mib $((M0 - m1))) = $(per "$m1" "$M0" "$cnt") per container (kernel+shims+sleep+daemon)"

    # ---- at size: DNS and forwarding
    local mid=$((N / 2)) p1 pm pn ipm ipn ip1 got okc=0
    p1=$(pid_of c1); pm=$(pid_of "c$mid"); pn=$(pid_of "c$N")
    ip1=$(ip_of c1 big); ipm=$(ip_of "c$mid" big); ipn=$(ip_of "c$N" big)
    local res=""
    for q in "c1:$ip1" "c$mid:$ipm" "c$N:$ipn"; do
        read -r got t1 <<<"$(dig1 "$p1" "${q%%:*}")"
        [ "$got" = "${q#*:}" ] && okc=$((okc + 1))
        res+="${q%%:*}=$got ($t1 ms) "
    done
    row 1 "DNS from c1 @127.0.0.11: $okc/3 correct" "$res"
    got=$(nl exec c1 getent hosts "c$N" 2>&1 | awk '{ print $1 }' | head -1) || true
    row 1 "exec c1 getent hosts c$N (resolv.conf)" "$( [ "$got" = "$ipn" ] && echo "ok $got" || echo "FAILED: '$got' expected $ipn")"
    seq -f 'c%g A' 1 "$N" >"$DIR/q-all"
    row 1 "dnsperf from c1, all $N names, ${DNS_T}s" "$(dnsperf_in "$p1" "$DIR/q-all") (after first chunk: ${DNS_SMALL:-not run})"
    row 1 "ping while small (after first chunk)" "${PING_SMALL:-not run}"
    row 1 "ping c1 -> c$mid ($ipm)" "$(ping3 "$p1" "$ipm")"
    row 1 "ping c1 -> c$N ($ipn)" "$(ping3 "$p1" "$ipn")"
    row 1 "ping c$N -> c1 ($ip1)" "$(ping3 "$pn" "$ip1")"
    got=$(nl exec c1 ping -n -c 2 -i 0.2 -W 2 "c$N" 2>&1 | tail -1) || true
    row 1 "exec c1 ping -c 2 c$N (by name)" "${got:-FAILED}"
    if [ "$IPERF" = 1 ] && command -v iperf3 >/dev/null; then
        in_ns "$pn" iperf3 -s -1 -B "$ipn" -p 5201 >/dev/null 2>&1 &
        IPERF_PID=$!; echo "$IPERF_PID" >"$DIR/iperf.pid"   # for the EXIT trap (phases are subshells)
        sleep 0.5
        got=$(in_ns "$p1" timeout 15 iperf3 -c "$ipn" -p 5201 -t 2 -J 2>/dev/null |
            awk -F: '/"sum_received"/ { s = 1 } s && /"bits_per_second"/ { gsub(/[ ,\t]/, "", $2); printf "%.2f Gbit/s", $2 / 1e9; exit }') || true
        row 1 "iperf3 c1 -> c$N, 2 s, TCP" "${got:-FAILED}"
        wait "$IPERF_PID" 2>/dev/null || true; IPERF_PID=""; rm -f "$DIR/iperf.pid"
    fi
    nl stats --format json >"$DIR/stats1.json" 2>/dev/null || nl stats >"$DIR/stats1.json" 2>&1 || true
    row 1 "switch drops / refusals at size (stats)" "$(tr -d ' \n' <"$DIR/stats1.json" | grep -o '"Drops":{[^}]*},"Refusals":{[^}]*}' ||
        tr -s ' \n' ' ' <"$DIR/stats1.json" | head -c 200)"

    # ---- the cheaper path: attach namespaces made here
    if [ "$ATTACH_N" -gt 0 ]; then
        : >"$DIR/att"
        read -r r a f th c <<<"$(snap)"
        for ((i = 1; i <= ATTACH_N; i++)); do
            timeout 10 ip netns add "nl-scale-a$i"
            t0=$(date +%s%N)
            nl attach --name "a$i" --netns "/run/netns/nl-scale-a$i" big >/dev/null 2>>"$DIR/attach-errors.log" &&
                echo "$((($(date +%s%N) - t0) / 1000000))" >>"$DIR/att" || echo "attach a$i failed" >&2
        done
        local ra aa
        read -r ra aa f th c <<<"$(snap)"
        read -r med p90 p99 max mean <<<"$(stats "$DIR/att")"
        row 1 "attach --netns x$ATTACH_N (at $N): ok" "$(wc -l <"$DIR/att"); median / p99 / mean $med / $p99 / $mean ms; RssAnon +$(per "$a" "$aa" "$ATTACH_N")/endpoint"
        got=$(timeout 20 ip netns exec "nl-scale-a$ATTACH_N" ping -n -c 2 -i 0.2 -W 2 "$ip1" 2>&1 | tail -1) || true
        row 1 "ping a$ATTACH_N -> c1" "${got:-FAILED}"
        t0=$(now_ms)
        for ((i = 1; i <= ATTACH_N; i++)); do nl detach "a$i" >/dev/null 2>&1 || echo "detach a$i failed" >&2; done
        row 1 "detach x$ATTACH_N" "$(awk -v w="$(($(now_ms) - t0))" -v n="$ATTACH_N" 'BEGIN { printf "%.1f ms each", w / n }')"
        for ((i = 1; i <= ATTACH_N; i++)); do timeout 10 ip netns del "nl-scale-a$i"; done
    fi

    trim_row 1 "at $N + $ATTACH_N detached" "$N"

    # ---- teardown
    t0=$(now_ms)
    k=0
    while [ "$k" -lt "$N" ]; do
        hi=$((k + 100)); [ "$hi" -gt "$N" ] && hi=$N
        timeout 300 "$NL_BIN" -H "unix://$SOCK" rm -f $(seq -f 'c%g' $((k + 1)) "$hi") >/dev/null 2>>"$DIR/rm-errors.log" ||
            echo "rm -f c$((k + 1))..c$hi reported errors: $(grep -v '^$' "$DIR/rm-errors.log" | tail -1)" >&2
        k=$hi
    done
    t1=$(now_ms)
    row 1 "rm -f x$N (100 per command)" "$(awk -v w="$((t1 - t0))" -v n="$N" 'BEGIN { printf "%.1f s = %.1f ms per container", w / 1000, w / n }')"
    t0=$(now_ms); nl network rm big >/dev/null; row 1 "network rm big" "$(($(now_ms) - t0)) ms"
    sleep 1
    read -r r a f th c <<<"$(snap)"
    read -r sh_n sh_rss sh_pss <<<"$(shims)"
    row 1 "after teardown: VmRSS / RssAnon / fds / threads / shims" "$(mib "$r") / $(mib "$a") / $f / $th / $sh_n (ps -a: $(nl ps -aq | wc -l))"
    trim_row 1 "after teardown" 0
}

# ---- phase 2: NETS networks --------------------------------------------------------------------
phase2() {
    local t0 k r a f th c r1 a1 f1 r2 a2 f2 j names=()
    read -r r a f th c <<<"$(snap)"
    : >"$DIR/netms"
    for ((k = 1; k <= NETS; k++)); do
        t0=$(date +%s%N)
        nl network create --subnet "10.201.$k.0/24" "net$k" >/dev/null
        echo "$((($(date +%s%N) - t0) / 1000000))" >>"$DIR/netms"
    done
    read -r med p90 p99 max mean <<<"$(stats "$DIR/netms")"
    read -r r1 a1 f1 th c <<<"$(snap)"
    row 2 "network create x$NETS: median / p99 / max / mean" "$med / $p99 / $max / $mean ms (first $(head -1 "$DIR/netms"), last $(tail -1 "$DIR/netms"))"
    row 2 "daemon per empty network: VmRSS / RssAnon / fds" "$(per "$r" "$r1" "$NETS") / $(per "$a" "$a1" "$NETS") / $(awk -v a="$f" -v b="$f1" -v n="$NETS" 'BEGIN { printf "%.1f", (b - a) / n }') (threads $th)"
    for ((k = 1; k <= NETS; k++)); do for ((j = 1; j <= PER_NET; j++)); do names+=("n$k-$j"); done; done
    : >"$DIR/runs"
    t0=$(now_ms)
    for ((k = 1; k <= NETS; k++)); do run_many "net$k" "${names[@]:$(((k - 1) * PER_NET)):$PER_NET}"; done
    local wall=$(($(now_ms) - t0)) total=$((NETS * PER_NET))
    awk '$3 == 0 { print $2 }' "$DIR/runs" >"$DIR/ms"
    read -r med p90 p99 max mean <<<"$(stats "$DIR/ms")"
    row 2 "run -d x$total ($PER_NET per network): ok / failed" "$(wc -l <"$DIR/ms") / $(awk '$3 != 0' "$DIR/runs" | wc -l); wall $(awk -v w="$wall" -v n="$total" 'BEGIN { printf "%.1f s = %.1f ms each", w / 1000, w / n }')"
    row 2 "per run -d: median / p99 / max / mean" "$med / $p99 / $max / $mean ms (first net $(head -n "$PER_NET" "$DIR/runs" | awk '{ s += $2 } END { printf "%.0f", s / NR }'), last net $(tail -n "$PER_NET" "$DIR/runs" | awk '{ s += $2 } END { printf "%.0f", s / NR }') ms)"
    read -r r2 a2 f2 th c <<<"$(snap)"
    local sh_n sh_rss sh_pss
    read -r sh_n sh_rss sh_pss <<<"$(shims)"
    row 2 "daemon: $NETS networks + $total endpoints" "VmRSS $(mib "$r2"), RssAnon $(mib "$a2"), fds $f2, threads $th; per network with its $PER_NET: RssAnon $(per "$a" "$a2" "$NETS")"
    row 2 "shims: count / PSS sum" "$sh_n / $(mib "$sh_pss")"
    local mid=$(((NETS + 1) / 2)) pa ipb other ipo got
    for k in 1 "$mid" "$NETS"; do
        pa=$(pid_of "n$k-1"); ipb=$(ip_of "n$k-2" "net$k")
        read -r got _ <<<"$(dig1 "$pa" "n$k-2")"
        row 2 "net$k: DNS n$k-2 from n$k-1 / ping" "$( [ "$got" = "$ipb" ] && echo "ok $got" || echo "FAILED '$got' expected $ipb") / $(ping3 "$pa" "$ipb")"
        other=$((k == 1 ? NETS : 1)); ipo=$(ip_of "n$other-1" "net$other")
        read -r got _ <<<"$(dig1 "$pa" "n$other-1")"
        local pg="no reply (isolated)"
        in_ns "$pa" ping -n -c 1 -W 1 "$ipo" >/dev/null 2>&1 && pg="REPLY (not isolated)"
        row 2 "net$k: n$other-1 (net$other) from n$k-1: DNS / ping" "$( [ "$got" = none ] && echo "no answer (isolated)" || echo "ANSWERED $got") / $pg"
    done
    t0=$(now_ms)
    timeout 600 "$NL_BIN" -H "unix://$SOCK" rm -f "${names[@]}" >/dev/null 2>>"$DIR/rm-errors.log" ||
        echo "rm -f reported errors: $(tail -1 "$DIR/rm-errors.log")" >&2
    row 2 "rm -f x$total (one command)" "$(awk -v w="$(($(now_ms) - t0))" -v n="$total" 'BEGIN { printf "%.1f s = %.1f ms each", w / 1000, w / n }')"
    t0=$(now_ms)
    nl network rm $(seq -f 'net%g' 1 "$NETS") >/dev/null
    row 2 "network rm x$NETS (one command)" "$(awk -v w="$(($(now_ms) - t0))" -v n="$NETS" 'BEGIN { printf "%.1f ms each", w / n }')"
    sleep 1
    read -r r a f th c <<<"$(snap)"
    read -r sh_n sh_rss sh_pss <<<"$(shims)"
    row 2 "after teardown: VmRSS / RssAnon / fds / threads / shims" "$(mib "$r") / $(mib "$a") / $f / $th / $sh_n (networks left: $(nl network ls -q | wc -l), incl. built-ins)"
    trim_row 2 "after teardown" 0
}

# Each phase runs in a subshell with errexit on, so a failing step ends that phase (reported in
# the table) and not the run (`phase || handler` would switch errexit off inside it). The subshell
# runs in the background and is waited for: a shell waiting in a foreground command ignores a
# Ctrl-C that the command catches itself (ping, dig exit normally on SIGINT), while `wait` is
# interrupted at once and the INT trap runs.
for ph in $PHASES; do
    say "phase $ph"
    (set -e; "phase$ph") &
    PHASE_PID=$!
    set +e
    wait "$PHASE_PID"
    prc=$?
    set -e
    PHASE_PID=""
    [ "$prc" = 0 ] || echo "phase $ph" >>"$DIR/failed"
    [ "$prc" = 0 ] || row "$ph" "PHASE FAILED" "exit $prc (see messages above; daemon log tail: $(tail -2 "$DIR/daemon.log" | tr '\n' ' '))"
done
row end "daemon CPU total / load" "$(cpu_ms) ms / $(uptime | sed 's/.*load average: //')"
{
    echo "netloom scale run $(date -u +%FT%TZ): $("$NL_BIN" --version | head -1), N=$N NETS=$NETS PER_NET=$PER_NET PAR=$PAR CHUNK=$CHUNK, $HZ_NOTE at start"
    cat "$TABLE"
} >"$OUT"
echo done >"$DIR/done"
echo
cat "$OUT"
