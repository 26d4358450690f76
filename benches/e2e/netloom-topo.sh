# shellcheck shell=bash
# netloom as topology "N" of peers.sh: sourced by peers.sh through PEERS_EXTRA (see run.sh).
#
#  N  netloom     pb-N1 [eth0 10.99.7.2]--TAP--+
#                                              netloom daemon (userspace switch, own netns
#                 pb-N2 [eth0 10.99.7.3]--TAP--+  via `unshare -n`, temp socket + data root)
#     The namespaces are made with `ip netns add` and plugged into a netloom bridge network with
#     `netloom attach --netns /run/netns/pb-N?` (netloom creates the TAPs inside them, sets
#     address, MAC, MTU and the route).  MTU 1500: network nl1500 (10.99.7.0/24): tcp, udp64,
#     ping.  MTU 65520: network nl65520 (10.99.8.0/24, -o com.docker.network.driver.mtu=65520),
#     the same two namespaces detached and re-attached: tcp.
#     swCPU = utime+stime of the daemon process (all its threads).
#
#  G  netloom gateway (NAT) -> host loopback: the path D (slirp4netns) and E (pasta) measure.
#                 pb-G [eth0 10.99.9.2] --TAP-- netloom daemon (runs in pb-Gh, the stand-in host)
#                 client -> 10.99.9.1:PORT = the network's gateway; the daemon's gateway task
#                 terminates TCP on smoltcp (UDP/ICMP per-flow sockets) and re-connects to
#                 127.0.0.1:PORT in pb-Gh, where the iperf3 server listens.  The daemon is started
#                 as `ip netns exec pb-Gh netloom daemon ...` (so its host sockets live in pb-Gh);
#                 the network is created with `-o com.netloom.network.host_loopback=true`.
#                 MTU 1500: network nlgw1500 (10.99.9.0/24): tcp, tcpR, udp64, ping.  MTU 65520:
#                 network nlgw65520 (10.99.10.0/24, + -o com.docker.network.driver.mtu=65520), pb-G
#                 detached and re-attached: tcp, tcpR.  Ping to the gateway is answered by the
#                 port task (like slirp's 10.0.2.2), not carried to the host.  swCPU = the daemon.
#
#  P  netloom published port (outside -> container): the path pasta's splice (E2) measures the
#     other way round.  The daemon runs in the sandbox "host" namespace pb-Ph (`ip netns exec
#     pb-Ph netloom daemon ...`); the iperf3 server is a real netloom container on a bridge
#     network: `netloom run -d --name pb-p-srv --network NET --ip X.2 -p PORT:PORT
#     -p PORT:PORT/udp -- iperf3 -s -p PORT` (netloom makes its network namespace and TAP; `netloom
#     attach` has no -p).  The client runs in pb-Ph and connects to 127.0.0.1:PORT: the daemon's
#     published socket accepts it and its gateway carries it over smoltcp and the TAP to the
#     container (the container sees the network's gateway as the peer).  tcp = client -> server,
#     i.e. host -> container upload; tcpR = iperf3 -R, container -> host download.
#     MTU 1500: network nlpub1500 (10.99.11.0/24): tcp, tcpR.  MTU 65520: network nlpub65520
#     (10.99.12.0/24, -o com.docker.network.driver.mtu=65520), the container re-created: tcp, tcpR,
#     udp64 (as E2), and tcp/tcpR to pb-Ph's non-loopback address 10.99.13.1 (a veth pair with both
#     ends in pb-Ph, like pb-Eh's; the container then sees the real client address) as the tests
#     tcp@65520ext / tcpR@65520ext.  The host side is loopback (MTU 65536) in every case.
#     swCPU = the daemon (its threads; not the shim, not the iperf3 server - as pasta's swCPU
#     excludes the servers).  The iperf3 server descends from the daemon, so peers.sh's foreign-
#     load check counts it as ours.
#
# NL_TOPOS="N NB G P" (default) picks which of them run; peers.sh runs every EXTRA_TOPOS entry.
#
# Contract of peers.sh's extension point, followed here: topo_N uses ns_new, start_server /
# stop_server, series, SW_PIDS, MYPIDS and log; namespaces are pb-* and appended to ALL_NS; the
# ID is listed in EXTRA_TOPOS.  One addition: peers.sh's cleanup only kills PIDs whose command
# is one of its own tools (iperf3, vde_switch, ...), so this file chains its own cleanup (the
# daemon, by PID, and the temporary directory) in front of peers.sh's EXIT trap.
#
# Needs: NL_BIN, the netloom binary (run.sh sets it).

