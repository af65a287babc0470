"""Progress of a long procedure as NOTICE lines: rows done of the total, the
rate and the time left, at most once per interval, plus a final line unless
the last one already said it all."""
import time
from typing import Callable, Optional

INTERVAL_SECONDS = 5.0


class Progress:
    def __init__(self, name: str, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self._clock = clock
        self._started = clock()
        self._last_report: Optional[float] = None
        self._reported_done: Optional[int] = None

    def advance(self, rows: int) -> None:
        """Counts rows as done; reports after the first batch and then at most
        once per INTERVAL_SECONDS."""
        self.done += rows
        self.total = max(self.total, self.done)  # rows inserted since the start
        now = self._clock()
        if self._last_report is None or now - self._last_report >= INTERVAL_SECONDS:
            self._report(now)

    def finish(self) -> None:
        if self._reported_done != self.done:
            self._report(self._clock())

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        time_left = f"about {left / rate:.0f} s left" if rate else "time left unknown"
        return f"{self.name}: {self.done} / {self.total} rows, {rate:.0f} rows/s, {time_left}"

    def _report(self, now: float) -> None:
        import plpy
        self._last_report = now
        self._reported_done = self.done
        plpy.notice(self.line(now))
