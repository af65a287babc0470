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
        self.errors = 0
        self.throttled = 0

    def as_dict(self):
        return {
            "requests": self.requests,
            "items": self.items,
            "batch_sizes": list(self.batch_sizes),
            "access_key_ids": dict(self.access_key_ids),
            "errors": self.errors,
            "throttled": self.throttled,
        }


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self._stats = {}

    def _get(self, service, operation):
        return self._stats.setdefault(service, {}).setdefault(operation, _OperationStats())

    def request(self, service, operation, access_key_id):
        with self._lock:
            stats = self._get(service, operation)
            stats.requests += 1
            if access_key_id:
                stats.access_key_ids[access_key_id] = stats.access_key_ids.get(access_key_id, 0) + 1

    def outcome(self, service, operation, items=None, error=False, throttled=False):
        """items: what a successful request carried (documents, rows, texts)."""
        with self._lock:
            stats = self._get(service, operation)
            if items is not None:
                stats.items += items
                stats.batch_sizes.append(items)
            stats.errors += bool(error)
            stats.throttled += bool(throttled)

    def snapshot(self):
        with self._lock:
            return {
                service: {operation: stats.as_dict() for operation, stats in operations.items()}
                for service, operations in self._stats.items()
            }

    def clear(self):
        with self._lock:
            self._stats = {}
