#!/usr/bin/env bash
# End-to-end benchmark, side by side in one run on the same capture:
#   dnsq ingest with 1 and 2 threads, tshark's own pairing (-T fields with dns.time),
#   output size, peak RSS, and every saved query in dnsq sql and in DuckDB on the same files.
# Then the scale run: a capture of SCALE_PACKETS (default 20000000, about 10 million
# transactions) ingested on 2 threads (time, peak RSS), and every saved query over it in
# dnsq sql and in DuckDB on the same files.
# Writes docs/BENCHMARKS.md. Usage: benches/e2e.sh [PACKETS [SCALE_PACKETS]]
# Needs tshark (Debian package) and the venv of .ci/run (duckdb). DNSQ_BIN=path skips the
# release build and measures that binary instead.
set -euo pipefail
for tool in tshark /usr/bin/time; do
    command -v "$tool" > /dev/null || { echo "benches/e2e.sh: needs $tool (Debian: apt-get install tshark time)" >&2; exit 1; }
done
source "$(dirname "$0")/common.sh"
packets=${1:-2000000}
scale=${2:-20000000}
# the bucket width of the saved queries in both engines (the scale capture spans minutes)
bucket_width=${BUCKET:-10s}

"$dnsq" synth "$work/cap.pcap" --packets "$packets" --seed 1 > "$work/truth.json"
cap_bytes=$(stat -c %s "$work/cap.pcap")
recs=$(python3 -c "import json;print(json.load(open('$work/truth.json'))['packets'])")

# seconds and peak RSS (KiB) of a command
measure() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/stderr"; cat "$work/time"; }

read -r t1 rss1 < <(measure "$dnsq" ingest --threads 1 -o "$work/ds1" "$work/cap.pcap")
read -r t2 rss2 < <(measure "$dnsq" ingest --threads 2 -o "$work/ds2" "$work/cap.pcap")
read -r tt rsst < <(measure tshark -r "$work/cap.pcap" -n -T fields -e frame.number -e dns.id -e dns.qry.name -e dns.time)
out_bytes=$(du -sb "$work/ds2/transactions" | cut -f1)
rows=$("$dnsq" sql -d "$work/ds2" --format csv "select count(*) from transactions" | tail -1)
rm -rf "$work/ds1"

# the scale run: its capture is removed once ingested, its dataset kept for the queries
"$dnsq" synth "$work/big.pcap" --packets "$scale" --seed 2 > "$work/big.json"
big_bytes=$(stat -c %s "$work/big.pcap")
big_recs=$(python3 -c "import json;print(json.load(open('$work/big.json'))['packets'])")
read -r tb rssb < <(measure "$dnsq" ingest --threads 2 -o "$work/dsb" "$work/big.pcap")
rm -f "$work/big.pcap"
big_out=$(du -sb "$work/dsb/transactions" | cut -f1)
big_rows=$("$dnsq" sql -d "$work/dsb" --format csv "select count(*) from transactions" | tail -1)
big_files=$(find "$work/dsb/transactions" -name '*.parquet' | wc -l)

# the criterion section (benches/stages.sh) is kept
stages=$(sed -n '/^## Stages (criterion)/,$p' docs/BENCHMARKS.md 2>/dev/null || true)
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`benches/e2e.sh $packets $scale\` on $(date -u +%Y-%m-%d). Machine: $(nproc) cores,"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB; shared and noisy, so"
  echo "every figure on a page comes from the same run. Capture: \`dnsq synth --seed 1\`, $recs packets,"
  echo "$cap_bytes bytes; $rows transactions."
  echo
  echo "## Ingest"
  echo
  echo "| tool | seconds | packets/s | peak RSS |"
  echo "|---|---|---|---|"
  awk -v r="$recs" -v t="$t1" -v m="$rss1" 'BEGIN{printf "| dnsq ingest --threads 1 | %.2f | %.0f | %.0f MiB |\n", t, r/t, m/1024}'
  awk -v r="$recs" -v t="$t2" -v m="$rss2" 'BEGIN{printf "| dnsq ingest --threads 2 | %.2f | %.0f | %.0f MiB |\n", t, r/t, m/1024}'
  awk -v r="$recs" -v t="$tt" -v m="$rsst" 'BEGIN{printf "| tshark -T fields with dns.time | %.2f | %.0f | %.0f MiB |\n", t, r/t, m/1024}'
  echo
  awk -v a="$t1" -v b="$t2" -v t="$tt" -v o="$out_bytes" -v c="$cap_bytes" 'BEGIN{printf "Scaling 1 → 2 threads: %.2fx. Speed-up over tshark (2 threads): %.1fx. Parquet output: %.1f%% of the pcap.\n", a/b, t/b, 100*o/c}'
  echo
  echo "## Scale run"
  echo
  echo "\`dnsq synth --seed 2\`, $big_recs packets, $big_bytes bytes, ingested with \`--threads 2\`:"
  awk -v r="$big_recs" -v t="$tb" -v m="$rssb" -v o="$big_out" -v c="$big_bytes" -v n="$big_rows" -v f="$big_files" 'BEGIN{printf "%.1f s, %.0f packets/s, peak RSS %.0f MiB; %d transactions in %d Parquet files, %.1f%% of the pcap.\n", t, r/t, m/1024, n, f, 100*o/c}'
  echo
  echo "## Saved queries ($big_rows transactions)"
  echo
  echo "Each query with its default parameters and \`--bucket $bucket_width\` where it takes one; DuckDB runs"
  echo "the query's block of docs/ENGINES.md (as tests/engines.rs does: the same legs, the same rows)."
  echo
  echo "| query | dnsq sql (s) | DuckDB process (s) | DuckDB query alone (s) |"
  echo "|---|---|---|---|"
  for q in queries/*.sql; do
    name=$(basename "$q" .sql)
    # the same bucket width in both (auto is dnsq's own)
    bucket=()
    if grep -q '^-- param: bucket' "$q"; then bucket=(--bucket "$bucket_width"); fi
    read -r ts _ < <(measure "$dnsq" sql -d "$work/dsb" -f "$q" "${bucket[@]}")
    start=$(date +%s.%N)
    td=$("$venv/bin/python" benches/saved_duckdb.py "$work/dsb" "$name" "{\"bucket\": \"$bucket_width\"}")
    tp=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
    echo "| $name | $ts | $tp | $td |"
  done
  echo
  echo "dnsq sql times are whole processes: start, planning, reading, printing. DuckDB runs in"
  echo "Python (its command-line shell is not packaged here): the process column includes"
  echo "starting Python and importing DuckDB, the last column is the query alone."
  if [ -n "$stages" ]; then
    echo
    echo "$stages"
  fi
} > docs/BENCHMARKS.md
cat docs/BENCHMARKS.md
