"""Reads a dnsq dataset with DuckDB and pyarrow/pandas, never through dnsq.

Usage: python engines.py DATASET_DIR
Prints one JSON object of counts that tests/engines.rs compares with `dnsq sql`.
"""
import json
import sys

import duckdb
import pyarrow.dataset as ds

root = sys.argv[1]
con = duckdb.connect()
glob = f"{root}/transactions/*/*.parquet"
q = lambda sql: con.execute(sql.replace("T", f"read_parquet('{glob}', hive_partitioning = true)", 1)).fetchall()

out = {}
out["rows"] = q("select count(*) from T")[0][0]
out["by_status"] = {s: n for s, n in q("select status, count(*) from T group by 1")}
out["by_rcode"] = {str(r): n for r, n in q("select rcode, count(*) from T where rcode is not null group by 1")}
out["answers"] = q("select count(*) from (select unnest(answers) from T)")[0][0]
out["days"] = sorted(str(d) for (d,) in q("select distinct date from T"))
out["sum_rtt_us"] = round(q("select sum(response_time_ms) * 1000 from T")[0][0] or 0)
out["ts_type"] = str(q("select typeof(ts) from T limit 1")[0][0])

table = ds.dataset(f"{root}/transactions", format="parquet", partitioning="hive").to_table()
df = table.to_pandas()
out["pandas_rows"] = len(df)
out["pandas_distinct_clients"] = int(df["client_ip"].nunique())
out["arrow_ts_type"] = str(table.schema.field("ts").type)
print(json.dumps(out, sort_keys=True))
