#!/usr/bin/env bash
# Criterion benches of the hot stages (benches/stages.rs) on data/sample.pcap, and their
# figures written as the last section of docs/BENCHMARKS.md ("## Stages (criterion)"),
# which benches/e2e.sh keeps when it rewrites the rest of the file.
# Usage: benches/stages.sh. The first run builds arrow and DataFusion in the bench
# profile with the dev-dependencies' features: about 40 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dnsq-target}
cargo bench --bench stages -- --noplot
python3 - "$CARGO_TARGET_DIR/criterion/stages" docs/BENCHMARKS.md <<'PY'
import json, os, sys
root, doc = sys.argv[1], sys.argv[2]
lines = [
    "## Stages (criterion)",
    "",
    "`benches/stages.sh` (`cargo bench --bench stages`) on data/sample.pcap, in a run of its own"
    " on the machine above.",
    "",
    "| stage | median time per iteration | items | items/s |",
    "|---|---|---|---|",
]
for name in ["decode_frame", "decode_dns", "pairing", "batch_build", "parquet_write"]:
    d = os.path.join(root, name, "new")
    est = json.load(open(os.path.join(d, "estimates.json")))
    bench = json.load(open(os.path.join(d, "benchmark.json")))
    ns = est["median"]["point_estimate"]
    items = (bench.get("throughput") or {}).get("Elements")
    rate = f"{items / (ns / 1e9):,.0f}" if items else ""
    lines.append(f"| {name} | {ns / 1e6:.3f} ms | {items or ''} | {rate} |")
text = open(doc).read() if os.path.exists(doc) else ""
head = text.split("## Stages (criterion)")[0].rstrip()
open(doc, "w").write((head + "\n\n" if head else "") + "\n".join(lines) + "\n")
PY
cat docs/BENCHMARKS.md
