"""The reference writers of benches/limits.sh: the same transactions, held in
memory, written as one Parquet file by pyarrow and by DuckDB's COPY, each on
one thread, with dnsq's settings where the writer has them (zstd level 3,
dictionary encoding, page statistics, row groups of ROW_GROUP_ROWS).

    python limits_ref.py DATASET ROUNDS ROW_GROUP_ROWS

Prints one JSON line per writer and round: {"writer":…, "round":…, "items":…,
"seconds":…, "bytes":…}. Reading is not timed, the write and close are.
"""
import glob
import json
import os
import sys
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

dataset, rounds, row_group = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pa.set_cpu_count(1)
pa.set_io_thread_count(1)
files = sorted(glob.glob(os.path.join(dataset, "transactions", "**", "*.parquet"), recursive=True))
files = [f for f in files if "_delta_log" not in f]
table = pa.concat_tables([pq.read_table(f) for f in files])
out = os.path.join(dataset, f".limits-ref-{os.getpid()}.parquet")


def report(writer, round_, seconds):
    size = os.path.getsize(out)
    os.remove(out)
    print(json.dumps({"writer": writer, "round": round_, "items": table.num_rows,
                      "seconds": round(seconds, 4), "bytes": size}), flush=True)


for r in range(1, rounds + 1):
    start = time.perf_counter()
    pq.write_table(table, out, compression="zstd", compression_level=3, use_dictionary=True,
                   write_statistics=True, row_group_size=row_group)
    report("pyarrow", r, time.perf_counter() - start)

con = duckdb.connect()
con.execute("SET threads = 1")
con.register("source", table)
con.execute("CREATE TABLE t AS SELECT * FROM source")
con.unregister("source")
for r in range(1, rounds + 1):
    start = time.perf_counter()
    con.execute(f"COPY t TO '{out}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3, "
                f"ROW_GROUP_SIZE {row_group})")
    report("duckdb", r, time.perf_counter() - start)
