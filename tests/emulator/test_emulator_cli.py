"""python -m emulator: the listening line, --endpoint, signals, --background."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from emulator.client import Emulator

ROOT = Path(__file__).resolve().parents[2]
LINE_PREFIX = "aws_ml emulator listening on http://127.0.0.1:"


def get(url, path):
    with urllib.request.urlopen(f"{url}/_emulator/{path}", timeout=5) as answer:
        return json.load(answer)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_port_0_prints_the_line_and_a_signal_exits_0(stop_signal):
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline().rstrip("\n")
        assert line.startswith(LINE_PREFIX)
        port = int(line[len(LINE_PREFIX):])
        assert port > 0
        assert get(line.rsplit(" ", 1)[1], "health") == {"status": "ok"}
        process.send_signal(stop_signal)
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.stdout.close()


def test_endpoint_option_registers_a_model_file(tmp_path):
    path = tmp_path / "double.json"
    path.write_text(json.dumps({"kind": "linear", "coef": [2.0], "intercept": 1.0}))
    server = Emulator(endpoints={"dou=ble": str(path)})
    try:
        assert "dou=ble" in server.endpoints()
        assert server.endpoint_model("dou=ble")["coef"] == [[2.0]]
    finally:
        assert server.stop() == 0


def test_a_bad_endpoint_file_stops_the_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--endpoint", f"x={tmp_path}/missing.json"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "missing.json" in result.stderr


def test_background_detaches_and_leaves_a_pidfile(tmp_path):
    pidfile, logfile = tmp_path / "emulator.pid", tmp_path / "emulator.log"
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--background",
         "--pidfile", str(pidfile), "--logfile", str(logfile)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0
    assert result.stdout.startswith(LINE_PREFIX)
    pid = int(pidfile.read_text())
    try:
        assert get(result.stdout.strip().rsplit(" ", 1)[1], "health") == {"status": "ok"}
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the background emulator did not exit on SIGTERM")
