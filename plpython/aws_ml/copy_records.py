"""Where the records end in what COPY TO writes, so that an export can go on
in a new file between two records. In the text format every newline ends a
record (COPY escapes those in values). In CSV a newline inside a quoted value
does not: the scanner follows the quoting as COPY writes it, where within
quotes the escape character (the quote itself by default) comes only before
a quote or an escape character. The binary format is not scanned."""
import re
from typing import Any, Dict, Optional, Tuple, Union


class TextRecords:
    def first_end(self, chunk: bytes, start: int = 0) -> Optional[int]:
        """The offset just past the first record end in chunk at or after
        start, or None; chunk follows the chunks advance() was given."""
        end = chunk.find(b"\n", start)
        return None if end < 0 else end + 1

    def advance(self, chunk: bytes) -> None:
        """Takes in chunk, the next piece of COPY's output."""


class CsvRecords:
    def __init__(self, quote: str, escape: str) -> None:
        self.quote = quote.encode()
        self.escape = escape.encode()
        self.special = re.compile(re.escape(self.quote) + b"|" + re.escape(self.escape))
        self.inside = False       # within a quoted value at the end of the last chunk
        self.pending = False      # that chunk ended on an escape (or a quote that may be doubled)

    def first_end(self, chunk: bytes, start: int = 0) -> Optional[int]:
        return self._scan(chunk, start, stop_at_end=True)[0]

    def advance(self, chunk: bytes) -> None:
        _, self.inside, self.pending = self._scan(chunk, 0, stop_at_end=False)

    def _scan(self, chunk: bytes, start: int, stop_at_end: bool) -> Tuple[Optional[int], bool, bool]:
        """(first record end at or after start or None, inside, pending) from
        the state at the chunk's start."""
        inside, pending, position = self.inside, self.pending, 0
        if pending:
            pending = False
            if self.quote == self.escape and chunk[:1] != self.quote:
                inside = False  # the quote before the chunk closed the value
            else:
                position = 1    # it escaped this byte
        while position < len(chunk):
            if inside:
                found = self.special.search(chunk, position)
                if found is None:
                    break
                at = found.start()
                if at + 1 == len(chunk) and (chunk[at:at + 1] == self.escape):
                    pending = True  # an escape, or a quote, whose meaning the next chunk tells
                    position = len(chunk)
                elif chunk[at:at + 1] == self.escape and (self.quote != self.escape
                                                          or chunk[at + 1:at + 2] == self.quote):
                    position = at + 2
                else:
                    inside, position = False, at + 1
            else:
                opening = chunk.find(self.quote, position)
                limit = len(chunk) if opening < 0 else opening
                if stop_at_end:
                    end = chunk.find(b"\n", max(position, start), limit)
                    if end >= 0:
                        return end + 1, inside, pending
                if opening < 0:
                    break
                inside, position = True, opening + 1
        return None, inside, pending


Records = Union[TextRecords, CsvRecords]


def records_of(layout: Dict[str, Any]) -> Optional[Records]:
    """The scanner for COPY's output in layout ({format, quote, escape,
    ascii_safe}), or None for the binary format and for an encoding whose
    characters may hold bytes that look like a quote or an escape (SJIS,
    BIG5, ...), where bytes alone do not tell where a record ends."""
    if layout["format"] == "binary" or not layout["ascii_safe"]:
        return None
    if layout["format"] == "csv":
        return CsvRecords(layout["quote"], layout["escape"])
    return TextRecords()
