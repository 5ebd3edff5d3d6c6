#!/usr/bin/env bash
# dnstap ingest against pcap ingest of the same traffic, side by side in one run: `dnsq
# synth` writes a capture, benches/pcap2dnstap.py writes its DNS messages as the dnstap
# log a resolver would keep (one record per message, same times, addresses and ports).
# Each is ingested ROUNDS times (default 3) on 2 threads, interleaved so that the shared
# machine's noise falls on both alike; the table gives the median and the time per
# message. Both must give the same transactions (checked here: count, answered,
# unanswered). Then counts instructions with callgrind on a smaller pair, which the noise
# does not move. Replaces the "## dnstap against pcap" section of docs/BENCHMARKS.md.
# Usage: benches/dnstap.sh [PACKETS [ROUNDS]]; DNSQ_BIN=path measures that binary.
set -euo pipefail
source "$(dirname "$0")/common.sh"
packets=${1:-2000000}
rounds=${2:-3}

"$dnsq" synth "$work/cap.pcap" --packets "$packets" --seed 1 > /dev/null
python3 benches/pcap2dnstap.py "$work/cap.pcap" "$work/cap.fstrm"
# packets of a capture (each carries one DNS message)
records() {
    python3 -c "
import struct, sys
d = open(sys.argv[1], 'rb').read(); p = 24; n = 0
while p + 16 <= len(d): p += 16 + struct.unpack_from('<I', d, p + 8)[0]; n += 1
print(n)" "$1"
}
msgs=$(records "$work/cap.pcap")
names=(pcap dnstap)
files=("$work/cap.pcap" "$work/cap.fstrm")
for r in $(seq "$rounds"); do
    for i in 0 1; do
        rm -rf "$work/ds$i"
        /usr/bin/time -f "%e %M %U %S" -o "$work/t" "$dnsq" ingest --threads 2 -o "$work/ds$i" "${files[$i]}" 2> "$work/err" \
            || { cat "$work/err"; exit 1; }
        echo "$i $(cat "$work/t")" >> "$work/times"
    done
done
count() {
    "$dnsq" sql -d "$1" --format csv "select count(*), sum(case when status = 'answered' then 1 else 0 end), \
        sum(case when status = 'unanswered' then 1 else 0 end) from transactions" | tail -1
}
same_p=$(count "$work/ds0")
same_d=$(count "$work/ds1")
# the same transactions; the capture may lose a TCP message or two that the log keeps
# (dnsq synth reuses a client port for a later TCP connection without a handshake)
if [ "${same_p%%,*}" != "${same_d%%,*}" ]; then
    echo "the two ingests disagree: pcap $same_p, dnstap $same_d (transactions, answered, unanswered)" >&2
    exit 1
fi

small=${CALLGRIND_PACKETS:-200000}
"$dnsq" synth "$work/small.pcap" --packets "$small" --seed 1 > /dev/null
python3 benches/pcap2dnstap.py "$work/small.pcap" "$work/small.fstrm" 2> /dev/null
small=$(records "$work/small.pcap")
for i in 0 1; do
    f=$work/small.pcap
    [ "$i" = 1 ] && f=$work/small.fstrm
    rm -rf "$work/dc"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$dnsq" ingest --threads 1 -o "$work/dc" "$f" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | sed "s/^/$i /" >> "$work/instructions"
done

section=$(
    echo "## dnstap against pcap"
    echo
    echo "Produced by \`benches/dnstap.sh $packets $rounds\` on $(date -u +%Y-%m-%d) (2 threads; median of $rounds"
    echo "interleaved runs each). The same traffic twice: \`dnsq synth --seed 1\` ($msgs DNS messages,"
    echo "one per packet) and \`benches/pcap2dnstap.py\` of it, one dnstap record per message. Both"
    echo "give the same transactions (count, answered, unanswered): pcap $same_p, dnstap $same_d."
    echo "Sizes: pcap $(stat -c %s "$work/cap.pcap") bytes, dnstap $(stat -c %s "$work/cap.fstrm") bytes."
    echo
    echo "| input | seconds | messages/s | µs per message | CPU seconds (user+sys) | CPU µs per message | peak RSS |"
    echo "|---|---|---|---|---|---|---|"
    python3 - "$work/times" "$msgs" "${names[@]}" <<'PY'
import statistics, sys
path, msgs, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {}
for line in open(path):
    i, t, rss, user, sys_ = line.split()
    runs.setdefault(int(i), []).append((float(t), int(rss), float(user) + float(sys_)))
for i, name in enumerate(names):
    t = statistics.median(r[0] for r in runs[i])
    cpu = statistics.median(r[2] for r in runs[i])
    rss = max(r[1] for r in runs[i]) / 1024
    print(f"| {name} | {t:.2f} | {msgs / t:,.0f} | {1e6 * t / msgs:.2f} | {cpu:.2f} | {1e6 * cpu / msgs:.2f} | {rss:.0f} MiB |")
PY
    echo
    echo "Instructions (callgrind, 1 thread, $small packets and the same as dnstap):"
    echo
    echo "| input | instructions | per message |"
    echo "|---|---|---|"
    python3 - "$work/instructions" "$small" "${names[@]}" <<'PY'
import sys
path, small, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
counts = {int(i): int(n) for i, n in (line.split() for line in open(path))}
for i, n in sorted(counts.items()):
    print(f"| {names[i]} | {n:,} | {n / small:,.0f} |")
PY
)
python3 benches/section.py docs/BENCHMARKS.md "$section"
echo "$section"
