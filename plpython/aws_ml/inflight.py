"""Stopping the requests a statement already has on the wire when it is
cancelled or fails. Each task runs on a worker thread inside its statement's
Flight; the boto3 clients' connections enrol with the current thread's Flight
whenever they connect or send. Grounding the Flight shuts down those sockets,
so a thread blocked on one (reading an answer, or sending) wakes at once with
a connection error, and refuses every later attempt of its requests: the
retry of that error, before botocore computes a backoff, and any connect or
send. A retry that was already waiting out its backoff when the Flight was
grounded wakes when the backoff ends, and is refused then. botocore has no
public hook for its connections, so track() swaps the connection classes of a
client's pools (botocore is pinned)."""
import concurrent.futures
import socket
import threading
import weakref
from typing import Any, Callable, Dict, Optional, TypeVar

from botocore.awsrequest import (AWSHTTPConnection, AWSHTTPConnectionPool, AWSHTTPSConnection,
                                 AWSHTTPSConnectionPool)

_current = threading.local()
_flights: "weakref.WeakSet[Flight]" = weakref.WeakSet()  # every Flight of the process, for ground_every_flight

T = TypeVar("T")


class Grounded(concurrent.futures.CancelledError):
    """A request of a grounded Flight. botocore passes a CancelledError
    through as it is: not wrapped, not retried."""


class Flight:
    """The requests of one statement's tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grounded = False
        self._connections: Dict[int, Any] = {}  # worker thread ident -> the connection it is using
        _flights.add(self)

    def run(self, task: Callable[[], T]) -> T:
        """Runs task (on a worker thread) within this Flight."""
        _current.flight = self
        try:
            return task()
        finally:
            _current.flight = None
            with self._lock:
                self._connections.pop(threading.get_ident(), None)

    def ground(self) -> None:
        """Shuts down the sockets of the requests in flight; refuses any later attempt."""
        with self._lock:
            self._grounded = True
            for connection in self._connections.values():
                _shut_down(connection.sock)

    @property
    def grounded(self) -> bool:
        return self._grounded

    def enrol(self, connection: Any) -> None:
        with self._lock:
            if self._grounded:
                _shut_down(connection.sock)
            self.refuse_if_grounded()
            self._connections[threading.get_ident()] = connection

    def refuse_if_grounded(self) -> None:
        if self._grounded:
            raise Grounded("the statement was cancelled or failed")


def ground_every_flight() -> None:
    """Before the process exits: every Flight's requests stopped, and any
    later attempt refused."""
    for flight in list(_flights):
        flight.ground()


def _shut_down(sock: Optional[socket.socket]) -> None:
    if sock is not None:
        try:
            # socket.socket's own shutdown, also for an SSL socket: no TLS
            # close_notify from this thread while another reads.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def _current_flight() -> Optional[Flight]:
    return getattr(_current, "flight", None)


def _enrol(connection: Any) -> None:
    flight = _current_flight()
    if flight is not None:
        flight.enrol(connection)


class _Enrolling:
    """Mixed in before botocore's connection classes (whose methods super()
    reaches, which mypy cannot see): each enrols in the flight of the request
    it carries."""

    def connect(self) -> None:
        _enrol(self)
        super().connect()  # type: ignore[misc]
        _enrol(self)  # grounded while connecting: nothing is sent

    def request(self, *args: Any, **kwargs: Any) -> None:
        _enrol(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Enrolling, AWSHTTPConnection):
    pass


class _HTTPSConnection(_Enrolling, AWSHTTPSConnection):
    pass


class _HTTPConnectionPool(AWSHTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(AWSHTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def _refuse_retry(**_: Any) -> None:
    flight = _current_flight()
    if flight is not None:
        flight.refuse_if_grounded()


def track(client: Any) -> None:
    """Makes client's requests stoppable by the Flight they run in. Call
    before the client's first request: pools are made on first use."""
    pool_classes = client._endpoint.http_session._pool_classes_by_scheme
    pool_classes["http"] = _HTTPConnectionPool
    pool_classes["https"] = _HTTPSConnectionPool
    # First: botocore's retry handler answers a retryable error with a
    # backoff, and the handlers after it do not run.
    client.meta.events.register_first("needs-retry", _refuse_retry)
