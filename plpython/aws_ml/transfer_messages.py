"""The messages between a backend and its transfer process
(transfer_process.py, transfer_main.py): JSON objects over a Unix stream
socket, each after its length. A message may carry file descriptors
(SCM_RIGHTS): it says how many in "fds", and the receiver finds them there,
taken in the order they came."""
import array
import collections
import json
import os
import select
import socket
import struct
import threading
from typing import Any, Deque, Dict, Optional, Sequence

_LENGTH = struct.Struct("!I")
_READ_SIZE = 256 * 1024
_MAX_FDS = 16

Message = Dict[str, Any]  # a JSON object


class Closed(Exception):
    """The other side has closed its end: its process has ended."""


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._sending = threading.Lock()  # the transfer process's threads send
        self._received = bytearray()
        self._fds: Deque[int] = collections.deque()

    def send(self, message: Message, fds: Sequence[int] = ()) -> None:
        data = json.dumps({**message, "fds": len(fds)}).encode()
        packet = _LENGTH.pack(len(data)) + data
        try:
            with self._sending:
                sent = 0
                if fds:
                    sent = self.sock.sendmsg([packet], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
                self.sock.sendall(packet[sent:])
        except (BrokenPipeError, ConnectionResetError):
            raise Closed() from None

    def receive(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, or None when none came within timeout seconds
        (None: no limit)."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while (message := self._next()) is None:
            if not poller.poll(None if timeout is None else timeout * 1000):
                return None
            try:
                data, ancillary, _, _ = self.sock.recvmsg(_READ_SIZE, socket.CMSG_SPACE(_MAX_FDS * 4),
                                                          socket.MSG_CMSG_CLOEXEC)
            except ConnectionResetError:
                data, ancillary = b"", []
            for level, kind, payload in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    fds = array.array("i")
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                    self._fds.extend(fds)
            if not data:
                raise Closed()
            self._received += data
        return message

    def _next(self) -> Optional[Message]:
        if len(self._received) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._received)
        if len(self._received) < _LENGTH.size + length:
            return None
        message = json.loads(self._received[_LENGTH.size:_LENGTH.size + length])
        del self._received[:_LENGTH.size + length]
        message["fds"] = [self._fds.popleft() for _ in range(message["fds"])]
        return message

    def close(self) -> None:
        self.sock.close()
        while self._fds:
            os.close(self._fds.popleft())
