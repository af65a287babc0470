"""aws_s3's transfers as the transfer process runs them (transfer_main.py):
an export uploads what the backend's COPY TO writes into its pipe, an
import writes an S3 object into the pipe its COPY FROM reads. Requests run
on worker threads in a Flight (inflight.py), stopped at once when the
backend gives the transfer up; each is recorded for the backend's
aws_ml.stats()."""
import collections
import concurrent.futures
import functools
import os
import select
import threading
import zlib
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union, cast

import botocore.session
from botocore import xform_name
from botocore.exceptions import (BotoCoreError, ClientError, IncompleteReadError, ReadTimeoutError,
                                 ResponseStreamingError)

from . import clients, inflight, stats, transport, wait
from .clients import ClientSpec
from .copy_records import Records, records_of
from .errors import INVALID_PARAMETER, NETWORK_FAILURE, AwsMlError, from_botocore, from_transport_error
from .services import S3
from .transfer_messages import Message
from .transport import Params

PART_SIZE = 8 * 1024 * 1024  # S3 wants at least 5 MiB a part, but for the last
PARTS_IN_FLIGHT = 2
READ_SIZE = 1024 * 1024
CLEANUP_SECONDS = 10
_LIFECYCLE_HINT = ("Remove it, and give the bucket a lifecycle rule that aborts incomplete multipart uploads.")

_session: Any = None  # botocore's Session

T = TypeVar("T")
Answer = Dict[str, Any]
# a request on its way: (operation, parameters, its future)
Submitted = Tuple[str, Params, "concurrent.futures.Future[Answer]"]
WarningText = Tuple[str, str]  # a WARNING's message and hint


class Stopped(Exception):
    """The backend gave the transfer up, or ended."""


def _botocore_session() -> Any:
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


def s3_error(operation: str, error: Exception, bucket: str, key: str, secrets: Sequence[Optional[str]]) -> AwsMlError:
    """The AwsMlError for what botocore raised for an S3 request about
    s3://bucket/key, naming the object; a missing object or bucket says so
    (AWS's own samples look for "file does not exist")."""
    failure = from_botocore(S3, operation, error, secrets)
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    reason = {"NoSuchKey": "file does not exist", "NoSuchBucket": "bucket does not exist"}.get(code)
    if reason is None:
        reason = failure.message.split(" failed: ", 1)[-1]
    failure.message = f"S3 {operation} of s3://{bucket}/{key} failed: {reason}"
    return failure


class Requests:
    """The S3 requests of one transfer, on a client of its own (spec:
    clients.client_spec's values and the credentials, None for the
    process's own chain, the server's), each recorded."""

    def __init__(self, spec: ClientSpec) -> None:
        explicit = {}
        credentials = spec["credentials"]
        if credentials:
            explicit = {"aws_access_key_id": credentials["AccessKeyId"],
                        "aws_secret_access_key": credentials["SecretAccessKey"],
                        "aws_session_token": credentials["SessionToken"]}
        session = _botocore_session()
        self.client = session.create_client("s3", endpoint_url=spec["endpoint_url"], config=clients.config(S3, spec),
                                            **explicit)
        base = None if credentials else session.get_credentials()
        frozen = base.get_frozen_credentials() if base else None
        # never in an error
        self.secrets = [credentials["SecretAccessKey"], credentials["SessionToken"]] if credentials else \
            [frozen.secret_key, frozen.token] if frozen else []
        self.client.meta.events.register_first(
            "needs-retry", stats.throttle_observer(S3, lambda service, operation: self.throttles.append(operation)))
        inflight.track(self.client)
        self.flight = inflight.Flight()
        self._lasting = inflight.Flight()
        self.stopping = threading.Event()
        self.records: List[List[Any]] = []  # [operation, milliseconds, retries, failed]
        self.throttles: List[str] = []  # the operation of each attempt S3 throttled

    def timed(self, operation: str, call: Callable[[], Answer]) -> Answer:
        """call()'s answer, recorded for the backend's stats."""
        return transport.recorded(S3, operation, 0, call, self._record)

    def _record(self, service: str, operation: str, items: int, milliseconds: float, retries: int,
                failed: bool) -> None:
        self.records.append([operation, milliseconds, retries, failed])

    def submit(self, operation: str, lasting: bool = False, **params: Any) -> Submitted:
        """Sends an S3 request on a worker thread; answer() waits for it.
        lasting: a stop does not cut it, as the cleanup needs its answer."""
        method = getattr(self.client, xform_name(operation))
        return operation, params, wait.submit(self._lasting if lasting else self.flight,
                                              lambda: self.timed(operation, lambda: method(**params)))

    def answer(self, submitted: Submitted) -> Answer:
        """The answer of a submitted request, once it comes, unless the
        transfer is stopped."""
        operation, params, future = submitted
        try:
            return wait.result_in_slices(future, self.check_stop)
        except (BotoCoreError, ClientError) as error:
            raise s3_error(operation, error, params["Bucket"], params["Key"], self.secrets) from None
        except inflight.Grounded:
            raise Stopped() from None

    def stop(self) -> None:
        """Stops the transfer: its requests in flight end at once."""
        self.stopping.set()
        self.flight.ground()

    def check_stop(self) -> None:
        if self.stopping.is_set():
            raise Stopped()

    def wait_for_pipe(self, pipe: int, events: int) -> None:
        poller = select.poll()
        poller.register(pipe, events)
        while not poller.poll(wait.SLICE_SECONDS * 1000):
            self.check_stop()

    def cleanup(self, tasks: Dict[Callable[[], None], T]) -> Dict[T, Optional[BaseException]]:
        """Runs tasks ({task: what it cleans up}) at once, on a Flight of
        their own (the transfer's may be grounded), for CLEANUP_SECONDS in
        all; what each left: {what: exception, or None when it ran out of time}."""
        flight = inflight.Flight()
        futures = {wait.submit(flight, task): what for task, what in tasks.items()}
        done, _ = concurrent.futures.wait(futures, CLEANUP_SECONDS)
        flight.ground()
        self._lasting.ground()
        return {what: (future.exception() if future in done else None)
                for future, what in futures.items() if future not in done or future.exception() is not None}


