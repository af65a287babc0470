"""The S3 side of aws_s3's transfers, on a thread of its own while the
backend's thread runs COPY into or out of the pipe between them
(extension/src/s3/s3_copy.c). The thread's requests run on worker threads in a
Flight (inflight.py), and it stops them at once when the statement is
cancelled or the backend gives up on the transfer; it never calls plpy, nor
anything of the server: the backend's thread tells it to stop (abandon(),
or its Flight grounded before the process exits)."""
import os
import select
import threading
import time
import zlib

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from . import clients, inflight, request, stats, wait
from .copy_records import records_of
from .errors import INVALID_PARAMETER, NETWORK_FAILURE, AwsMlError, from_botocore
from .services import S3

PART_SIZE = 8 * 1024 * 1024  # S3 wants at least 5 MiB a part, but for the last
READ_SIZE = 1024 * 1024
_STOPPING_SECONDS = 5


class Stopped(Exception):
    """The statement was cancelled, or the backend stopped the transfer."""


class Transfer:
    """A thread that moves data between the pipe end it owns (and closes) and
    S3; start(), then finish() once COPY is done, or abandon() if it failed."""

    def __init__(self, client, pipe):
        self.client = client
        self.pipe = pipe
        self.error = None
        self._flight = inflight.Flight()
        self._stopping = threading.Event()
        self._succeeded = threading.Event()  # COPY finished without an error
        self._thread = threading.Thread(target=self._run, name="aws_s3", daemon=True)

    def start(self):
        wait.pool()  # made on this, the backend's, thread: the transfer's requests run there
        with wait.signals_blocked():
            self._thread.start()

    def _run(self):
        try:
            self._flight.run(self.move)
        except BaseException as error:
            self.error = error
        finally:
            os.close(self.pipe)

    def move(self):
        raise NotImplementedError

    def send(self, operation, **params):
        """Sends an S3 request on a worker thread and waits for its answer."""
        return self.answer(self.submit(operation, **params))

    def submit(self, operation, **params):
        """Sends an S3 request on a worker thread; answer() waits for it. It
        carries no rows (aws_ml.stats)."""
        method = getattr(self.client, xform_name(operation))
        return operation, wait.submit(self._flight, lambda: request.send_now(S3, operation, method, params, 0))

    def answer(self, submitted):
        """The answer of a submitted request, once it comes, unless the
        statement is cancelled or the transfer stopped."""
        operation, future = submitted
        try:
            return wait.result_in_slices(future, self.check_stop)
        except (BotoCoreError, ClientError) as error:
            raise from_botocore(S3, operation, error, clients.known_secrets()) from None
        except inflight.Grounded:
            raise Stopped() from None

    def check_stop(self):
        if self._stopping.is_set() or self._flight.grounded:
            self._flight.ground()
            raise Stopped()

    def wait_for_pipe(self, events):
        poller = select.poll()
        poller.register(self.pipe, events)
        while not poller.poll(wait.SLICE_SECONDS * 1000):
            self.check_stop()

    def finish(self):
        """Tells the thread that COPY succeeded and waits for it, cancellably;
        raises its error."""
        self._succeeded.set()
        while self._thread.is_alive():
            self._thread.join(wait.SLICE_SECONDS)
            wait.check_for_interrupts()
        self.raise_error()

    def raise_error(self):
        """Raises the thread's error, if it had one; a cancel that stopped it
        as PostgreSQL reports a cancel."""
        if isinstance(self.error, Stopped):
            wait.check_for_interrupts()
        if self.error is not None:
            raise self.error

    def abandon(self):
        """Stops the thread and waits a little for it to end."""
        self._stopping.set()
        self._flight.ground()
        self._thread.join(_STOPPING_SECONDS)


class S3Object:
    """One object being written: one PutObject when it fits in a part, else a
    multipart upload of PART_SIZE parts, each uploaded while the next fills."""

    def __init__(self, transfer, bucket, key, encryption):
        self.transfer, self.bucket, self.key, self.encryption = transfer, bucket, key, encryption
        self.size = 0
        self.upload_id = None
        self.parts = []
        self.complete = False
        self.put_unanswered = False  # a PutObject got no answer: S3 may hold the object, or the one before
        self._buffer = bytearray()
        self._uploading = None  # (part number, the UploadPart submitted)

    def write(self, data):
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= PART_SIZE:
            self._upload_part(bytes(memoryview(self._buffer)[:PART_SIZE]))
            del self._buffer[:PART_SIZE]

    def _upload_part(self, data):
        if self.upload_id is None:
            self.upload_id = self.transfer.send("CreateMultipartUpload", Bucket=self.bucket, Key=self.key,
                                                **self.encryption)["UploadId"]
        self._uploaded()
        number = len(self.parts) + 1
        self._uploading = number, self.transfer.submit("UploadPart", Bucket=self.bucket, Key=self.key,
                                                       UploadId=self.upload_id, PartNumber=number, Body=data)

    def _uploaded(self):
        """Waits for the part being uploaded: one at a time, beside the one filling."""
        if self._uploading is not None:
            number, submitted = self._uploading
            self._uploading = None
            self.parts.append({"ETag": self.transfer.answer(submitted)["ETag"], "PartNumber": number})

    def close(self):
        if self.upload_id is None:
            try:
                self.transfer.send("PutObject", Bucket=self.bucket, Key=self.key,
                                   Body=bytes(self._buffer), **self.encryption)
            except AwsMlError as error:
                self.put_unanswered = error.sqlstate == NETWORK_FAILURE  # else S3 refused it
                raise
            except Stopped:
                self.put_unanswered = True
                raise
        else:
            if self._buffer:
                self._upload_part(bytes(self._buffer))
            self._uploaded()
            self.transfer.send("CompleteMultipartUpload", Bucket=self.bucket, Key=self.key,
                               UploadId=self.upload_id, MultipartUpload={"Parts": self.parts})
        self._buffer = bytearray()
        self.complete = True

    def discard(self, client):
        """Leaves nothing of it in S3 (on the backend's thread, with client)."""
        if self.complete:
            client.delete_object(Bucket=self.bucket, Key=self.key)
        elif self.upload_id is not None:
            client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


