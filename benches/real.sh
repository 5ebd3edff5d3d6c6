#!/usr/bin/env bash
# Scaling on real servers' traffic: data/record-sample.sh records Knot, Unbound and
# dnsperf on loopback with its load lengthened (SECONDS seconds at QPS queries a second),
# then dnsq ingests that capture with 1 and 2 threads, ROUNDS rounds interleaved.
# Replaces the "## Scaling on real servers' traffic" section of docs/BENCHMARKS.md.
# Needs root and the Debian packages of data/record-sample.sh.
# Usage: sudo benches/real.sh [SECONDS [QPS [ROUNDS]]]   (default 60 20000 3)
set -euo pipefail
source "$(dirname "$0")/common.sh"
seconds=${1:-60}
qps=${2:-20000}
rounds=${3:-3}
DNSPERF_SECONDS=$seconds DNSPERF_QPS=$qps data/record-sample.sh "$work/real.pcap" > /dev/null
for r in $(seq 1 "$rounds"); do
    for t in 1 2; do
        rm -rf "$work/ds"
        /usr/bin/time -f "%e %M" -o "$work/time" "$dnsq" ingest --threads "$t" -o "$work/ds" "$work/real.pcap" \
            > /dev/null 2> "$work/stderr"
        echo "$t $(cat "$work/time")" >> "$work/ingest"
    done
done
summary=$(grep "packets →" "$work/stderr" | tail -1)
rows=$("$dnsq" sql -d "$work/ds" --format csv \
    "select count(*), count(*) filter (where leg = 'upstream') from transactions" 2> /dev/null | tail -1)
bytes=$(stat -c %s "$work/real.pcap")
section=$(python3 - "$work/ingest" "$seconds" "$qps" "$rounds" "$bytes" "$rows" "$summary" <<'PY'
import statistics, sys, datetime
path, seconds, qps, rounds, size, rows, summary = sys.argv[1:]
runs = {}
for line in open(path):
    t, sec, rss = line.split()
    runs.setdefault(int(t), []).append((float(sec), int(rss)))
med = {t: statistics.median(s for s, _ in v) for t, v in runs.items()}
total, upstream = rows.split(",")
print("## Scaling on real servers' traffic\n")
print(f"Produced by `benches/real.sh {seconds} {qps} {rounds}` on {datetime.date.today()}: "
      f"`data/record-sample.sh` with its dnsperf load lengthened to {seconds} s at {qps} "
      f"queries/s (Knot DNS, Unbound and dnsperf on loopback, recorded by tcpdump), "
      f"{int(size):,} bytes; {int(total):,} transactions, {int(upstream):,} of them upstream. "
      f"Medians of {rounds} rounds, 1 and 2 threads interleaved.\n")
print(f"`{summary.removeprefix('dnsq: ')}`\n")
print("| threads | seconds (median) | runs | peak RSS |")
print("|---|---|---|---|")
for t in sorted(runs):
    secs = ", ".join(f"{s:.2f}" for s, _ in runs[t])
    rss = max(r for _, r in runs[t]) / 1024
    print(f"| {t} | {med[t]:.2f} | {secs} | {rss:.0f} MiB |")
print(f"\nScaling 1 → 2 threads: {med[1] / med[2]:.2f}x.")
PY
)
python3 benches/section.py docs/BENCHMARKS.md "$section"
echo "$section"