class S3Object:
    """One file of an export. Nothing of it is visible until it is
    completed: a multipart upload of PART_SIZE parts, sent as they fill
    (its last part may be smaller), or one PutObject when it is the last
    file and fits in one part."""

    def __init__(self, export: "Export", key: str) -> None:
        self.export, self.key = export, key
        self.size = 0
        self.upload_id: Optional[str] = None
        self.creating: Optional[Submitted] = None  # its CreateMultipartUpload
        self.parts_sent = 0
        self.parts: List[Dict[str, Any]] = []  # those S3 took: {ETag, PartNumber}
        # the part filling, handed to its request when full: PART_SIZE bytes,
        # or a small file's size to begin with (it grows past it)
        self.buffer: Optional[bytearray] = None
        self.filled = 0
        self.complete = False
        self.put_unanswered = False  # a PutObject got no answer: S3 may hold the object, or the one before

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        self.size += len(view)
        while view:
            if self.buffer is None:
                self.buffer = bytearray(min(PART_SIZE, self.export.max_file_size))
            taken = min(len(view), PART_SIZE - self.filled)
            self.buffer[self.filled:self.filled + taken] = view[:taken]
            self.filled += taken
            view = view[taken:]
            if self.filled == PART_SIZE:
                self.export.upload_part(self, self.buffer)
                self.buffer, self.filled = None, 0

    def pending(self) -> Union[bytes, bytearray]:
        """The bytes of the part filling."""
        if self.buffer is None or self.filled == len(self.buffer):
            return self.buffer or b""
        return bytes(memoryview(self.buffer)[:self.filled])

    def seal(self) -> None:
        """The file is whole and another follows: its last part goes too."""
        if self.filled or self.upload_id is None:
            self.export.upload_part(self, self.pending())
        self.buffer, self.filled = None, 0

    def completion(self) -> Tuple[str, Params]:
        """The request that makes the file visible, whole: (operation, parameters)."""
        if self.upload_id is None:
            return "PutObject", {"Bucket": self.export.bucket, "Key": self.key, "Body": self.pending(),
                                 **self.export.encryption}
        return "CompleteMultipartUpload", {
            "Bucket": self.export.bucket, "Key": self.key, "UploadId": self.upload_id,
            "MultipartUpload": {"Parts": sorted(self.parts, key=lambda part: part["PartNumber"])}}


