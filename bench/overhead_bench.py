"""Where the time of one detect_sentiment call goes, layer by layer, inside a
backend: boto3 on the backend's own thread, the same on aws_ml's worker
thread, aws_ml's request path (settings, statement cache, stats), the SQL
function through SPI, and the SQL function from a client, next to a boto3
loop in this process. No emulated latency. Also the same pure-Python work
timed in the backend, in this process, and in a program of its own that
embeds the shared libpython this Python was built with (bench/
embedded_python.c, built with cc): plpython3u runs Debian's shared
libpython, slower than the static /usr/bin/python3 for the same code.

    .venv/bin/python bench/overhead_bench.py [--calls 1000] [--runs 3]

Prints a table and writes bench/results/overhead.json. Needs `make install`."""
import argparse
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

PURE_PYTHON = """
def pure_python_ms():
    import json, time
    started = time.perf_counter()
    encoded = {str(i): json.dumps({"a": i, "b": [i, i + 1]}) for i in range(100_000)}
    return len(encoded) and (time.perf_counter() - started) * 1000


def best_pure_python_ms():
    return min(pure_python_ms() for _ in range(3))
"""

# Runs in the backend. The package's directory comes from the first line of
# detect_sentiment's own body, so the layers below are the installed code.
LAYERS = r"""
DO $do$
import json, time
exec(plpy.execute("SELECT prosrc FROM pg_catalog.pg_proc WHERE proname = 'detect_sentiment'")[0]["prosrc"].strip()
     .splitlines()[0])
from aws_ml import credentials, request, settings, wait
from aws_ml.services import COMPREHEND
calls, tag = %(calls)s, %(tag)s
client = credentials.client_for(COMPREHEND, settings.current())
sql = plpy.prepare("SELECT aws_comprehend.detect_sentiment($1, 'en')", ["text"])
layers = {
    "boto3 on the backend's thread": lambda text: client.detect_sentiment(Text=text, LanguageCode="en"),
    "boto3 on a worker thread": lambda text: wait.run(client.detect_sentiment, Text=text, LanguageCode="en"),
    "aws_ml request.call": lambda text: request.call(COMPREHEND, "DetectSentiment", Text=text, LanguageCode="en"),
    "detect_sentiment through SPI": lambda text: plpy.execute(sql, [text]),
}
%(pure_python)s
ms = {"pure Python work in the backend (ms in all)": best_pure_python_ms()}
for name, call in layers.items():
    started = time.perf_counter()
    for i in range(calls):
        call(f"{tag} {name} {i}: I love this product")
    ms[name] = (time.perf_counter() - started) / calls * 1000
plpy.notice(json.dumps(ms))
$do$ LANGUAGE plpython3u
"""
EMBEDDED_PYTHON = Path(__file__).resolve().parent / "embedded_python.c"


def build_embedded_python(directory):
    """bench/embedded_python.c built in directory against this Python's
    shared libpython; the program's path."""
    config = sysconfig.get_config_var
    program = Path(directory) / "embedded_python"
    subprocess.run(["cc", "-O2", str(EMBEDDED_PYTHON), f"-I{config('INCLUDEPY')}", f"-L{config('LIBDIR')}",
                    f"-Wl,-rpath,{config('LIBDIR')}", f"-lpython{config('VERSION')}", "-o", str(program)],
                   check=True)
    return program


def pure_python_in_shared_libpython(program):
    """The pure-Python work's best of 3, in ms, in program (build_embedded_python), outside PostgreSQL."""
    source = PURE_PYTHON + "\nprint(best_pure_python_ms())\n"
    return float(subprocess.run([str(program), source], check=True, capture_output=True, text=True).stdout)


FROM_CLIENT = ("SELECT count((aws_comprehend.detect_sentiment(t, 'en')).sentiment) "
               "FROM (SELECT %s || ' ' || n || ': I love this product' AS t FROM generate_series(1, %s) n) texts")


def one_run(conn, emulator, calls, tag, notices, embedded_python):
    """{layer: ms per call} of one run; notices: where conn's notices go;
    embedded_python: build_embedded_python's program."""
    conn.execute(LAYERS.replace("%(calls)s", str(calls)).replace("%(tag)s", repr(tag))
                 .replace("%(pure_python)s", PURE_PYTHON))
    layers = json.loads(notices[-1])
    exec(PURE_PYTHON, here := {})
    layers["pure Python work in this process (ms in all)"] = here["best_pure_python_ms"]()
    layers["pure Python work embedding the shared libpython (ms in all)"] = pure_python_in_shared_libpython(
        embedded_python)
    conn.execute("SET aws_ml.batch_mode = off")  # a call a row: the per-call path
    layers["detect_sentiment from a client"] = common.seconds(
        lambda: conn.execute(FROM_CLIENT, (tag, calls)).fetchone()) / calls * 1000
    conn.execute("RESET aws_ml.batch_mode")
    client = boto3.session.Session(aws_access_key_id="AKIAAWSMLBENCHDIRECT", aws_secret_access_key="direct",
                                   region_name="us-east-1").client("comprehend", endpoint_url=emulator.url)
    client.detect_sentiment(Text="warm-up", LanguageCode="en")
    layers["boto3 in the benchmark's process"] = common.seconds(
        lambda: [client.detect_sentiment(Text=f"{tag} direct {i}", LanguageCode="en") for i in range(calls)]
    ) / calls * 1000
    return layers


def measure(conn, emulator, calls=1000, runs=3):
    emulator.reset()
    conn.execute("SELECT aws_comprehend.detect_sentiment('warm-up', 'en')")
    notices = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    with tempfile.TemporaryDirectory() as directory:
        embedded_python = build_embedded_python(directory)
        runs_ms = [one_run(conn, emulator, calls, f"run {run}", notices, embedded_python) for run in range(runs)]
    return {"calls": calls, "runs": runs,
            "ms_per_call": {layer: statistics.median(run[layer] for run in runs_ms) for layer in runs_ms[0]}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with common.environment() as (emulator, cluster, conn):
        results = measure(conn, emulator, args.calls, args.runs)
    for layer, ms in results["ms_per_call"].items():
        print(f"{layer:60} {ms:8.3f} ms")
    print(f"wrote {common.write_results('overhead', results)}")


if __name__ == "__main__":
    main()
