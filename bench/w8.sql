-- W8 in DuckDB: scan the Parquet files, filter, aggregate by key, report keys and checksum.
-- Run from the directory holding part-*.parquet (or replace the glob):
--   duckdb -c ".read bench/w8.sql"   or   python -c "import duckdb; print(duckdb.sql(open('bench/w8.sql').read()))"
-- PRAGMA threads=2 matches the 2 worker cores of the other engines.
SET threads = 2;
WITH agg AS (
    SELECT key, sum(value) AS s, count(*) AS c
    FROM read_parquet('part-*.parquet')
    WHERE value > 5000.0
    GROUP BY key
)
SELECT count(*)                                                     AS keys,
       sum(c)                                                       AS total_count,
       sum(CAST(round(s * 100) AS BIGINT))                          AS total_cents,
       sum(((key % 65536) + 1) * CAST(round(s * 100) AS BIGINT) + c) AS checksum
FROM agg;
