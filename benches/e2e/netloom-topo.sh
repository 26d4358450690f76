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
# Contract of peers.sh's extension point, followed here: topo_N uses ns_new, start_server /
# stop_server, series, SW_PIDS, MYPIDS and log; namespaces are pb-* and appended to ALL_NS; the
# ID is listed in EXTRA_TOPOS.  One addition: peers.sh's cleanup only kills PIDs whose command
# is one of its own tools (iperf3, vde_switch, ...), so this file chains its own cleanup (the
# daemon, by PID, and the temporary directory) in front of peers.sh's EXIT trap.
#
# Needs: NL_BIN, the netloom binary (run.sh sets it).

NL_BIN=${NL_BIN:?NL_BIN must point at the netloom binary}
ALL_NS="$ALL_NS pb-N1 pb-N2"
EXTRA_TOPOS="$EXTRA_TOPOS N"
NL_DIR=""
NL_PID=""

nl() { NETLOOM_HOST="unix://$NL_DIR/netloom.sock" timeout 30 "$NL_BIN" "$@"; }

nl_stop() {  # stop the daemon we started (by PID, only if it is still netloom), bounded
    local i
    if [ -n "$NL_PID" ]; then
        if [ "$(cat "/proc/$NL_PID/comm" 2>/dev/null)" = netloom ]; then
            kill "$NL_PID" 2>/dev/null
            for i in $(seq 1 50); do kill -0 "$NL_PID" 2>/dev/null || break; sleep 0.1; done
            [ "$(cat "/proc/$NL_PID/comm" 2>/dev/null)" = netloom ] && kill -9 "$NL_PID" 2>/dev/null
        fi
        wait "$NL_PID" 2>/dev/null
        forget "$NL_PID"; NL_PID=""
    fi
}
nl_cleanup() {
    nl_stop
    ip netns del pb-N1 2>/dev/null; ip netns del pb-N2 2>/dev/null
    [ -n "$NL_DIR" ] && rm -rf "$NL_DIR"
    return 0
}
trap 'nl_cleanup; cleanup' EXIT

nl_start() {
    NL_DIR=$(mktemp -d /tmp/pb-netloom.XXXXXX)
    unshare -n -- "$NL_BIN" daemon -H "unix://$NL_DIR/netloom.sock" --data-root "$NL_DIR/data" \
        -l warn </dev/null >"$NL_DIR/daemon.log" 2>&1 &
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

nl_counters() {  # where 64-byte UDP gets lost: sender TAP queue, switch, or receiver socket
    local c1 c2 udp
    c1=$(ip -n pb-N1 -s -s link show eth0 | awk '/TX:/{getline; print "tx_pkts=" $2 " tx_dropped=" $4}')
    c2=$(ip -n pb-N2 -s -s link show eth0 | awk '/RX:/{getline; print "rx_pkts=" $2 " rx_dropped=" $4}')
    udp=$(ip netns exec pb-N2 awk '/^Udp:/{if(h){print "udp_InDatagrams=" $2 " udp_RcvbufErrors=" $6}else{h=1}}' /proc/net/snmp)
    log "# N counters $1: pb-N1 eth0 $c1 | pb-N2 eth0 $c2 $udp | netloom $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 300)"
}

topo_N() {
    log "# topo N netloom 2xTAP"
    log "# N netloom $("$NL_BIN" --version 2>/dev/null | head -1) binary $NL_BIN"
    ns_new pb-N1 pb-N2
    if ! nl_start; then log "# N FAILED: daemon did not start"; nl_cleanup; return; fi
    SW_PIDS=("$NL_PID")
    if nl network create --subnet 10.99.7.0/24 nl1500 >/dev/null && nl_plug nl1500 10.99.7; then
        start_server pb-N2 10.99.7.3
        series N pb-N1 10.99.7.3 tcp@1500
        nl_counters before-udp64
        series N pb-N1 10.99.7.3 udp64
        nl_counters after-udp64
        series N pb-N1 10.99.7.3 ping
        stop_server
    else
        log "# N FAILED: network nl1500"
    fi
    nl detach pb-n1 >/dev/null 2>&1; nl detach pb-n2 >/dev/null 2>&1
    if nl network create --subnet 10.99.8.0/24 -o com.docker.network.driver.mtu=65520 nl65520 >/dev/null &&
       nl_plug nl65520 10.99.8; then
        start_server pb-N2 10.99.8.3
        series N pb-N1 10.99.8.3 tcp@65520
        stop_server
    else
        log "# N FAILED: network nl65520"
    fi
    log "# N netloom stats after the runs: $(nl stats 2>&1 | tr -s ' \n' ' ' | head -c 600)"
    nl detach pb-n1 >/dev/null 2>&1; nl detach pb-n2 >/dev/null 2>&1
    SW_PIDS=()
    nl_cleanup
}
