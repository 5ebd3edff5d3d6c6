"""Runs every saved query in DuckDB, pandas, Polars and Spark, never through dnsq.

The code comes from docs/ENGINES.md: each fenced block tagged `engine:name`
(```python pandas:top_domains, ```sql duckdb:top_domains ...) is extracted and
run, so the page and this test cannot drift apart. Spark runs the DuckDB SQL
with `:name` parameters.

Usage:
    python engines.py DATASET_DIR [--engines duckdb,pandas,polars,spark]
                      [--runs JSON] [--check]

--runs is a JSON list of parameter sets, each like
    {"leg": "all", "bucket": "1m", "top": 5, "threshold_ms": 100, "domain": null,
     "since": "1900-01-01T00:00:00Z", "until": "2200-01-01T00:00:00Z"}
(keys left out take each query's default). A query is given only the parameters
it declares (its `-- param:` header lines, plus since and until).

Prints one JSON object:
    {"queries": {name: [column, ...]},
     "runs": [{"params": {...}, "results": {engine: {name: [[cell, ...], ...]}}}],
     "types": {engine: {"date": ..., "ts": ..., "aa": ..., "answer_count": ...,
                        "aa_nulls": n, "answer_count_nulls": n, "split_sums": [...], ...}},
     "counts": {"rows": n, "by_status": {...}, "by_leg": {...}, "resolvers": [...], ...}}
Rows are lists in the saved query's column order and row order; timestamps are
RFC 3339 strings in UTC (`2026-11-28T09:49:00Z`, `.ffffff` when not whole
seconds), nulls are null. --check compares the engines with each other (floats
to a relative 1e-9) and exits 1 on a difference, described on stderr.
"""
import argparse
import datetime as dt
import decimal
import inspect
import json
import math
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "ENGINES.md"
QUERIES = REPO / "queries"
ENGINES = ["duckdb", "pandas", "polars", "spark"]
DEFAULT_RUNS = [
    {"leg": leg, "bucket": "1m", "top": 3, "threshold_ms": 1}
    for leg in ["all", "downstream", "upstream"]
] + [{"bucket": "2s", "top": 2, "threshold_ms": 0.5, "domain": "other.test",
      "since": "2026-11-28T09:49:58Z", "until": "2026-11-28T09:50:05Z"}]
UTC = dt.timezone.utc


def blocks():
    """{(engine, name): code} from the tagged fences of docs/ENGINES.md."""
    text = DOC.read_text()
    found = {}
    for m in re.finditer(r"^```\w+ ([\w-]+):(\w+)\n(.*?)^```", text, re.M | re.S):
        key = (m.group(1), m.group(2))
        assert key not in found, f"two blocks tagged {key[0]}:{key[1]} in {DOC}"
        found[key] = m.group(3)
    return found


def saved_queries():
    """{name: (params, columns)} from the header comments of queries/*.sql;
    params maps each declared parameter to its default (text as written)."""
    out = {}
    for f in sorted(QUERIES.glob("*.sql")):
        params = {"since": "1900-01-01T00:00:00Z", "until": "2200-01-01T00:00:00Z"}
        columns = None
        for line in f.read_text().splitlines():
            if m := re.match(r"--\s*param:\s*(\w+)\s*\(\w+,\s*default\s+([^)]*)\)", line):
                params[m.group(1)] = None if m.group(2).strip() == "none" else m.group(2).strip()
            elif m := re.match(r"--\s*param:\s*(\w+)", line):
                params[m.group(1)] = None
            elif m := re.match(r"--\s*columns:\s*(.*)", line):
                columns = [c.strip() for c in m.group(1).split(",")]
        out[f.stem] = (params, columns)
    return out


