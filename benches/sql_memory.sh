#!/usr/bin/env bash
# Peak memory of `dnsq sql "select * from transactions"` in each streaming output
# format, over a synthetic capture: the result must stream, so peak RSS stays flat
# (target: under 512 MiB at 10 million transactions) whatever the result's size.
#
# Usage: benches/sql_memory.sh [PACKETS]   (default 20000000, about 10 M transactions)
# DNSQ_BIN=path measures that binary instead of a fresh release build (a debug
# binary works too; only small sizes are practical with one).
set -euo pipefail
source "$(dirname "$0")/common.sh"
packets=${1:-20000000}

"$dnsq" synth "$work/cap.pcap" --packets "$packets" --seed 1 > /dev/null
"$dnsq" ingest -o "$work/ds" "$work/cap.pcap" 2> /dev/null
rm -f "$work/cap.pcap"
rows=$("$dnsq" sql -d "$work/ds" --format csv "select count(*) from transactions" | tail -1)

echo "dnsq sql \"select * from transactions\" over $rows transactions ($packets packets), $(nproc) cores"
echo
echo "| format | output bytes | seconds | peak RSS |"
echo "|---|---|---|---|"
for format in table csv ndjson; do
  # `| wc -c` as a user would pipe it; time -v reports the dnsq process alone
  /usr/bin/time -v -o "$work/time" "$dnsq" sql -d "$work/ds" --format "$format" \
    "select * from transactions" 2> "$work/stderr" | wc -c > "$work/bytes"
  rss=$(awk -F: '/Maximum resident set size/{gsub(/ /,"",$2); print $2}' "$work/time")
  secs=$(awk '/Elapsed \(wall clock\)/{print $NF}' "$work/time")
  printf '| %s | %s | %s | %.0f MiB |\n' "$format" "$(cat "$work/bytes")" "$secs" "$(echo "$rss/1024" | bc -l)"
done