NL_BIN=${NL_BIN:?NL_BIN must point at the netloom binary}
ALL_NS="$ALL_NS pb-N1 pb-N2 pb-G pb-Gh pb-Ph"
EXTRA_TOPOS="$EXTRA_TOPOS ${NL_TOPOS:-N NB G P}"
NL_DIR=""
NL_PID=""
NL_SHIM=""   # P: the container's shim (its process group holds the iperf3 server)
NL_PUB=0     # P: a container may exist (remove it before the daemon stops)

nl() { NETLOOM_HOST="unix://$NL_DIR/netloom.sock" timeout 30 "$NL_BIN" "$@"; }
# The name the kernel gives our daemon and shims (/proc/PID/comm: the binary's file name, cut at
# 15 characters), so that they are found also when NL_BIN is not called "netloom".
NL_COMM=$(basename "$NL_BIN" | cut -c1-15)

nl_stop() {  # stop the daemon we started (by PID, only if it is still netloom), bounded
    local i
    if [ -n "$NL_PID" ]; then
        if [ "$(cat "/proc/$NL_PID/comm" 2>/dev/null)" = "$NL_COMM" ]; then
            kill "$NL_PID" 2>/dev/null
            for i in $(seq 1 50); do kill -0 "$NL_PID" 2>/dev/null || break; sleep 0.1; done
            [ "$(cat "/proc/$NL_PID/comm" 2>/dev/null)" = "$NL_COMM" ] && kill -9 "$NL_PID" 2>/dev/null
        fi
        wait "$NL_PID" 2>/dev/null
        forget "$NL_PID"; NL_PID=""
    fi
}
pub_rm() {  # remove P's container (stops iperf3); fallback: SIGKILL the shim's process group by PID
    [ "$NL_PUB" = 1 ] || [ -n "$NL_SHIM" ] || return 0
    [ -n "$NL_PID" ] && nl rm -f pb-p-srv >/dev/null 2>&1
    NL_PUB=0
    [ -n "$NL_SHIM" ] || return 0
    local i
    for i in $(seq 1 30); do
        grep -q '_shim' "/proc/$NL_SHIM/cmdline" 2>/dev/null || break; sleep 0.1
    done
    if [ "$(cat "/proc/$NL_SHIM/comm" 2>/dev/null)" = "$NL_COMM" ] && grep -q '_shim' "/proc/$NL_SHIM/cmdline" 2>/dev/null; then
        kill -9 -- "-$NL_SHIM" 2>/dev/null
    fi
    NL_SHIM=""
}
nl_cleanup() {
    pub_rm
    nl_stop
    local n
    for n in pb-N1 pb-N2 pb-G pb-Gh pb-Ph; do ip netns del "$n" 2>/dev/null; done
    [ -n "$NL_DIR" ] && rm -rf "$NL_DIR"
    NL_DIR=""
    return 0
}
trap 'nl_cleanup; cleanup' EXIT