def interval(text):
    m = re.fullmatch(r"(\d+)\s*(us|ms|s|m|h|d)", text.strip())
    if not m:
        raise SystemExit(f"bucket {text!r}: give a width like 10s, 1m or 1h (auto is dnsq's own)")
    n, unit = int(m.group(1)), m.group(2)
    return dt.timedelta(**{
        "us": {"microseconds": n}, "ms": {"milliseconds": n}, "s": {"seconds": n},
        "m": {"minutes": n}, "h": {"hours": n}, "d": {"days": n}}[unit])


def timestamp(text):
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def typed(run):
    """A run's parameters as Python values."""
    p = dict(run)
    if p.get("bucket") == "auto":
        raise SystemExit("bucket auto is dnsq's own: give a width like 1m")
    if "bucket" in p:
        p["bucket"] = interval(p["bucket"])
    for k in ("since", "until"):
        if p.get(k) is not None:
            p[k] = timestamp(p[k])
    if p.get("threshold_ms") is not None:
        p["threshold_ms"] = float(p["threshold_ms"])
    if p.get("top") is not None:
        p["top"] = int(p["top"])
    return p


def for_query(run, declared):
    """The run's parameters that a query declares, its defaults for the others."""
    return typed({k: run.get(k, default) for k, default in declared.items()})


def cell(v):
    """One value as JSON: timestamps as RFC 3339 UTC, NaN and NA as null."""
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        v = v.astimezone(UTC) if v.tzinfo else v  # naive: Spark's, in UTC (TZ=UTC)
        frac = f".{v.microsecond:06d}" if v.microsecond else ""
        return v.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (bool, str)):
        return v
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:
        pass
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dt.datetime):
        return cell(v)
    return v


def rows_of(frame):
    """Rows of a pandas or Polars frame, in its column order."""
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return list(frame.columns), [[cell(v) for v in r] for r in frame.itertuples(index=False, name=None)]
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    return list(frame.columns), [[cell(v) for v in r] for r in frame.rows()]


