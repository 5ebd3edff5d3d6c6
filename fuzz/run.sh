#!/usr/bin/env bash
# Builds the fuzz targets, seeds their corpora from the project's captures and
# runs each target for SECONDS (default 600): `fuzz/run.sh [SECONDS] [TARGET...]`.
# CI runs `fuzz/run.sh 20` as a smoke pass. Needs cargo-fuzz; on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it pass its -Z flags.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_dns decode_frame tcp_stream dnstap)
export RUSTC_BOOTSTRAP=1
fuzz_target_dir="${DNSQ_FUZZ_TARGET_DIR:-$HOME/.cache/dnsq-fuzz-target}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

cd "$here"
# the seeder is an ordinary build: it only reads captures
CARGO_TARGET_DIR="$fuzz_target_dir/seed" cargo run -q --release --bin seed -- \
    $(find ../tests/corpus ../data -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' -o -name '*.pcap.gz' \))
# dnstap starts from the real Frame Streams files in data/
mkdir -p corpus/dnstap
cp ../data/*.fstrm corpus/dnstap/
for t in "${targets[@]}"; do
    cargo fuzz build --target-dir "$fuzz_target_dir" "$t"
done
for t in "${targets[@]}"; do
    echo "fuzz: $t for ${seconds}s"
    log="$fuzz_target_dir/$t.log"
    if ! cargo fuzz run --target-dir "$fuzz_target_dir" "$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz: $t failed; the input is in fuzz/artifacts/$t" >&2
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)|cov: ' "$log" | tail -n 4
done