nl_start() {  # [NETNS]: the daemon in that named netns (else a private one, `unshare -n`)
    NL_DIR=$(mktemp -d /tmp/pb-netloom.XXXXXX)
    local wrap=(unshare -n --)
    [ -n "${1:-}" ] && wrap=(ip netns exec "$1")
    # both wrappers exec, so $! ends up being the daemon itself
    # shellcheck disable=SC2086 # NL_DAEMON_ARGS: extra daemon flags, split on spaces
    "${wrap[@]}" "$NL_BIN" daemon -H "unix://$NL_DIR/netloom.sock" --data-root "$NL_DIR/data" \
        -l warn ${NL_DAEMON_ARGS:-} </dev/null >"$NL_DIR/daemon.log" 2>&1 &
    NL_PID=$!; MYPIDS+=("$NL_PID")
    local i
    for i in $(seq 1 100); do
        nl network ls >/dev/null 2>&1 && return 0
        kill -0 "$NL_PID" 2>/dev/null || break
        sleep 0.05
    done
    say "netloom daemon did not come up: $(tail -5 "$NL_DIR/daemon.log")"
    return 1
}

nl_plug() {  # NETWORK SUBNET_PREFIX (10.99.7): attach pb-N1 as .2 and pb-N2 as .3
    local i
    for i in 1 2; do
        nl attach --name "pb-n$i" --ip "$2.$((i + 1))" --netns "/run/netns/pb-N$i" "$1" >/dev/null \
            2>>"$NL_DIR/attach.log" || { say "netloom attach failed: $(tail -2 "$NL_DIR/attach.log")"; return 1; }
    done
    # first frames (ARP) are learned here, not inside a measured run
    ip netns exec pb-N1 ping -n -q -c 2 -i 0.2 -W 1 "$2.3" >/dev/null 2>&1
    log "# N netloom $1: $(ip -n pb-N1 -br addr show eth0 | tr -s ' ') $(ip -n pb-N1 link show eth0 | grep -o 'mtu [0-9]*') / $(ip -n pb-N2 -br addr show eth0 | tr -s ' ')"
}

nl_counters() {  # ID WHEN: where 64-byte UDP gets lost: sender TAP queue, switch, or receiver socket
    local c1 c2 udp
    c1=$(ip -n pb-N1 -s -s link show eth0 | awk '/TX:/{getline; print "tx_pkts=" $2 " tx_dropped=" $4}')
    c2=$(ip -n pb-N2 -s -s link show eth0 | awk '/RX:/{getline; print "rx_pkts=" $2 " rx_dropped=" $4}')
    udp=$(ip netns exec pb-N2 awk '/^Udp:/{if(h){print "udp_InDatagrams=" $2 " udp_RcvbufErrors=" $6}else{h=1}}' /proc/net/snmp)
    log "# $1 counters $2: pb-N1 eth0 $c1 | pb-N2 eth0 $c2 $udp | netloom $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 300)"
}

nl_switch_topo() {  # ID LABEL: N's two namespaces and tests; the daemon gets NL_DAEMON_ARGS
    local id=$1
    log "# topo $id $2"
    log "# $id netloom $("$NL_BIN" --version 2>/dev/null | head -1) binary $NL_BIN"
    ns_new pb-N1 pb-N2
    if ! nl_start; then log "# $id FAILED: daemon did not start"; nl_cleanup; return; fi
    SW_PIDS=("$NL_PID")
    if nl network create --subnet 10.99.7.0/24 nl1500 >/dev/null && nl_plug nl1500 10.99.7; then
        start_server pb-N2 10.99.7.3
        series "$id" pb-N1 10.99.7.3 tcp@1500
        nl_counters "$id" before-udp64
        series "$id" pb-N1 10.99.7.3 udp64
        nl_counters "$id" after-udp64
        series "$id" pb-N1 10.99.7.3 ping
        stop_server
    else
        log "# $id FAILED: network nl1500"
    fi
    nl detach pb-n1 >/dev/null 2>&1; nl detach pb-n2 >/dev/null 2>&1
    if nl network create --subnet 10.99.8.0/24 -o com.docker.network.driver.mtu=65520 nl65520 >/dev/null &&
       nl_plug nl65520 10.99.8; then
        start_server pb-N2 10.99.8.3
        series "$id" pb-N1 10.99.8.3 tcp@65520
        stop_server
    else
        log "# $id FAILED: network nl65520"
    fi
    log "# $id netloom stats after the runs: $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 600)"
    nl detach pb-n1 >/dev/null 2>&1; nl detach pb-n2 >/dev/null 2>&1
    SW_PIDS=()
    nl_cleanup
}

