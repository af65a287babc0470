"""Splitting items into requests by count and by size."""
from typing import List, Sequence, Tuple

from .errors import INVALID_PARAMETER, AwsMlError


def by_size(sizes: Sequence[int], max_items: int, max_bytes: int) -> List[Tuple[int, int]]:
    """(start, stop) index ranges over consecutive items, in order, each range
    holding at most max_items items and max_bytes bytes (sizes: each item's
    bytes). An item over max_bytes on its own is an error."""
    ranges = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if size > max_bytes:
            raise AwsMlError(INVALID_PARAMETER,
                             f"an input of {size} bytes exceeds the request limit of {max_bytes} bytes",
                             ordinality=index + 1)
        if index > start and (index - start == max_items or total + size > max_bytes):
            ranges.append((start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        ranges.append((start, len(sizes)))
    return ranges