class Export:
    """Uploads what COPY TO writes: file_path, then file_path_part2, ...
    each going on in the next at the first record end past max_file_size
    bytes; a header record starts every file. PARTS_IN_FLIGHT parts upload
    while the next fills. Nothing is visible before the backend commits,
    once COPY has succeeded: then every file is completed at once."""

    def __init__(self, requests: Requests, pipe: int, job: Message) -> None:
        self.requests, self.pipe = requests, pipe
        self.bucket, self.file_path = job["bucket"], job["file_path"]
        self.encryption, self.max_file_size = job["encryption"], job["max_file_size"]
        self.records: Optional[Records] = records_of(job["layout"])
        self.header = bytearray()  # empty without a header record
        self._header_done = not (job["layout"]["header"] and self.records)
        self.objects: List[S3Object] = []
        # (the object, its part number, the UploadPart submitted)
        self._uploading: Deque[Tuple[S3Object, int, Submitted]] = collections.deque()

    def run(self, committed: threading.Event) -> Dict[str, int]:
        """Uploads until the pipe ends, then completes every file once the
        backend commits: {"files", "bytes"}."""
        self._next_object()
        while True:
            self.requests.wait_for_pipe(self.pipe, select.POLLIN)
            chunk = os.read(self.pipe, READ_SIZE)
            if not chunk:
                break
            self._take(chunk)
        # The pipe also ends when COPY fails: nothing is completed before COPY succeeded.
        while not committed.wait(wait.SLICE_SECONDS):
            self.requests.check_stop()
        self._complete()
        return {"files": len(self.objects), "bytes": sum(each.size for each in self.objects)}

    def _next_object(self) -> None:
        number = len(self.objects) + 1
        self.objects.append(S3Object(self, self.file_path if number == 1 else f"{self.file_path}_part{number}"))
        if number > 1 and self.header:
            self.objects[-1].write(bytes(self.header))

    def _take(self, chunk: bytes) -> None:
        records = self.records
        if records is None:
            self.objects[-1].write(chunk)
            return
        if not self._header_done:
            end = records.first_end(chunk)
            self.header += chunk if end is None else chunk[:end]
            self._header_done = end is not None
        while chunk:
            current = self.objects[-1]
            if current.size < self.max_file_size:
                end = self.max_file_size - current.size
            else:
                end = records.first_end(chunk)
                if end is not None:
                    self._write(records, current, chunk[:end])
                    current.seal()
                    self._next_object()
                    chunk = chunk[end:]
                    continue
                end = len(chunk)
            self._write(records, current, chunk[:end])
            chunk = chunk[end:]

    def _write(self, records: Records, current: S3Object, data: bytes) -> None:
        records.advance(data)
        current.write(data)

    def upload_part(self, target: S3Object, data: Union[bytes, bytearray]) -> None:
        """Sends data as target's next part, once fewer than
        PARTS_IN_FLIGHT (of any file) are on their way."""
        while len(self._uploading) >= PARTS_IN_FLIGHT:
            self._uploaded()
        if target.upload_id is None:
            # a stop must not lose the upload S3 may have created: discard() aborts it
            target.creating = self.requests.submit("CreateMultipartUpload", lasting=True, Bucket=self.bucket,
                                                   Key=target.key, **self.encryption)
            target.upload_id = self.requests.answer(target.creating)["UploadId"]
        target.parts_sent += 1
        self._uploading.append((target, target.parts_sent, self.requests.submit(
            "UploadPart", Bucket=self.bucket, Key=target.key, UploadId=target.upload_id,
            PartNumber=target.parts_sent, Body=data)))

    def _uploaded(self) -> None:
        """Waits for the oldest part on its way."""
        target, number, submitted = self._uploading.popleft()
        target.parts.append({"ETag": self.requests.answer(submitted)["ETag"], "PartNumber": number})

    def _complete(self) -> None:
        """Completes every file at once; raises the first failure (the files
        completed meanwhile stay so: discard() names them)."""
        last = self.objects[-1]
        if last.upload_id is not None and last.filled:
            last.seal()
        while self._uploading:
            self._uploaded()
        submitted = [(each, self.requests.submit(operation, **params))
                     for each, (operation, params) in ((each, each.completion()) for each in self.objects)]
        failure = None
        for each, request in submitted:
            try:
                self.requests.answer(request)
                each.complete = True
            except (AwsMlError, Stopped) as error:
                # a PutObject that got no answer may have landed, one S3 refused did not
                each.put_unanswered = request[0] == "PutObject" and getattr(error, "sqlstate", NETWORK_FAILURE) \
                    == NETWORK_FAILURE
                failure = failure or error
        if failure is not None:
            raise failure

    def discard(self) -> List[WarningText]:
        """Leaves nothing of a failed export in S3 but the files already
        completed: aborts its uploads (never deletes a key: the object there
        is what was there before, or another session's). The WARNINGs
        (message, hint) for what is left."""
        uploads = [each for each in self.objects if each.creating is not None and not each.complete]
        left = self.requests.cleanup({functools.partial(self._abort, each): each for each in uploads})
        bucket = self.bucket
        warnings = [(f"aws_s3: could not remove the multipart upload {each.upload_id} of s3://{bucket}/{each.key} "
                     "of the failed export", _LIFECYCLE_HINT) for each in uploads if each in left]
        warnings += [(f"aws_s3: the failed export completed s3://{bucket}/{each.key} before it failed: the file "
                      "holds the export's data", "Export again, or remove the file.")
                     for each in self.objects if each.complete]
        warnings += [(f"aws_s3: S3 may hold s3://{bucket}/{each.key} from the failed export: its PutObject got "
                      "no answer", "Check the object: it is this export's data, or what was there before.")
                     for each in self.objects if each.put_unanswered]
        return warnings

    def _abort(self, each: S3Object) -> None:
        """Aborts each's upload, once its creation (under way when the
        transfer stopped) has answered."""
        if each.upload_id is None:
            creating = cast(Submitted, each.creating)  # discard() aborts only the uploads whose creation it sent
            try:
                each.upload_id = creating[2].result()["UploadId"]
            except (BotoCoreError, ClientError):
                return  # S3 created none
        try:
            self.requests.timed("AbortMultipartUpload", lambda: self.requests.client.abort_multipart_upload(
                Bucket=self.bucket, Key=each.key, UploadId=each.upload_id))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
            each.complete = True  # its completion was under way when the transfer stopped, and went through


