#!/usr/bin/env bash
# Remakes docs/dashboard.png, docs/dashboard-dark.png and docs/report.png: a synthetic
# capture of 200,000 packets (seed 3), ingested, served and reported by this checkout's
# dnsq, drawn by Chromium through tests/py/dashboard.py (the browser test's script).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dnsq-target}
venv=${DNSQ_VENV:-$HOME/.cache/dnsq-venv}
cargo build -q
dnsq=$CARGO_TARGET_DIR/debug/dnsq
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$dnsq" synth "$work/synth.pcap" --packets 200000 --seed 3 > /dev/null
"$dnsq" ingest -o "$work/ds" "$work/synth.pcap" 2> /dev/null
"$dnsq" report -d "$work/ds" -o "$work/report.html" 2> /dev/null
"$dnsq" serve -d "$work/ds" --addr 127.0.0.1:0 > "$work/url" 2> /dev/null &
pid=$!
until [ -s "$work/url" ]; do sleep 0.2; done
mkdir "$work/shots"
"$venv/bin/python" tests/py/dashboard.py "$(head -1 "$work/url")" "$work/report.html" "$work/pages.json" "$work/shots"
cp "$work/shots/dashboard-light.png" docs/dashboard.png
cp "$work/shots/dashboard-dark.png" docs/dashboard-dark.png
cp "$work/shots/report.png" docs/report.png
