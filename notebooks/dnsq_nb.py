"""Helpers the notebooks share: find dnsq, make a dataset from the sample capture,
open a dataset in DuckDB with dnsq's `leg` column and `date_bin` function.

The SQL here is the one in docs/ENGINES.md ("Opening the dataset", "Legs").
"""
import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import duckdb


def repo_root():
    """The checkout this notebook sits in (the directory holding data/sample.pcap)."""
    here = Path.cwd().resolve()
    for d in [here, *here.parents]:
        if (d / "data" / "sample.pcap").is_file():
            return d
    raise FileNotFoundError("data/sample.pcap: run the notebook from a dnsq checkout")


def dnsq_binary():
    """$DNSQ_BIN, else `dnsq` on PATH, else a debug or release build in
    $CARGO_TARGET_DIR, ~/.cache/dnsq-target or the checkout's target/."""
    if os.environ.get("DNSQ_BIN"):
        return os.environ["DNSQ_BIN"]
    if found := shutil.which("dnsq"):
        return found
    targets = [os.environ.get("CARGO_TARGET_DIR"), Path.home() / ".cache" / "dnsq-target"]
    try:
        targets.append(repo_root() / "target")
    except FileNotFoundError:
        pass
    for t in filter(None, targets):
        for profile in ("debug", "release"):
            b = Path(t) / profile / "dnsq"
            if b.is_file():
                return str(b)
    raise FileNotFoundError("no dnsq binary: set DNSQ_BIN, put dnsq on PATH or run `cargo build`")


def sample_dataset(capture=None):
    """Ingests data/sample.pcap (or `capture`) into a new temporary directory
    and returns its path; the directory goes when the kernel exits."""
    capture = capture or repo_root() / "data" / "sample.pcap"
    tmp = tempfile.mkdtemp(prefix="dnsq-notebook-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    out = Path(tmp) / "dataset"
    r = subprocess.run([dnsq_binary(), "ingest", "-o", str(out), str(capture)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"dnsq ingest failed:\n{r.stderr}")
    print(r.stderr.strip().splitlines()[0])
    return str(out)


LEGS_SQL = """
CREATE TEMPORARY VIEW resolvers AS
WITH mostly_ra AS (
    SELECT server_ip, server_port
    FROM raw_transactions
    GROUP BY server_ip, server_port
    HAVING 2 * count(CASE WHEN ra THEN 1 END) > count(ra)
)
SELECT server_ip, server_port
FROM mostly_ra r
WHERE EXISTS (
    SELECT 1 FROM raw_transactions o
    WHERE o.client_ip = r.server_ip
        AND (o.server_ip <> r.server_ip OR o.server_port <> r.server_port)
);

CREATE TEMPORARY VIEW transactions AS
SELECT t.*,
    CASE
        WHEN to_resolver.server_ip IS NOT NULL THEN 'downstream'
        WHEN from_resolver.ip IS NOT NULL THEN 'upstream'
        ELSE 'downstream'
    END AS leg
FROM raw_transactions t
LEFT JOIN resolvers to_resolver
    ON to_resolver.server_ip = t.server_ip AND to_resolver.server_port = t.server_port
LEFT JOIN (SELECT DISTINCT server_ip AS ip FROM resolvers) from_resolver
    ON from_resolver.ip = t.client_ip;
"""


def open_duckdb(root):
    """A DuckDB connection with views `transactions` (with `leg`), `captures`
    and `resolvers`, and dnsq's `date_bin(width, ts)` (buckets from 1970-01-01 UTC)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"""
        CREATE VIEW raw_transactions AS
        SELECT * FROM read_parquet('{root}/transactions/*/*.parquet',
                                   hive_partitioning = true, hive_types = {{'date': DATE}})""")
    con.execute(f"CREATE VIEW captures AS SELECT * FROM read_parquet('{root}/captures/*.parquet')")
    con.execute("""
        CREATE MACRO date_bin(width, t) AS
        time_bucket(width, t, TIMESTAMPTZ '1970-01-01 00:00:00+00')""")
    for statement in LEGS_SQL.split(";"):
        if statement.strip():
            con.execute(statement)
    return con
