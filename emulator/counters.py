"""Per service and operation request counters, read by tests through the
control API."""
import threading
from collections import deque

BATCH_SIZES_KEPT = 10_000


class _OperationStats:
    def __init__(self):
        self.requests = 0
        self.items = 0
        self.batch_sizes = deque(maxlen=BATCH_SIZES_KEPT)
        self.access_key_ids = {}
        self.pids = {}  # requests per client process: the pid/<n> of its User-Agent
        self.errors = 0
        self.throttled = 0
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most that were at once
        self.abandoned = 0  # requests whose client closed the connection before the answer

    def as_dict(self):
        return {
            "requests": self.requests,
            "items": self.items,
            "batch_sizes": list(self.batch_sizes),
            "access_key_ids": dict(self.access_key_ids),
            "pids": dict(self.pids),
            "errors": self.errors,
            "throttled": self.throttled,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "abandoned": self.abandoned,
        }


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self._stats = {}

    def _get(self, service, operation):
        return self._stats.setdefault(service, {}).setdefault(operation, _OperationStats())

    def request(self, service, operation, access_key_id, pid=None):
        """Counts a request; returns the stats its outcome goes to."""
        with self._lock:
            stats = self._get(service, operation)
            stats.requests += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            if access_key_id:
                stats.access_key_ids[access_key_id] = stats.access_key_ids.get(access_key_id, 0) + 1
            if pid:
                stats.pids[pid] = stats.pids.get(pid, 0) + 1
            return stats

    def outcome(self, stats, items=None, error=False, throttled=False):
        """items: what a successful request carried (documents, rows, texts).
        stats is request()'s: the outcome of a request that was still running
        (hanging) when the counters were cleared is not counted after it."""
        with self._lock:
            if items is not None:
                stats.items += items
                stats.batch_sizes.append(items)
            stats.errors += bool(error)
            stats.throttled += bool(throttled)

    def abandoned(self, stats):
        with self._lock:
            stats.abandoned += 1

    def finished(self, stats):
        """request()'s stats: the request has been answered, failed or dropped."""
        with self._lock:
            stats.in_flight -= 1

    def snapshot(self):
        with self._lock:
            return {
                service: {operation: stats.as_dict() for operation, stats in operations.items()}
                for service, operations in self._stats.items()
            }

    def clear(self):
        with self._lock:
            self._stats = {}