class Export(Transfer):
    """Uploads what COPY TO writes: file_path, then file_path_part2, ... each
    going on in the next at the first record end past max_file_size bytes;
    a header record starts every file."""

    def __init__(self, client, pipe, bucket, file_path, encryption, max_file_size, layout):
        super().__init__(client, pipe)
        self.bucket, self.file_path, self.encryption = bucket, file_path, encryption
        self.max_file_size = max_file_size
        self.records = records_of(layout)
        self.header = bytearray() if layout["header"] and self.records else None
        self._header_done = self.header is None
        self.objects = []

    def _next_object(self):
        number = len(self.objects) + 1
        key = self.file_path if number == 1 else f"{self.file_path}_part{number}"
        self.objects.append(S3Object(self, self.bucket, key, self.encryption))
        if number > 1 and self.header:
            self.objects[-1].write(bytes(self.header))

    def move(self):
        self._next_object()
        while True:
            self.wait_for_pipe(select.POLLIN)
            chunk = os.read(self.pipe, READ_SIZE)
            if not chunk:
                break
            self._take(chunk)
        # The pipe also ends when COPY fails: the last file is made only once
        # COPY succeeded, so that S3 never holds the start of a failed export.
        while not self._succeeded.wait(wait.SLICE_SECONDS):
            self.check_stop()
        if not self.objects[-1].complete:
            self.objects[-1].close()

    def _take(self, chunk):
        if not self._header_done:
            end = self.records.first_end(chunk)
            self.header += chunk if end is None else chunk[:end]
            self._header_done = end is not None
        if self.records is None:
            self.objects[-1].write(chunk)
            return
        while chunk:
            if self.objects[-1].complete:
                self._next_object()
            current = self.objects[-1]
            if current.size < self.max_file_size:
                end = self.max_file_size - current.size
            else:
                end = self.records.first_end(chunk)
                if end is not None:
                    self._write(current, chunk[:end])
                    current.close()
                    chunk = chunk[end:]
                    continue
                end = len(chunk)
            self._write(current, chunk[:end])
            chunk = chunk[end:]

    def _write(self, current, data):
        self.records.advance(data)
        current.write(data)

    @property
    def bytes(self):
        return sum(each.size for each in self.objects)


class Import(Transfer):
    """Writes an S3 object's body into the pipe that COPY FROM reads,
    decompressed when it is stored with Content-Encoding gzip."""

    def __init__(self, client, pipe, bucket, key):
        super().__init__(client, pipe)
        self.bucket, self.key = bucket, key
        self.size = None  # the object's size, once GetObject answered
        self._opened = threading.Event()

    def opened(self):
        """Waits, cancellably, for GetObject's answer; raises its error."""
        while not self._opened.wait(wait.SLICE_SECONDS):
            wait.check_for_interrupts()
        if self.size is None:
            self.finish()

    def move(self):
        try:
            answer = self._get_object()
        finally:
            self._opened.set()
        gunzip = Gunzip(self.bucket, self.key) if answer.get("ContentEncoding") == "gzip" else None
        body = answer["Body"]
        try:
            while True:
                self.check_stop()
                chunk = body.read(READ_SIZE)
                if not chunk:
                    break
                for piece in gunzip.pieces(chunk) if gunzip else (chunk,):
                    self._write(piece)
        except BrokenPipeError:
            return  # COPY stopped reading: it failed, and says why, or met the end-of-data marker \.
        if gunzip:
            gunzip.finish()

    def _get_object(self):
        """GetObject on this thread: the body is read from the pipe's side, in
        this Flight."""
        started = time.monotonic()
        failed = True
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
            failed = False
        except (BotoCoreError, ClientError) as error:
            raise from_botocore(S3, "GetObject", error, clients.known_secrets()) from None
        finally:
            stats.record_request(S3.setting, "GetObject", 0, (time.monotonic() - started) * 1000, 0, failed)
        self.size = answer["ContentLength"]
        return answer

    def _write(self, data):
        view = memoryview(data)
        while view:
            self.wait_for_pipe(select.POLLOUT)
            written = os.write(self.pipe, view)
            view = view[written:]


class Gunzip:
    """An object stored with Content-Encoding gzip, decompressed as gzip -d
    does: member after member, READ_SIZE bytes at a time whatever the ratio,
    and refused when it ends in the middle of a member."""

    def __init__(self, bucket, key):
        self.name = f"s3://{bucket}/{key}"
        self._member = zlib.decompressobj(wbits=31)

    def pieces(self, data):
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

    def finish(self):
        if not self._member.eof:
            raise self._invalid("ends in the middle of its gzip data")

    def _invalid(self, what):
        return AwsMlError(INVALID_PARAMETER, f"S3 object {self.name}, stored with Content-Encoding gzip, {what}",
                          hint="Store it again, compressed whole with gzip, or without that Content-Encoding.")