class Import:
    """Writes an S3 object's body into the pipe that COPY FROM reads,
    decompressed when it is stored with Content-Encoding gzip."""

    def __init__(self, requests: Requests, pipe: int, job: Message) -> None:
        self.requests, self.pipe = requests, pipe
        self.bucket, self.key = job["bucket"], job["key"]
        self.read_timeout_s = job["client"]["read_timeout_ms"] / 1000

    def run(self, committed: threading.Event) -> Dict[str, int]:
        """Runs on the transfer's own thread, in its Flight: the body's
        connection is then grounded with its requests. {"size"}."""
        return self.requests.flight.run(self._move)

    def _move(self) -> Dict[str, int]:
        answer = self._get_object()
        gunzip = Gunzip(self.bucket, self.key) if answer.get("ContentEncoding") == "gzip" else None
        body = answer["Body"]
        try:
            while chunk := self._read(body, answer["ContentLength"]):
                for piece in gunzip.pieces(chunk) if gunzip else (chunk,):
                    self._write(piece)
        except BrokenPipeError:
            # COPY stopped reading: it failed, and says why, or met the end-of-data marker \.
            return {"size": answer["ContentLength"]}
        if gunzip:
            gunzip.finish()
        return {"size": answer["ContentLength"]}

    def _get_object(self) -> Answer:
        try:
            return self.requests.timed("GetObject", lambda: self.requests.client.get_object(Bucket=self.bucket,
                                                                                            Key=self.key))
        except inflight.Grounded:
            raise Stopped() from None
        except (BotoCoreError, ClientError) as error:
            self.requests.check_stop()
            raise s3_error("GetObject", error, self.bucket, self.key, self.requests.secrets) from None

    def _read(self, body: Any, size: int) -> bytes:
        """The body's next chunk; a connection that stalls or ends early is
        a network failure naming the object."""
        self.requests.check_stop()
        try:
            return body.read(READ_SIZE)
        except (ReadTimeoutError, IncompleteReadError, ResponseStreamingError) as error:
            self.requests.check_stop()  # grounded: the socket was shut down on purpose
            failure = from_transport_error(S3, "GetObject", error, self.requests.secrets)
            reason = (f"the connection stalled: no data came for {self.read_timeout_s:g} s"
                      if isinstance(error, ReadTimeoutError) else
                      f"the connection ended before the whole object ({size} bytes) came")
            failure.message = f"S3 GetObject of s3://{self.bucket}/{self.key} failed: {reason}"
            raise failure from None

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self.requests.wait_for_pipe(self.pipe, select.POLLOUT)
            view = view[os.write(self.pipe, view):]

    def discard(self) -> List[WarningText]:
        return []


class Gunzip:
    """An object stored with Content-Encoding gzip, decompressed as gzip -d
    does: member after member, READ_SIZE bytes at a time whatever the ratio,
    and refused when it ends in the middle of a member."""

    def __init__(self, bucket: str, key: str) -> None:
        self.name = f"s3://{bucket}/{key}"
        self._member = zlib.decompressobj(wbits=31)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._member.eof:
                self._member = zlib.decompressobj(wbits=31)
            try:
                piece = self._member.decompress(data, READ_SIZE)
            except zlib.error as error:
                raise self._invalid(f"is not gzip data ({error})") from None
            if piece:
                yield piece
            data = self._member.unused_data if self._member.eof else self._member.unconsumed_tail

    def finish(self) -> None:
        if not self._member.eof:
            raise self._invalid("ends in the middle of its gzip data")

    def _invalid(self, what: str) -> AwsMlError:
        return AwsMlError(INVALID_PARAMETER, f"S3 object {self.name}, stored with Content-Encoding gzip, {what}",
                          hint="Store it again, compressed whole with gzip, or without that Content-Encoding.")


Transfer = Union[Export, Import]  # a transfer, as this process runs it
TRANSFERS: Dict[str, Callable[[Requests, int, Message], Transfer]] = {"export": Export, "import": Import}
