"""One saved query in DuckDB, as the engines test runs it (tests/py/engines.py: the
query's duckdb block in docs/ENGINES.md, over the dataset's Parquet files, with the
resolver legs found as dnsq finds them), timed alone. Usage:
saved_duckdb.py DATASET NAME RUN_JSON; prints the query's seconds."""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "py"))
import engines  # noqa: E402

root, name, run = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
declared, _ = engines.saved_queries()[name]
engine = engines.Engine("duckdb", engines.blocks(), root)
params = engines.for_query(run, declared)
t = time.perf_counter()
engine.run(name, params)
print(f"{time.perf_counter() - t:.2f}")