class Engine:
    """One engine: an opened dataset and a way to run one saved query."""

    def __init__(self, name, code, root):
        self.name = name
        self.ns = {"LEGS_SQL": code[("sql", "legs")], "__name__": f"dnsq_{name}"}
        exec(compile(code[(name, "open")], f"ENGINES.md {name}:open", "exec"), self.ns)
        self.handle = self.ns[f"open_{name}"](root)
        self.code = code

    def has(self, query):
        key = "duckdb" if self.name == "spark" else self.name
        return (key, query) in self.code

    def run(self, query, params):
        if self.name in ("duckdb", "spark"):
            sql = self.code[("duckdb", query)]
            used = set(re.findall(r"\$(\w+)", sql))
            args = {k: v for k, v in params.items() if k in used}
            if self.name == "duckdb":
                res = self.handle.execute(sql, args)
                columns = [d[0] for d in res.description]
                return columns, [[cell(v) for v in r] for r in res.fetchall()]
            if "bucket" in args:  # Spark's date_bin takes microseconds
                args["bucket"] = args["bucket"] // dt.timedelta(microseconds=1)
            df = self.handle.sql(re.sub(r"\$(\w+)", r":\1", sql), args=args)
            return df.columns, [[cell(v) for v in r] for r in df.collect()]
        key = (self.name, query)
        if not hasattr(self, "_fns"):
            self._fns = {}
        if key not in self._fns:
            exec(compile(self.code[key], f"ENGINES.md {self.name}:{query}", "exec"), self.ns)
            self._fns[key] = self.ns[query]
        fn = self._fns[key]
        accepted = inspect.signature(fn).parameters
        return rows_of(fn(self.handle, **{k: v for k, v in params.items() if k in accepted}))

    def types(self):
        """The types this engine gives `date`, `ts` and two nullable columns, and
        their null counts (nullable ints and booleans must survive)."""
        if self.name == "duckdb":
            r = self.handle.execute(
                "SELECT typeof(date), typeof(ts), typeof(aa), typeof(answer_count), "
                "count(*) - count(aa), count(*) - count(answer_count), count(*) "
                "FROM raw_transactions GROUP BY ALL").fetchall()
            (date, ts, aa, ac, aa_nulls, ac_nulls, rows), = r
            split = self.handle.execute(
                "SELECT sum(id), sum(client_port), sum(response_frame), "
                "sum(epoch_us(response_ts) - epoch_us(ts)) FROM raw_transactions").fetchall()[0]
        elif self.name == "pandas":
            t = self.handle
            date, ts, aa, ac = (str(t.dtypes[c]) for c in ("date", "ts", "aa", "answer_count"))
            aa_nulls, ac_nulls, rows = int(t.aa.isna().sum()), int(t.answer_count.isna().sum()), len(t)
            # the values next to the nulls are still booleans and integers
            assert set(t.aa.dropna().unique()) <= {True, False}
            assert all(isinstance(x, int) for x in t.answer_count.dropna().map(int))
            import pandas as pd

            waited = ((t.response_ts - t.ts) / pd.Timedelta(microseconds=1)).sum()
            split = (t.id.sum(), t.client_port.sum(), t.response_frame.sum(), round(waited))
        elif self.name == "polars":
            import polars as pl

            schema = self.handle.collect_schema()
            date, ts, aa, ac = (str(schema[c]) for c in ("date", "ts", "aa", "answer_count"))
            r = self.handle.select(
                pl.col("aa").null_count(), pl.col("answer_count").null_count(), pl.len()).collect().row(0)
            aa_nulls, ac_nulls, rows = r
            split = self.handle.select(
                pl.col("id").sum(), pl.col("client_port").sum(), pl.col("response_frame").sum(),
                (pl.col("response_ts") - pl.col("ts")).dt.total_microseconds().sum()).collect().row(0)
        else:
            df = self.handle.table("raw_transactions")
            date, ts, aa, ac = (str(df.schema[c].dataType) for c in ("date", "ts", "aa", "answer_count"))
            r = self.handle.sql(
                "SELECT count(*) - count(aa), count(*) - count(answer_count), count(*) FROM raw_transactions"
            ).collect()[0]
            aa_nulls, ac_nulls, rows = r[0], r[1], r[2]
            split = tuple(self.handle.sql(
                "SELECT sum(id), sum(client_port), sum(response_frame), "
                "sum(unix_micros(response_ts) - unix_micros(ts)) FROM raw_transactions").collect()[0])
        # the columns written with BYTE_STREAM_SPLIT, decoded
        split = [int(x) for x in split]
        return {"date": date, "ts": ts, "aa": aa, "answer_count": ac,
                "aa_nulls": aa_nulls, "answer_count_nulls": ac_nulls, "rows": rows,
                "split_sums": split}


def arrow_types(root):
    """What pyarrow and deltalake give without help, beside pandas' plain
    `to_pandas()` (the conversion that loses nullable ints and booleans)."""
    import pyarrow.dataset as ds

    out = {}
    plain = ds.dataset(f"{root}/transactions", format="parquet", partitioning="hive").to_table()
    out["pyarrow_hive_date"] = str(plain.schema.field("date").type)
    out["pyarrow_ts"] = str(plain.schema.field("ts").type)
    df = plain.select(["aa", "answer_count"]).to_pandas()
    out["pandas_plain_aa"] = str(df.aa.dtype)
    out["pandas_plain_answer_count"] = str(df.answer_count.dtype)
    try:
        from deltalake import DeltaTable

        table = DeltaTable(f"{root}/transactions")
        out["deltalake_date"] = str(table.to_pyarrow_dataset().schema.field("date").type)
        out["deltalake_files"] = len(table.file_uris())
    except ImportError:
        pass
    return out


