# Sourced by the bench scripts (after `set -euo pipefail`): the repository as the
# working directory, the build directory outside the clone, the venv of .ci/run,
# the dnsq measured ($dnsq: DNSQ_BIN, or a fresh release build) and a work
# directory ($work) removed on exit.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dnsq-target}
venv=${DNSQ_VENV:-$HOME/.cache/dnsq-venv}
if [ -z "${DNSQ_BIN:-}" ]; then cargo build --release -q; fi
dnsq=${DNSQ_BIN:-$CARGO_TARGET_DIR/release/dnsq}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# a failed step says where, and what the last measured command wrote to its stderr
# (a full disk stopped a run with no word)
set -E
trap 'echo "$(basename "$0"): failed at line $LINENO: $BASH_COMMAND" >&2; for f in "$work"/stderr "$work"/err; do [ -s "$f" ] && tail -3 "$f" >&2; done; true' ERR