topo_N() { nl_switch_topo N "netloom 2xTAP"; }
# NB: N again, with the daemon busy polling (--busy-poll NL_BUSY_POLL microseconds, default
# 20000: longer than ping's 10 ms interval): latency of sparse traffic for CPU time.
topo_NB() {
    NL_DAEMON_ARGS="${NL_DAEMON_ARGS:-} --busy-poll ${NL_BUSY_POLL:-20000}" nl_switch_topo NB "netloom --busy-poll ${NL_BUSY_POLL:-20000}"
}

# ---- G: the gateway (NAT) to the host's loopback, against slirp4netns (D) and pasta (E) --------
gw_plug() {  # NETWORK IP: attach pb-G; prints the gateway address
    nl attach --name pb-g --ip "$2" --netns /run/netns/pb-G "$1" >/dev/null 2>>"$NL_DIR/attach.log" ||
        { say "netloom attach failed: $(tail -2 "$NL_DIR/attach.log")"; return 1; }
    local gw
    gw=$(ip -n pb-G route show default | awk '/^default via/{print $3; exit}')
    [ -n "$gw" ] || { say "no default route in pb-G"; return 1; }
    # ARP and the first gateway answers happen here, not inside a measured run
    ip netns exec pb-G ping -n -q -c 2 -i 0.2 -W 1 "$gw" >/dev/null 2>&1
    log "# G netloom $1: $(ip -n pb-G -br addr show eth0 | tr -s ' ') $(ip -n pb-G link show eth0 | grep -o 'mtu [0-9]*') gateway $gw -> 127.0.0.1:$PORT in pb-Gh"
    echo "$gw"
}

gw_counters() {  # TAP counters of the client and the switch's drop counters (gateway_busy, nat_*)
    log "# G counters $1: pb-G eth0 $(ip -n pb-G -s -s link show eth0 | awk '/TX:/{getline; print "tx_pkts=" $2 " tx_dropped=" $4} /RX:/{getline; print "rx_pkts=" $2 " rx_dropped=" $4}' | tr '\n' ' ')| pb-Gh $(ip netns exec pb-Gh awk '/^Udp:/{if(h){print "udp_InDatagrams=" $2 " udp_RcvbufErrors=" $6}else{h=1}}' /proc/net/snmp) | netloom $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 400)"
}

topo_G() {
    log "# topo G netloom gateway -> host lo"
    log "# G netloom $("$NL_BIN" --version 2>/dev/null | head -1) binary $NL_BIN"
    ns_new pb-G pb-Gh
    if ! nl_start pb-Gh; then log "# G FAILED: daemon did not start"; nl_cleanup; return; fi
    SW_PIDS=("$NL_PID")
    start_server pb-Gh 127.0.0.1
    local gw
    if nl network create --subnet 10.99.9.0/24 -o com.netloom.network.host_loopback=true nlgw1500 >/dev/null &&
       gw=$(gw_plug nlgw1500 10.99.9.2); then
        series G pb-G "$gw" tcp@1500 tcpR@1500
        gw_counters before-udp64
        series G pb-G "$gw" udp64
        gw_counters after-udp64
        series G pb-G "$gw" ping
    else
        log "# G FAILED: network nlgw1500"
    fi
    nl detach pb-g >/dev/null 2>&1
    if nl network create --subnet 10.99.10.0/24 -o com.netloom.network.host_loopback=true \
            -o com.docker.network.driver.mtu=65520 nlgw65520 >/dev/null &&
       gw=$(gw_plug nlgw65520 10.99.10.2); then
        series G pb-G "$gw" tcp@65520 tcpR@65520
    else
        log "# G FAILED: network nlgw65520"
    fi
    log "# G netloom stats after the runs: $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 600)"
    stop_server
    nl detach pb-g >/dev/null 2>&1
    SW_PIDS=()
    nl_cleanup
}

