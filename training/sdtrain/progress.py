"""A dependency-free progress bar with rate and ETA (writes to stderr)."""
from __future__ import annotations

import sys
import time
from typing import Optional


def _fmt_time(s: float) -> str:
    s = max(0, int(s))
    h, r = divmod(s, 3600)
    m, s = divmod(r, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int, desc: str = "", unit: str = "it", start: int = 0,
                 stream=None, min_interval: float = 0.5):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = start
        self._start_n = start
        self.stream = stream or sys.stderr
        self.t0 = time.time()
        self._last = 0.0
        self._last_line = 0.0
        self.min_interval = min_interval
        self.postfix = ""
        self.rate_scale = 1.0
        self.rate_unit: Optional[str] = None
        # A time limit (time.time() when work stops, e.g. --max-minutes): the ETA is whichever comes first.
        self.deadline: Optional[float] = None
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, k: int = 1, postfix: Optional[str] = None) -> None:
        self.n += k
        if postfix is not None:
            self.postfix = postfix
        now = time.time()
        if now - self._last >= self.min_interval or self.n >= self.total:
            self._last = now
            self._draw(now)

    def line(self, now: Optional[float] = None) -> str:
        now = now or time.time()
        el = max(1e-9, now - self.t0)
        done = self.n - self._start_n
        rate = done / el
        frac = min(1.0, self.n / self.total) if self.total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta = (self.total - self.n) / rate if rate > 0 else 0
        if self.deadline is not None:
            eta = min(eta, max(0.0, self.deadline - now))
        shown_rate = rate * self.rate_scale
        unit = self.rate_unit or self.unit
        return (f"{self.desc} |{bar}| {self.n}/{self.total} {frac * 100:5.1f}% "
                f"[{_fmt_time(el)}<{_fmt_time(eta)}, {shown_rate:,.1f} {unit}/s] {self.postfix}")

    def _draw(self, now: float) -> None:
        end = "\r" if self._tty else "\n"
        if not self._tty and now - self._last_line < 10 and self.n < self.total:
            return
        self._last_line = now
        self.stream.write(self.line(now) + end)
        self.stream.flush()

    def close(self) -> None:
        self._draw(time.time())
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()
