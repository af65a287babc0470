"""Run the emulator until SIGTERM or SIGINT."""
import signal
import ssl
import threading

from .app import EmulatorApp
from .httpserver import WSGIServer


def listening_line(host, port, tls=False):
    return f"aws_ml emulator listening on {'https' if tls else 'http'}://{host}:{port}"


def serve(host, port, endpoints, on_ready, tls=None):
    """Serve until SIGTERM or SIGINT. on_ready(line) is called once the socket
    listens and the application is built. tls: (certificate file, key file)
    to serve HTTPS."""
    server = WSGIServer(host, port)
    port = server.server_address[1]
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        # the handshake happens on the connection's thread, at its first read
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.app = EmulatorApp(port, endpoints)

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: not from this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    on_ready(listening_line(host, port, bool(tls)))
    try:
        server.serve_forever()
    finally:
        server.server_close()
