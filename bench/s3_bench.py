"""aws_s3 throughput beside plain COPY on the same server: one query exported
with COPY (query) TO a local file and with aws_s3.query_export_to_s3 (text
and CSV); the same data loaded with COPY table FROM that file and with
aws_s3.table_import_from_s3 (the object as exported, and gzip-encoded). In
MB/s (10^6 bytes of COPY's text or CSV a second) and as a ratio to COPY and
to the aims, with the backend's peak memory growth while each statement runs
(VmRSS, and RssAnon: VmRSS counts the shared buffers a backend touches for
the first time), its transfer process's (VmRSS), and the time aws_s3's S3
requests took (aws_ml.stats()).

    .venv/bin/python bench/s3_bench.py [--mb 256] [--runs 2]

S3 is the emulator's (moto, in one Python process on the same machine), so
the ratios are aws_s3's overhead and that S3's together; boto3 alone uploading
the same bytes (8 MiB parts one after another), in the same rounds, is that
S3's ceiling for an export (the aim is 0.8 of the lower of it and COPY to a
file); boto3 reading them back with one GetObject is measured once.
Every run checks its row count, and each export its size against COPY's file.
Prints a table and writes bench/results/s3.json. Needs `make install`."""
import argparse
import contextlib
import gzip
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from tests.s3_support import transfer_process  # noqa: E402

BUCKET = "aws-s3-bench"
REGION = "us-east-1"
PART_SIZE = 8 * 1024 * 1024  # aws_s3's (plpython/aws_ml/s3_transfer.py)
BYTES_PER_ROW = 87  # about, in the text format, of SOURCE's rows
SOURCE = """
CREATE TABLE bench_s3_source AS
    SELECT n AS id, n % 100 AS label, n * 0.25 AS x1, (n % 7) * 1.5::float8 AS x2,
           md5(n::text) AS digest, 'event ' || n || ' of the benchmark' AS note
    FROM generate_series(1, {rows}) n
"""
QUERY = "SELECT * FROM bench_s3_source"
EXPORT = ("SELECT rows_uploaded, files_uploaded, bytes_uploaded FROM aws_s3.query_export_to_s3("
          "%s, aws_commons.create_s3_uri(%s, %s, %s), %s)")
IMPORT = "SELECT aws_s3.table_import_from_s3('bench_s3_target', '', %s, aws_commons.create_s3_uri(%s, %s, %s))"
S3_REQUEST_MS = "SELECT coalesce(sum(requests * avg_request_ms), 0) FROM aws_ml.stats() WHERE service = 's3'"
SAMPLE_SECONDS = 0.01


