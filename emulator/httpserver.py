"""A small threaded WSGI server with HTTP/1.1 keep-alive.

werkzeug's development server closes the connection after every response
(so every call pays a new connection and a new thread) and writes headers and
body separately; that halves the throughput one boto3 client gets. This server
keeps connections open, reads the whole request body first (Content-Length or
chunked) and sends each answer with a single write."""
import io
import select
import socket
import ssl
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

IDLE_CONNECTION_SECONDS = 120
SOCKET_ENVIRON_KEY = "emulator.socket"
# (bytes, stalls): the answer's body stops after that many bytes; the
# connection then closes, or stays open until the client closes it
CUT_BODY_ENVIRON_KEY = "emulator.cut_body"
_POLL_SECONDS = 0.02


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aws-ml-emulator"
    timeout = IDLE_CONNECTION_SECONDS

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code="-", size="-"):
        pass

    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or not self.parse_request():
                self.close_connection = True
                return
            self._answer(self._read_body())
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self):
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()

    def _environ(self, body):
        path, _, query = self.path.partition("?")
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if isinstance(self.connection, ssl.SSLSocket) else "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            SOCKET_ENVIRON_KEY: self.connection,
        }
        for name in set(self.headers.keys()):
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"):
                environ[key] = ",".join(self.headers.get_all(name))
        return environ

    def _answer(self, body):
        started = {}
        environ = self._environ(body)

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = status, headers

        try:
            chunks = self.server.app(environ, start_response)
            try:
                payload = b"".join(chunks)
            finally:
                getattr(chunks, "close", lambda: None)()
        except (ConnectionError, TimeoutError):
            raise
        except Exception:
            traceback.print_exc()
            started = {"status": "500 Internal Server Error", "headers": [("Content-Type", "text/plain")]}
            payload = b"internal error in the emulator"
        self._send(started["status"], started["headers"], payload, environ.get(CUT_BODY_ENVIRON_KEY))

    def _send(self, status, headers, payload, cut=None):
        code = int(status.split(None, 1)[0])
        lines = [f"HTTP/1.1 {status}"]
        has_length = False
        for name, value in headers:
            has_length |= name.lower() == "content-length"
            lines.append(f"{name}: {value}")
        if not has_length:
            lines.append(f"Content-Length: {len(payload)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        no_body = self.command == "HEAD" or code in (204, 304) or 100 <= code < 200
        if no_body or cut is None:
            self.wfile.write(head if no_body else head + payload)
            return
        cut_after, stalls = cut
        self.wfile.write(head + payload[:cut_after])
        self.wfile.flush()
        if stalls:
            client_closes(self.connection, IDLE_CONNECTION_SECONDS)
        self.close_connection = True


def client_closes(connection, seconds):
    """Waits up to seconds for the client to close connection: whether it
    did. Bytes it sends meanwhile stay unread."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([connection], [], [], min(left, _POLL_SECONDS))[0]:
            try:
                # the TCP stream's own bytes, also under TLS: its end is the client's close
                if socket.socket.recv(connection, 1, socket.MSG_PEEK) == b"":
                    return True
            except ConnectionError:
                return True
            time.sleep(min(left, _POLL_SECONDS))  # bytes of a next request: the client is still there
    return False


class WSGIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host, port, app=None):
        super().__init__((host, port), _Handler)
        self.app = app
