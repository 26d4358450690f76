#!/usr/bin/env bash
# A first look at netloom: builds it, then runs `netloom demo`, which starts a private daemon
# (temporary socket and data root, its own network namespace), replays the Docker networking
# tutorial end to end (networks, containers pinging by name on a user network and failing by
# name on the default bridge, a published port fetched, inspect output), prints what it does,
# and removes everything again. Needs root (namespaces), util-linux and ping.
#
#   sudo scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p netloom
exec target/release/netloom demo "$@"
