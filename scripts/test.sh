#!/usr/bin/env bash
# netloom's one test command: installs what the tests need on a fresh machine, then runs
# formatting, lints and every test. Run it as root (the tests create network namespaces).
#
#   sudo scripts/test.sh
#
# Environment: NETLOOM_SKIP_INSTALL=1 skips the package step (for quick local reruns).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run as root (the tests create network namespaces with unshare -n)" >&2
  exit 2
fi

if [ "${NETLOOM_SKIP_INSTALL:-0}" != 1 ]; then
  need=()
  command -v unshare >/dev/null || need+=(util-linux)
  command -v nsenter >/dev/null || need+=(util-linux)
  command -v ip >/dev/null || need+=(iproute2)
  command -v ping >/dev/null || need+=(iputils-ping)
  command -v python3 >/dev/null || need+=(python3)
  command -v dig >/dev/null || need+=(dnsutils)
  command -v cc >/dev/null || need+=(gcc)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
  fi
  if ! command -v cargo >/dev/null; then
    echo "scripts/test.sh: cargo is missing; install the Rust toolchain (rustup) first" >&2
    exit 2
  fi
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# The API tests compare netloom with the stock docker CLI (client only); they fail, with a
# clear message, when it is missing.
if [ ! -x "${NETLOOM_TEST_DOCKER:-/usr/local/bin/docker}" ]; then
  echo "scripts/test.sh: warning: no docker CLI at ${NETLOOM_TEST_DOCKER:-/usr/local/bin/docker}; the API comparison tests will fail" >&2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary, the last of which is
# often an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