# ---- P: outside -> published port of a container, against pasta's splice path (E2) -------------
pub_up() {  # NETWORK CONTAINER_IP: run the iperf3 container with PORT published (tcp and udp)
    NL_PUB=1
    nl run -d --name pb-p-srv --network "$1" --ip "$2" -p "$PORT:$PORT" -p "$PORT:$PORT/udp" \
        -- iperf3 -s -p "$PORT" >/dev/null 2>>"$NL_DIR/run.log" ||
        { say "netloom run failed: $(tail -2 "$NL_DIR/run.log")"; return 1; }
    NL_SHIM=$(nl inspect -f '{{.State.Pid}}' pb-p-srv 2>/dev/null)
    local i
    for i in $(seq 1 60); do  # the server listens inside the container
        nl exec pb-p-srv ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q LISTEN && break; sleep 0.1
    done
    # the first frames (ARP, the gateway's first flow) are not part of a measured run
    timeout 15 ip netns exec pb-Ph iperf3 -c 127.0.0.1 -p "$PORT" -t 1 >/dev/null 2>&1 ||
        say "P warm-up through 127.0.0.1:$PORT failed"
    log "# P netloom $1: container pb-p-srv (shim $NL_SHIM) $(nl exec pb-p-srv ip -br addr show eth0 2>&1 | tr -s ' ') $(nl exec pb-p-srv ip link show eth0 2>&1 | grep -o 'mtu [0-9]*'); published: $(nl port pb-p-srv 2>&1 | tr '\n' ' ')| pb-Ph listens: $(ip netns exec pb-Ph ss -Hltnu "sport = :$PORT" | awk '{print $1 " " $5}' | tr '\n' ' ')"
}

topo_P() {
    log "# topo P netloom published port"
    log "# P netloom $("$NL_BIN" --version 2>/dev/null | head -1) binary $NL_BIN"
    ns_new pb-Ph
    # a non-loopback address for pb-Ph (both veth ends inside pb-Ph, as peers.sh's pb-Eh)
    ip -n pb-Ph link add pb-pext type veth peer name pb-pextp
    ip -n pb-Ph addr add 10.99.13.1/24 dev pb-pext
    ip -n pb-Ph link set pb-pext up; ip -n pb-Ph link set pb-pextp up
    if ! nl_start pb-Ph; then log "# P FAILED: daemon did not start"; nl_cleanup; return; fi
    SW_PIDS=("$NL_PID")
    if nl network create --subnet 10.99.11.0/24 nlpub1500 >/dev/null && pub_up nlpub1500 10.99.11.2; then
        series P pb-Ph 127.0.0.1 tcp@1500 tcpR@1500
    else
        log "# P FAILED: network nlpub1500"
    fi
    pub_rm
    if nl network create --subnet 10.99.12.0/24 -o com.docker.network.driver.mtu=65520 nlpub65520 >/dev/null &&
       pub_up nlpub65520 10.99.12.2; then
        series P pb-Ph 127.0.0.1 tcp@65520 tcpR@65520
        log "# P counters before-udp64: netloom $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 400)"
        series P pb-Ph 127.0.0.1 udp64
        log "# P counters after-udp64: netloom $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 400) | container $(nl exec pb-p-srv awk '/^Udp:/{if(h){print "udp_InDatagrams=" $2 " udp_RcvbufErrors=" $6}else{h=1}}' /proc/net/snmp 2>&1)"
        series P pb-Ph 10.99.13.1 tcp@65520ext tcpR@65520ext
    else
        log "# P FAILED: network nlpub65520"
    fi
    log "# P netloom stats after the runs: $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 600)"
    SW_PIDS=()
    nl_cleanup
}
