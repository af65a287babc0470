"""python -m emulator [--host H] [--port P] [--endpoint NAME=PATH ...]
                      [--tls-cert F --tls-key F] [--background --pidfile F [--logfile F]]"""
import argparse
import json
import os
import select
import ssl
import sys
import time
import traceback
import urllib.request

READY_TIMEOUT_SECONDS = 30


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Local emulator of the AWS ML services.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566, help="0 picks a free port")
    parser.add_argument(
        "--endpoint", action="append", default=[], metavar="NAME=PATH",
        help="register a SageMaker endpoint from a model file (split at the last '='); repeatable",
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument("--background", action="store_true", help="detach once serving")
    parser.add_argument("--pidfile", help="with --background: where to write the server's pid")
    parser.add_argument("--logfile", help="with --background: where the server's output goes")
    args = parser.parse_args(argv)
    if args.background and not args.pidfile:
        parser.error("--background needs --pidfile")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    for spec in args.endpoint:
        if "=" not in spec:
            parser.error(f"--endpoint {spec!r}: expected NAME=PATH")
    return args


def _load_endpoints(specs):
    from .models import ModelFileError, load_model_file

    endpoints = {}
    for spec in specs:
        name, path = spec.rsplit("=", 1)
        try:
            endpoints[name] = load_model_file(path)
        except ModelFileError as error:
            sys.exit(f"emulator: --endpoint {name}: {error}")
    return endpoints


def _run(args, on_ready):
    from .server import serve

    serve(args.host, args.port, _load_endpoints(args.endpoint), on_ready,
          (args.tls_cert, args.tls_key) if args.tls_cert else None)


def _print_line(line):
    print(line, flush=True)


def _wait_healthy(url, cafile=None):
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_emulator/health", timeout=2, context=context) as answer:
                if json.load(answer).get("status") == "ok":
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _background(args):
    """Fork before anything heavy is imported (xgboost's thread pools do not
    survive a fork); the parent returns once the child serves."""
    read_end, write_end = os.pipe()
    if os.fork():
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], READY_TIMEOUT_SECONDS)
        line = os.read(read_end, 4096).decode().strip() if ready else ""
        if not line or not _wait_healthy(line.rsplit(" ", 1)[1], args.tls_cert):
            sys.exit("emulator: the background server did not start; see its logfile")
        _print_line(line)
        return
    os.close(read_end)
    os.setsid()
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)
    with open(args.logfile or os.devnull, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)

    def on_ready(line):
        with open(args.pidfile, "w") as pidfile:
            pidfile.write(f"{os.getpid()}\n")
        os.write(write_end, line.encode())
        os.close(write_end)
        _print_line(line)

    try:
        _run(args, on_ready)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.background:
        _background(args)
    else:
        _run(args, _print_line)


if __name__ == "__main__":
    main()
