#!/usr/bin/env bash
# The ingest measured against its own limits, side by side in one run on one capture
# (`dnsq synth --seed 1`, PACKETS packets, default 2,000,000):
#   (a) writer only: the ingest's transactions held in memory and written as one Parquet
#       file with dnsq's writer settings, on one core (`dnsq limits writer`); the same rows
#       written by pyarrow and by DuckDB's COPY on one thread (benches/limits_ref.py);
#   (b) decode only: every frame to its DNS header and question, no reassembly or
#       pairing, on one core (`dnsq limits decode`);
#   (c) end to end: `dnsq ingest` on 1 and 2 threads.
# Each is run ROUNDS times (default 3), the ingests interleaved; the table gives medians,
# and the end-to-end rate as a share of what the writer allows on as many cores (the
# writer's rows/s times the capture's packets per row). Replaces the "## Limits" section
# of docs/BENCHMARKS.md. Needs the venv of .ci/run (pyarrow, duckdb).
# Usage: benches/limits.sh [PACKETS [ROUNDS]]; DNSQ_BIN=path measures that binary.
set -euo pipefail
source "$(dirname "$0")/common.sh"
packets=${1:-2000000}
rounds=${2:-3}

"$dnsq" synth "$work/cap.pcap" --packets "$packets" --seed 1 > "$work/truth.json"
recs=$(python3 -c "import json;print(json.load(open('$work/truth.json'))['packets'])")

for r in $(seq "$rounds"); do
    for t in 1 2; do
        rm -rf "$work/ds$t"
        /usr/bin/time -f "%e %M" -o "$work/t" "$dnsq" ingest --threads "$t" -o "$work/ds$t" "$work/cap.pcap" 2> "$work/err" \
            || { cat "$work/err"; exit 1; }
        echo "$t $(cat "$work/t")" >> "$work/ingest"
    done
done
rows=$("$dnsq" sql -d "$work/ds2" --format csv "select count(*) from transactions" | tail -1)

taskset -c 0 "$dnsq" limits writer "$work/ds2" --rounds "$rounds" > "$work/writer.jsonl"
taskset -c 0 "$venv/bin/python" benches/limits_ref.py "$work/ds2" "$rounds" 262144 > "$work/ref.jsonl"
taskset -c 0 "$dnsq" limits decode "$work/cap.pcap" --rounds "$rounds" > "$work/decode.jsonl"

section=$(
    echo "## Limits"
    echo
    echo "Produced by \`benches/limits.sh $packets $rounds\` on $(date -u +%Y-%m-%d): the ingest of one capture"
    echo "(\`dnsq synth --seed 1\`, $recs packets, $rows transactions, $(python3 -c "print(f'{$recs/$rows:.2f}')") packets a row) beside"
    echo "the limits of its stages measured alone, each on one core (\`taskset -c 0\`); medians of $rounds rounds."
    echo "The writer rows are the ingest's own, read back into memory; only the write is timed."
    echo
    echo "| stage | on | items | seconds | rate | share of the writer's limit |"
    echo "|---|---|---|---|---|---|"
    python3 - "$work" "$recs" "$rows" <<'PY'
import json, statistics, sys
work, recs, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    out = {}
    for line in open(f"{work}/{name}"):
        d = json.loads(line)
        out.setdefault(d.get("writer", "dnsq"), []).append(d)
    return out
med = lambda xs, k: statistics.median(x[k] for x in xs)
writer = load("writer.jsonl")["dnsq"]
w_rate = rows / med(writer, "seconds")            # rows/s on one core
pkt_per_row = recs / rows
print(f"| (a) writer only, dnsq (arrow-rs, dnsq's settings) | 1 core | {rows:,} rows | {med(writer, 'seconds'):.2f} | {w_rate:,.0f} rows/s = {w_rate * pkt_per_row:,.0f} packets/s | |")
for name, runs in load("ref.jsonl").items():
    r = rows / med(runs, "seconds")
    print(f"| (a) writer only, {name} | 1 thread | {rows:,} rows | {med(runs, 'seconds'):.2f} | {r:,.0f} rows/s | |")
dec = load("decode.jsonl")["dnsq"]
print(f"| (b) decode only (frame to DNS header and question) | 1 core | {recs:,} packets | {med(dec, 'seconds'):.2f} | {recs / med(dec, 'seconds'):,.0f} packets/s | |")
runs = {}
for line in open(f"{work}/ingest"):
    t, sec, rss = line.split()
    runs.setdefault(int(t), []).append((float(sec), int(rss)))
for t in (1, 2):
    sec = statistics.median(s for s, _ in runs[t])
    rate = recs / sec
    limit = w_rate * pkt_per_row * t
    rss = max(r for _, r in runs[t]) / 1024
    print(f"| (c) dnsq ingest, end to end (peak RSS {rss:.0f} MiB) | {t} thread{'s' if t > 1 else ''} | {recs:,} packets | {sec:.2f} | {rate:,.0f} packets/s | {100 * rate / limit:.0f}% of {limit:,.0f} packets/s |")
PY
)
python3 benches/section.py docs/BENCHMARKS.md "$section"
echo "$section"
