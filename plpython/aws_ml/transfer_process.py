"""This backend's transfer process (transfer_main.py): a Python process of
its own that moves aws_s3's data between S3 and the pipes of the backend's
COPY. In the backend, PL/Python holds Python's interpreter lock (the GIL)
all the while COPY and its query run, so a thread of the backend's own
Python would move data only while COPY waits for it; the transfer process
uploads and downloads all the time. It starts at the backend's first
transfer, ends by itself after IDLE_SECONDS without one, and when the
backend ends."""
import collections
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, DefaultDict, Deque, Dict, Optional, Set

from . import backend, stats, wait
from .errors import NOT_CONFIGURED, AwsMlError
from .services import S3
from .transfer_messages import Channel, Closed, Message

IDLE_SECONDS = 60
# a failed transfer's cleanup takes up to s3_transfer.CLEANUP_SECONDS (10) there
_CLEANUP_WAIT_SECONDS = 12
_REAP_SECONDS = 1
SYSTEM_ERROR = "58000"
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); from aws_ml.transfer_main import main; "
         "main(int(sys.argv[2]), float(sys.argv[3]))")

_process: Optional["_Process"] = None
_numbers = itertools.count(1)


def interpreter() -> str:
    """The Python that plpython3u runs, as a program."""
    return os.path.join(sys.base_exec_prefix, "bin", f"python{sys.version_info.major}.{sys.version_info.minor}")


def _ended_unexpectedly(process: "_Process") -> AwsMlError:
    """The error of a transfer whose process ended before it (process.end()
    has reaped it, if it could)."""
    status = process.popen.returncode
    detail = (None if status is None else f"It exited with status {status}." if status >= 0
              else f"It was killed by signal {-status} ({signal.Signals(-status).name}).")
    return AwsMlError(SYSTEM_ERROR, "the transfer process ended unexpectedly", detail,
                      hint="The server log may say why; try again.")


class _Process:
    def __init__(self) -> None:
        python = interpreter()
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        ours, theirs = socket.socketpair()
        try:
            self.popen = subprocess.Popen(
                [python, "-I", "-S", "-c", _BOOT, package, str(theirs.fileno()), str(IDLE_SECONDS)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd="/",
                start_new_session=True)  # out of the backend's process group: a cancel is the backend's
        except OSError as error:
            ours.close()
            raise AwsMlError(NOT_CONFIGURED, f"could not start the transfer process {python}: {error.strerror}",
                             hint="aws_s3 moves its data in a process of the Python that plpython3u runs: install "
                                  "that Python's interpreter.") from None
        finally:
            theirs.close()
        self.channel = Channel(ours)
        self._mailboxes: DefaultDict[int, Deque[Message]] = collections.defaultdict(collections.deque)
        self._forgotten: Set[int] = set()

    def receive_for(self, number: int, timeout: float) -> Optional[Message]:
        """The next message about transfer number, or None within timeout
        seconds; those about others are kept for them."""
        mailbox = self._mailboxes[number]
        while not mailbox:
            message = self.channel.receive(timeout)
            if message is None:
                return None
            if message["job"] in self._forgotten:
                if "done" in message or "aborted" in message:
                    self._forgotten.discard(message["job"])
                continue
            self._mailboxes[message["job"]].append(message)
        return mailbox.popleft()

    def release(self, number: int) -> None:
        """Transfer number has ended."""
        self._mailboxes.pop(number, None)

    def forget(self, number: int) -> None:
        """Transfer number's messages to come are dropped: the backend stopped waiting for it."""
        self.release(number)
        self._forgotten.add(number)

    def end(self) -> None:
        self.channel.close()
        try:
            self.popen.wait(_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            pass


def _record(message: Message) -> None:
    for operation, milliseconds, retries, failed in message.get("requests", ()):
        stats.record_request(S3.setting, operation, 0, milliseconds, retries, failed)
    for operation in message.get("throttles", ()):
        stats.record_throttle(S3.setting, operation)


class Transfer:
    """A transfer under way in the transfer process: finish() it once COPY
    has succeeded, or give_up() if COPY or finish() failed."""

    def __init__(self, process: _Process, number: int) -> None:
        self.process, self.number = process, number
        self.failure: Optional[AwsMlError] = None  # the transfer's own error
        self.result: Any = None  # its "done": an export's {"files", "bytes"}, an import's {"size"}
        self.ended = False

    def _take(self, message: Message) -> None:
        import plpy
        if "failed" in message:
            self.failure = AwsMlError(**message["failed"])
        for text, hint in message.get("warnings", ()):
            plpy.warning(text, hint=hint)
        if "done" in message or "aborted" in message:
            _record(message)
            self.result, self.ended = message.get("done"), True
            self.process.release(self.number)

    def _receive(self, timeout: float) -> Optional[Message]:
        try:
            return self.process.receive_for(self.number, timeout)
        except Closed:
            self._lost()
            return None

    def _send(self, message: Message) -> None:
        try:
            self.process.channel.send(message)
        except Closed:
            pass  # the process has ended; what it sent before is still to be received, then _receive finds it gone

    def _lost(self) -> None:
        """The transfer process ended before the transfer did."""
        _end_process(self.process)
        self.ended = True
        self.failure = self.failure or _ended_unexpectedly(self.process)

    def finish(self) -> Dict[str, Any]:
        """Once COPY has succeeded: the transfer's result, when it has ended
        (an export's files completed); raises its error. A cancel stops the
        wait (the caller gives the transfer up)."""
        self._send({"commit": self.number})
        while not self.ended:
            message = self._receive(wait.SLICE_SECONDS)
            if message is None:
                wait.check_for_interrupts()
            else:
                self._take(message)
        if self.failure is not None:
            raise self.failure
        return self.result

    def give_up(self) -> Optional[AwsMlError]:
        """Stops the transfer; its own error, if it had one (COPY then
        failed because the pipe closed), else None. Waits for its cleanup
        (aborting an export's uploads) and the WARNINGs about what is left,
        but not past a cancel or termination: the transfer process then
        finishes the cleanup alone, and writes what is left to the server log."""
        if not self.ended:
            self._send({"abort": self.number})
        deadline = time.monotonic() + _CLEANUP_WAIT_SECONDS
        while not self.ended and time.monotonic() < deadline and not backend.cancel_pending():
            message = self._receive(wait.SLICE_SECONDS)
            if message is not None:
                self._take(message)
        if not self.ended:
            self.process.forget(self.number)
        return self.failure


def _end_process(process: _Process) -> None:
    global _process
    process.end()
    if _process is process:
        _process = None


def start(kind: str, pipe: int, **job: Any) -> Transfer:
    """Hands a transfer and its end of the pipe (closed here) to the
    transfer process, started if need be; the Transfer."""
    global _process
    number = next(_numbers)
    try:
        for _ in range(2):
            if _process is None:
                _process = _Process()
            transfer = Transfer(_process, number)
            try:
                _process.channel.send({"start": number, "kind": kind, **job}, [pipe])
                if _accepted(transfer):
                    return transfer
            except Closed:
                pass
            # an idle process ended as it was handed the transfer: once more, with a new one
            _end_process(transfer.process)
        raise _ended_unexpectedly(transfer.process)
    finally:
        os.close(pipe)


def _accepted(transfer: Transfer) -> bool:
    """Whether the process took the transfer, before it ended; cancellable."""
    try:
        while (message := transfer.process.receive_for(transfer.number, wait.SLICE_SECONDS)) is None:
            wait.check_for_interrupts()
    except Closed:
        return False
    except BaseException:
        transfer.give_up()
        raise
    return bool(message.get("accepted"))
