#!/usr/bin/env bash
# A first look at netloom: builds it, starts a private daemon (temporary socket and data root,
# its own network namespace), runs a few `netloom network` commands — and the same through the
# stock docker CLI when it is installed — then stops the daemon and removes everything.
#
#   sudo scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p netloom
bin=$PWD/target/release/netloom
dir=$(mktemp -d /tmp/netloom-quickstart.XXXXXX)
sock=$dir/netloom.sock
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

unshare -n -- "$bin" daemon -H "unix://$sock" --data-root "$dir/data" 2>"$dir/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$dir/daemon.log"; exit 1; }

run() { echo "\$ $*"; "$@"; echo; }
export NETLOOM_HOST=unix://$sock
run "$bin" network ls
run "$bin" network create mhk_network
run "$bin" network ls
run "$bin" network inspect mhk_network
if command -v docker >/dev/null; then
  run env DOCKER_HOST="unix://$sock" DOCKER_CONFIG="$dir/docker" docker network ls
fi
run "$bin" network rm mhk_network
