#!/usr/bin/env bash
# How long each panel of `dnsq report` takes over a large dataset DATASET, for example
# the scale run of benches/e2e.sh made by hand: `dnsq synth big.pcap --packets 20000000
# --seed 2 && dnsq ingest -o DATASET big.pcap` (about 10 million transactions).
# Runs the report ROUNDS times (default 3) and gives each panel's median, beside the whole
# report's wall time and peak RSS. Replaces the "## Report panels" section of
# docs/BENCHMARKS.md. Usage: benches/report.sh DATASET [ROUNDS]; DNSQ_BIN=path measures
# that binary.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ds=$1
rounds=${2:-3}
rows=$("$dnsq" sql -d "$ds" --format csv "select count(*) from transactions" | tail -1)
for r in $(seq "$rounds"); do
    /usr/bin/time -f "%e %M" -o "$work/t.$r" "$dnsq" report -d "$ds" -o "$work/r.$r.html" --timings \
        2> "$work/err.$r"
done
section=$(
    echo "## Report panels"
    echo
    echo "Produced by \`benches/report.sh DATASET $rounds\` on $(date -u +%Y-%m-%d) over $rows transactions"
    echo "(a \`dnsq synth --packets 20000000\` capture, ingested), release build, median of $rounds runs of"
    echo "\`dnsq report --timings\`. A panel's time is its saved query's, in the report's one session"
    echo "(the resolver is found once, in the first panel that needs it)."
    echo
    echo "| panel (saved query) | ms |"
    echo "|---|---|"
    python3 - "$work" "$rounds" <<'PY'
import re, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
times = {}
for r in range(1, rounds + 1):
    for line in open(f"{work}/err.{r}"):
        m = re.match(r"dnsq: (panel (\S+) \((\S+)\)|summary): (\d+) ms", line)
        if m:
            key = f"{m.group(2)} ({m.group(3)})" if m.group(2) else "summary"
            times.setdefault(key, []).append(int(m.group(4)))
for k, v in times.items():
    print(f"| {k} | {statistics.median(v):,.0f} |")
walls = [float(open(f"{work}/t.{r}").read().split()[0]) for r in range(1, rounds + 1)]
rss = max(int(open(f"{work}/t.{r}").read().split()[1]) for r in range(1, rounds + 1))
print()
print(f"The whole report: {statistics.median(walls):.1f} s (median), peak RSS {rss / 1024:.0f} MiB.")
PY
)
python3 benches/section.py docs/BENCHMARKS.md "$section"
echo "$section"