def counts(engines):
    """Plain counts by DuckDB and pandas, beside the saved queries."""
    out = {}
    by = {e.name: e for e in engines}
    if "duckdb" in by:
        q = lambda sql: by["duckdb"].handle.execute(sql).fetchall()  # noqa: E731
        out["rows"] = q("SELECT count(*) FROM raw_transactions")[0][0]
        out["by_status"] = dict(q("SELECT status, count(*) FROM raw_transactions GROUP BY 1"))
        out["by_rcode"] = dict(q("SELECT rcode, count(*) FROM raw_transactions WHERE rcode IS NOT NULL GROUP BY 1"))
        out["by_leg"] = dict(q("SELECT leg, count(*) FROM transactions GROUP BY 1"))
        out["resolvers"] = sorted(f"{ip}:{port}" for ip, port in q("SELECT * FROM resolvers"))
        out["answers"] = q("SELECT count(*) FROM (SELECT unnest(answers) FROM raw_transactions)")[0][0]
        out["days"] = sorted(str(d) for (d,) in q("SELECT DISTINCT date FROM raw_transactions"))
        out["sum_rtt_us"] = round(q("SELECT sum(response_time_ms) * 1000 FROM raw_transactions")[0][0] or 0)
    if "pandas" in by:
        t = by["pandas"].handle
        out["pandas_rows"] = len(t)
        out["pandas_distinct_clients"] = int(t.client_ip.nunique())
        out["pandas_by_leg"] = {k: int(v) for k, v in t.leg.value_counts().items()}
    return out


def same(a, b, rel=1e-9):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or abs(a - b) <= rel * max(abs(a), abs(b))
    return a == b


def compare(results, columns):
    """Differences between engines, each engine against the first."""
    problems = []
    engines = list(results)
    for q, cols in columns.items():
        base = next((e for e in engines if q in results[e]), None)
        for e in engines:
            if e == base or q not in results[e]:
                continue
            a, b = results[base][q], results[e][q]
            if len(a) != len(b):
                problems.append(f"{q}: {base} has {len(a)} rows, {e} {len(b)}")
                continue
            for i, (ra, rb) in enumerate(zip(a, b)):
                if len(ra) != len(rb) or not all(same(x, y) for x, y in zip(ra, rb)):
                    problems.append(f"{q} row {i}: {base} {ra} != {e} {rb}")
                    break
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--runs", default=json.dumps(DEFAULT_RUNS))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    code = blocks()
    queries = saved_queries()
    runs = json.loads(args.runs)
    out = {"queries": {q: cols for q, (_, cols) in queries.items()},
           "params": {q: sorted(params) for q, (params, _) in queries.items()},
           "runs": [], "types": {}}
    engines = []
    for name in args.engines.split(","):
        t0 = time.monotonic()
        engines.append(Engine(name, code, args.root))
        out["types"][name] = engines[-1].types()
        print(f"engines.py: {name} opened in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    out["types"]["arrow"] = arrow_types(args.root)
    out["counts"] = counts(engines)
    problems = []
    for run in runs:
        results = {}
        for engine in engines:
            results[engine.name] = {}
            for q, (declared, columns) in queries.items():
                if not engine.has(q):
                    continue
                try:
                    cols, rows = engine.run(q, for_query(run, declared))
                except Exception as e:
                    raise SystemExit(f"{engine.name} {q} {run}: {type(e).__name__}: {e}") from e
                if columns and cols != columns:
                    problems.append(f"{engine.name} {q}: columns {cols}, the saved query's {columns}")
                results[engine.name][q] = rows
        out["runs"].append({"params": run, "results": results})
        problems += [f"{run}: {p}" for p in compare(results, out["queries"])]
    missing = [f"{e.name}:{q}" for e in engines for q in queries if not e.has(q)]
    out["missing"] = missing
    json.dump(out, sys.stdout, sort_keys=True)
    print()
    if args.check:
        for p in problems:
            print("engines.py:", p, file=sys.stderr)
        if missing:
            print("engines.py: no code for", ", ".join(missing), file=sys.stderr)
        if problems:
            sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        code = e.code
    else:
        code = 0
    # deltalake's threads can abort the interpreter's exit after the answer is
    # out ("terminate called without an active exception", delta-io/delta-rs#2184)
    sys.stdout.flush()
    sys.stderr.flush()
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    os._exit(code or 0)
