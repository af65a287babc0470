"""Run the emulator until SIGTERM or SIGINT."""
import signal
import threading

from .app import EmulatorApp
from .httpserver import WSGIServer


def listening_line(host, port):
    return f"aws_ml emulator listening on http://{host}:{port}"


def serve(host, port, endpoints, on_ready):
    """Serve until SIGTERM or SIGINT. on_ready(line) is called once the socket
    listens and the application is built."""
    server = WSGIServer(host, port)
    port = server.server_address[1]
    server.app = EmulatorApp(port, endpoints)

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: not from this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    on_ready(listening_line(host, port))
    try:
        server.serve_forever()
    finally:
        server.server_close()
