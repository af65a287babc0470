"""The transfer process of one backend (transfer_process.py starts it): it
takes the backend's aws_s3 transfers, each on a thread of its own, and
moves their data between S3 and the pipes of the backend's COPY
(s3_transfer.py). It ends when it has had no transfer for its idle time,
and when its backend ends (the socket closes): then it gives up the
transfers under way and aborts their uploads. What a failed transfer left
in S3 also goes to its standard error, the server's log: the backend may
have stopped waiting for it."""
import os
import signal
import socket
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Dict, NoReturn, Optional, Tuple, cast

from .errors import AwsMlError
from .transfer_messages import Channel, Closed, Message

if TYPE_CHECKING:  # imported by a job's thread, once the backend has had its answer (Job._run)
    from .s3_transfer import Requests, Transfer

_REAP_SECONDS = 1.0
INTERNAL_ERROR = "XX000"


class Job:
    """One transfer: start() it; the backend commits it once its COPY has
    succeeded, or aborts it."""

    def __init__(self, channel: Channel, message: Message) -> None:
        self.channel, self.number, self.message = channel, message["start"], message
        self.pipe: Optional[int] = message["fds"][0]
        self.committed = threading.Event()
        self.stopped = threading.Event()  # before its Requests exist
        self.requests: Optional[Requests] = None
        self.thread = threading.Thread(target=self._run, name=f"aws_s3 transfer {self.number}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def commit(self) -> None:
        self.committed.set()

    def abort(self) -> None:
        self.stopped.set()
        if self.requests is not None:
            self.requests.stop()

    def _run(self) -> None:
        final: Message = {"job": self.number}
        stopped: Tuple[type, ...] = ()
        transfer: Optional[Transfer] = None
        try:
            # botocore: imported after the backend has had its answer
            from . import s3_transfer, wait
            stopped = (s3_transfer.Stopped,)
            wait.outside_a_backend()
            self.requests = s3_transfer.Requests(self.message["client"])
            if self.stopped.is_set():
                self.requests.stop()
            pipe = cast(int, self.pipe)  # open until this thread closes it
            transfer = s3_transfer.TRANSFERS[self.message["kind"]](self.requests, pipe, self.message)
            final["done"] = transfer.run(self.committed)
        except BaseException as error:
            if not isinstance(error, stopped):
                self._send({"job": self.number, "failed": _fields(error)})
            self._close_pipe()  # the backend's COPY stops, if it still runs
            final["aborted"] = True
            final["warnings"] = transfer.discard() if transfer is not None else []
            # the backend may no longer wait for them
            for text, _ in final["warnings"]:
                print(f"aws_s3 transfer process of backend {self.message['client']['pid']}: WARNING: {text}",
                      file=sys.stderr, flush=True)
        finally:
            self._close_pipe()
            if self.requests is not None:
                final["requests"], final["throttles"] = self.requests.records, self.requests.throttles
            self._send(final)

    def _close_pipe(self) -> None:
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None

    def _send(self, message: Message) -> None:
        try:
            self.channel.send(message)
        except Closed:
            pass  # the backend has ended


def _fields(error: BaseException) -> Dict[str, Optional[str]]:
    """An error as the backend raises it again: AwsMlError's fields."""
    if isinstance(error, AwsMlError):
        return {"sqlstate": error.sqlstate, "message": error.message, "detail": error.detail, "hint": error.hint}
    traceback.print_exception(error, file=sys.stderr)
    return {"sqlstate": INTERNAL_ERROR, "message": f"the transfer process failed: {error!r}",
            "detail": None, "hint": "The server log has its traceback."}


def serve(channel: Channel, idle_seconds: float) -> None:
    jobs: Dict[int, Job] = {}
    while True:
        jobs = {number: job for number, job in jobs.items() if job.thread.is_alive()}
        try:
            message = channel.receive(_REAP_SECONDS if jobs else idle_seconds)
        except Closed:
            # the backend has ended: nothing will commit
            for job in jobs.values():
                job.abort()
            for job in jobs.values():
                job.thread.join()
            return
        if message is None:
            if not jobs and idle_seconds:  # idle_seconds without a job
                return
            continue
        if "start" in message:
            job = jobs[message["start"]] = Job(channel, message)
            channel.send({"job": job.number, "accepted": True})
            job.start()
        elif message.get("commit") in jobs:
            jobs[message["commit"]].commit()
        elif message.get("abort") in jobs:
            jobs[message["abort"]].abort()


def main(fd: int, idle_seconds: float) -> NoReturn:
    """Serves the backend on the socket fd; exits 0 whatever happens: a
    process left to the postmaster (when it is the container's first
    process) that exits otherwise would be taken for a crashed backend."""
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        serve(Channel(socket.socket(fileno=fd)), idle_seconds)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(0)
