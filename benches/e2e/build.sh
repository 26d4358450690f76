# Sourced by the benchmark scripts: builds netloom (release) unless NO_BUILD=1 — as the invoking
# user under sudo, so target/ does not become root-owned — and sets NL_BIN (default: the build's
# binary, honouring CARGO_TARGET_DIR). Needs ROOT (the repository).
if [ "${NO_BUILD:-0}" != 1 ]; then
    echo "== building netloom (release)" >&2
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        sudo -u "$SUDO_USER" -H bash -lc "cd '$ROOT' && cargo build --release -p netloom" >&2
    else
        (cd "$ROOT" && cargo build --release -p netloom) >&2
    fi
fi
export NL_BIN=${NL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/netloom}