def memory_kb(pid):
    """{VmRSS, RssAnon} of pid's /proc status, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            fields[name] = int(value.split()[0])
    return fields


class MemorySampler:
    """The highest VmRSS and RssAnon of pid, read every SAMPLE_SECONDS on a
    thread while the block runs, and their growth over the readings before."""

    def __init__(self, pid):
        self.pid = pid
        self.before = memory_kb(pid)
        self.peak = dict(self.before)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self):
        try:
            for name, value in memory_kb(self.pid).items():
                self.peak[name] = max(self.peak[name], value)
        except FileNotFoundError:
            pass  # a transfer process that ended (idle) as it was read

    def _sample(self):
        while not self._done.wait(SAMPLE_SECONDS):
            self._read()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self._read()

    def growth_kb(self, name):
        return self.peak[name] - self.before[name]


def timed(conn, sql, params=None):
    """One statement, after a checkpoint: {seconds, row (COPY's: its row
    count), rss_kb and anon_kb (the backend's peak growth), rss_before_kb and
    rss_peak_kb, transfer_rss_kb (the transfer process's peak growth),
    s3_request_s}."""
    conn.execute("CHECKPOINT")
    conn.execute("SELECT aws_ml.stats_reset()")
    helper = transfer_process(conn.info.backend_pid)
    with MemorySampler(conn.info.backend_pid) as memory, \
            (MemorySampler(helper) if helper else contextlib.nullcontext()) as helper_memory:
        started = time.perf_counter()
        cursor = conn.execute(sql, params)
        row = cursor.fetchone() if cursor.description else cursor.rowcount
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "row": row, "rss_before_kb": memory.before["VmRSS"],
            "rss_peak_kb": memory.peak["VmRSS"], "rss_kb": memory.growth_kb("VmRSS"),
            "anon_kb": memory.growth_kb("RssAnon"),
            "transfer_rss_kb": helper_memory.growth_kb("VmRSS") if helper_memory else 0,
            "s3_request_s": conn.execute(S3_REQUEST_MS).fetchone()[0] / 1000}


def rounds(runs, contenders):
    """contenders: {name: run} (run() is a timed() result); runs rounds of
    each in turn, so that a load drifting on a shared machine falls on all
    alike: {name: [results]}."""
    results = {name: [] for name in contenders}
    for _ in range(runs):
        for name, run in contenders.items():
            results[name].append(run())
    return results


def summary(results, expected):
    """The median seconds and S3 request time of results, whose rows are
    checked against expected, and the highest memory growth (memory freed
    by one run may stay with the backend: the next one's growth is then
    smaller; the first run's is the figure)."""
    for result in results:
        assert result["row"] == expected, (result["row"], expected)
    return {"median_s": statistics.median(r["seconds"] for r in results),
            "runs_s": [round(r["seconds"], 3) for r in results],
            "s3_request_s": statistics.median(r["s3_request_s"] for r in results),
            "rss_growth_kb": max(r["rss_kb"] for r in results),
            "anon_growth_kb": max(r["anon_kb"] for r in results),
            "transfer_rss_growth_kb": max(r["transfer_rss_kb"] for r in results),
            "rss_before_kb": min(r["rss_before_kb"] for r in results),
            "rss_peak_kb": max(r["rss_peak_kb"] for r in results)}


def case(name, size, measured, copy=None):
    """A result line: MB/s of size bytes, and the ratio to copy's."""
    out = {"case": name, "bytes": size, **measured, "mb_per_s": size / 1e6 / measured["median_s"]}
    if copy is not None:
        out["to_copy"] = out["mb_per_s"] / copy["mb_per_s"]
    return out


def make_tables(conn, mb):
    """bench_s3_source of about mb MB in the text format, an empty bench_s3_target like it; the rows."""
    rows = int(mb * 1e6 / BYTES_PER_ROW)
    conn.execute("DROP TABLE IF EXISTS bench_s3_source, bench_s3_target")
    conn.execute(SOURCE.format(rows=rows))
    conn.execute("CREATE TABLE bench_s3_target (LIKE bench_s3_source)")
    conn.execute("VACUUM ANALYZE bench_s3_source")
    return rows


def exports(conn, s3, directory, rows, runs):
    """COPY (query) TO a file, query_export_to_s3, and boto3 alone uploading
    the file's bytes, text and CSV, in rounds: the results, the text file."""
    results = []
    for name, options in (("text", "format text"), ("csv", "format csv")):
        path, key = directory / f"bench_s3.{name}", f"export.{name}"
        to_file = f"COPY ({QUERY}) TO '{path}' WITH ({options})"
        to_s3 = (QUERY, BUCKET, key, REGION, options)
        runs_of = rounds(runs, {"copy": lambda sql=to_file: timed(conn, sql),
                                "s3": lambda params=to_s3: timed(conn, EXPORT, params),
                                "boto3": lambda: boto3_upload(s3, path)})
        size = path.stat().st_size
        copy = case(f"COPY (query) TO a file, {name}", size, summary(runs_of["copy"], rows))
        assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == size
        direct = case(f"boto3 alone uploading the file, {name}", size, summary(runs_of["boto3"], size))
        exported = case(f"aws_s3.query_export_to_s3, {name}", size, summary(runs_of["s3"], (rows, 1, size)), copy)
        exported["ceiling_mb_per_s"] = min(copy["mb_per_s"], direct["mb_per_s"])
        exported["to_ceiling"], exported["aim"] = exported["mb_per_s"] / exported["ceiling_mb_per_s"], 0.8
        results += [copy, direct, exported]
    return results, directory / "bench_s3.text"


def boto3_upload(s3, path):
    """boto3 in this process uploading the file's bytes to the emulator as
    aws_s3 once did, 8 MiB parts one after another: that S3's ceiling, the
    aim's measure. Only the upload is timed."""
    data = path.read_bytes()
    started = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key="direct")["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(data), PART_SIZE), 1):
        answer = s3.upload_part(Bucket=BUCKET, Key="direct", UploadId=upload_id, PartNumber=number,
                                Body=data[start:start + PART_SIZE])
        parts.append({"ETag": answer["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(Bucket=BUCKET, Key="direct", UploadId=upload_id, MultipartUpload={"Parts": parts})
    return {"seconds": time.perf_counter() - started, "row": len(data), "rss_kb": 0, "anon_kb": 0,
            "transfer_rss_kb": 0, "rss_before_kb": 0, "rss_peak_kb": 0, "s3_request_s": 0}


def imports(conn, s3, text_file, rows, runs):
    """COPY FROM the text file, and table_import_from_s3 of the same bytes as
    exported and gzip-encoded, each into the emptied bench_s3_target."""
    size = text_file.stat().st_size
    started = time.perf_counter()
    packed = gzip.compress(text_file.read_bytes(), compresslevel=1)
    s3.put_object(Bucket=BUCKET, Key="export.text.gz", Body=packed, ContentEncoding="gzip")
    packing_s = time.perf_counter() - started

    def load(sql, params=None):
        conn.execute("TRUNCATE bench_s3_target")
        result = timed(conn, sql, params)
        loaded = conn.execute("SELECT count(*) FROM bench_s3_target").fetchone()[0]
        assert loaded == rows, (loaded, rows)
        return result

    def answer(key, stored):
        return (f'{rows} rows imported into relation "bench_s3_target" from file {key} of {stored} bytes',)

    runs_of = rounds(runs, {
        "copy": lambda: load(f"COPY bench_s3_target FROM '{text_file}'"),
        "s3": lambda: load(IMPORT, ("format text", BUCKET, "export.text", REGION)),
        "gzip": lambda: load(IMPORT, ("format text", BUCKET, "export.text.gz", REGION))})
    conn.execute("TRUNCATE bench_s3_target")
    copy = case("COPY table FROM the file, text", size, summary(runs_of["copy"], rows))
    return [copy,
            case("aws_s3.table_import_from_s3, text", size, summary(runs_of["s3"], answer("export.text", size)), copy),
            {**case("aws_s3.table_import_from_s3, text, gzip", size,
                    summary(runs_of["gzip"], answer("export.text.gz", len(packed))), copy),
             "object_bytes": len(packed), "gzip_level_1_and_put_s": packing_s}]


def emulator_download(s3, path):
    """boto3 in this process reading the file's bytes back from the
    emulator, as an import does: one GetObject read 1 MiB at a time."""
    size = path.stat().st_size

    def download():
        body = s3.get_object(Bucket=BUCKET, Key="direct")["Body"]
        got = 0
        while chunk := body.read(1024 * 1024):
            got += len(chunk)
        assert got == size, (got, size)

    seconds = common.seconds(download)
    return {"bytes": size, "download_s": seconds, "download_mb_per_s": size / 1e6 / seconds}


def measure(conn, emulator, cluster, mb=256, runs=2):
    started = time.perf_counter()
    load = [round(os.getloadavg()[0], 2)]
    conn.execute("CREATE EXTENSION IF NOT EXISTS aws_ml CASCADE")
    conn.execute("CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE")
    s3 = boto3.session.Session(aws_access_key_id="AKIAAWSMLBENCHDIRECT", aws_secret_access_key="direct",
                               region_name=REGION).client("s3", endpoint_url=emulator.url)
    s3.create_bucket(Bucket=BUCKET)
    rows = make_tables(conn, mb)
    # the backend's first call imports boto3 and makes its S3 client: not timed
    conn.execute(EXPORT, (QUERY + " LIMIT 1", BUCKET, "warm-up", REGION, None))
    conn.execute(IMPORT, ("", BUCKET, "warm-up", REGION))
    conn.execute("TRUNCATE bench_s3_target")
    setup_s = time.perf_counter() - started
    directory = Path(cluster.dir)  # the postgres OS user may write there
    try:
        exported, text_file = exports(conn, s3, directory, rows, runs)
        imported = imports(conn, s3, text_file, rows, runs)
        direct = emulator_download(s3, text_file)
        load.append(round(os.getloadavg()[0], 2))
    finally:
        for path in directory.glob("bench_s3.*"):
            path.unlink()
        for key in ("warm-up", "export.text", "export.csv", "export.text.gz", "direct"):
            s3.delete_object(Bucket=BUCKET, Key=key)
        conn.execute("DROP TABLE IF EXISTS bench_s3_source, bench_s3_target")
    for result in imported[1:]:
        result["to_ceiling"], result["aim"] = result["to_copy"], 0.9
    return {"rows": rows, "runs": runs, "setup_s": setup_s, "load_average_1m": load, "export": exported,
            "import": imported, "emulator_direct": direct, "seconds": time.perf_counter() - started}


def print_table(results):
    print(f"{results['rows']:,} rows, {results['runs']} runs each (median); "
          f"setup {results['setup_s']:.1f} s, in all {results['seconds']:.1f} s; "
          f"load average {' then '.join(map(str, results['load_average_1m']))}")
    print(f"{'case':42} {'MB':>6} {'s':>6} {'MB/s':>6} {'x COPY':>6} {'x aim':>11} {'S3 req s':>8} "
          f"{'VmRSS +kB':>10} {'RssAnon +kB':>11} {'transfer +kB':>12}")
    for r in results["export"] + results["import"]:
        against = f"{r['to_ceiling']:.2f}/{r['aim']}" if "aim" in r else ""
        print(f"{r['case']:42} {r['bytes'] / 1e6:>6.1f} {r['median_s']:>6.2f} {r['mb_per_s']:>6.1f} "
              f"{r.get('to_copy', 1):>6.2f} {against:>11} {r['s3_request_s']:>8.2f} {r['rss_growth_kb']:>10,} "
              f"{r['anon_growth_kb']:>11,} {r['transfer_rss_growth_kb']:>12,}")
    print(f"boto3 straight from the emulator, no database: GetObject down "
          f"{results['emulator_direct']['download_mb_per_s']:.1f} MB/s")
    print("x aim: an export's MB/s over the lower of COPY's to a file and boto3's upload (aim 0.8); an import's "
          "over COPY's from the file (aim 0.9)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=256, help="about this many MB of rows in the text format")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with common.environment() as (emulator, cluster, conn):
        results = measure(conn, emulator, cluster, args.mb, args.runs)
    results["machine"] = common.machine()
    print_table(results)
    print(f"wrote {common.write_results('s3', results)}")


if __name__ == "__main__":
    main()
