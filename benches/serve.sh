#!/usr/bin/env bash
# How fast `dnsq serve`'s dashboard answers over a large dataset DATASET (for example
# the scale run's: `dnsq synth big.pcap --packets 20000000 --seed 2 && dnsq ingest -o
# DATASET big.pcap`, about 10 million transactions), as Chromium sees it: the first
# load, a reload, a click on a domain, back, a time range, an rcode filter, its removal,
# 1-minute buckets from the menu, 5-minute buckets as a link, each until every panel is drawn (benches/serve.py). A fresh server per round; ROUNDS rounds
# (default 3), medians. Replaces the "## Dashboard" section of docs/BENCHMARKS.md.
# Usage: benches/serve.sh DATASET [ROUNDS]; DNSQ_BIN=path measures that binary.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ds=$1
rounds=${2:-3}
rows=$("$dnsq" sql -d "$ds" --format csv "select count(*) from transactions" | tail -1)
# a failed round leaves no server behind
pid=
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for r in $(seq "$rounds"); do
    "$dnsq" serve -d "$ds" --addr 127.0.0.1:0 > "$work/url" 2> "$work/serve.$r" &
    pid=$!
    until [ -s "$work/url" ]; do sleep 0.2; done
    "$venv/bin/python" benches/serve.py "$(head -1 "$work/url")" > "$work/r.$r.json"
    kill "$pid"
    wait "$pid" || true
    : > "$work/url"
done
section=$(
    echo "## Dashboard"
    echo
    echo "Produced by \`benches/serve.sh DATASET $rounds\` on $(date -u +%Y-%m-%d) over $rows transactions"
    echo "(a \`dnsq synth --packets 20000000\` capture, ingested), release build, $(nproc) cores,"
    echo "median of $rounds rounds, a fresh \`dnsq serve\` each. Chromium (headless, through Playwright)"
    echo "loads the page and each change of view, and the time is until every panel is drawn;"
    echo "the page asks for every panel in one streamed request (a browser sends at most 6 at once)."
    echo
    python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{work}/r.{r}.json")) for r in range(1, rounds + 1)]
print("| view | seconds until every panel is drawn | slowest panel, asked to drawn, ms | slowest request, ms |")
print("|---|---|---|---|")
for i, v in enumerate(runs[0]["views"]):
    secs = statistics.median(r["views"][i]["seconds"] for r in runs)
    panel = statistics.median(max(r["views"][i]["arrived"].values(), default=0) for r in runs)
    slow = statistics.median(max((d for _, d in r["requests"][r["views"][i]["view"]]), default=0) for r in runs)
    print(f"| {v['view']} | {secs:.2f} | {panel:,.0f} | {slow:,.0f} |")
print()
print("A panel is timed by the page, from asking to its line of the streamed answer")
print("(`/api/panels`, every panel of the view in one response) arriving and drawn; a request, by the")
print("browser's resource timing (the panels' one, the header's, the page's own).")
print()
print("Each panel's query as the server timed it (median ms), in three views: rcode SERVFAIL (its")
print("rows read once, then every panel over them), 1-minute buckets from the menu and 5-minute")
print("buckets as a link, both over all the data (a panel whose query does not read the bucket")
print("keeps its answer from the first load, and its time):")
print()
print("| panel | rcode SERVFAIL | 1-minute buckets, menu | 5-minute buckets, link |")
print("|---|---|---|---|")
for k in runs[0]["panels"]:
    a, b, c = (statistics.median(r["panels"][k][i] for r in runs) for i in (0, 1, 2))
    print(f"| {k} | {a:,.0f} | {b:,.0f} | {c:,.0f} |")
print()
print("The first load includes reading the panels' columns of every transaction into memory")
print("(once per dataset commit; \"held in memory\" on the server's stderr gives its size and time).")
PY
)
python3 benches/section.py docs/BENCHMARKS.md "$section"
echo "$section"
