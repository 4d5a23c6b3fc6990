"""One progress display for a whole comparison: runs done of planned, failures, time left.

On a terminal it is a tqdm bar; in a log (stderr not a terminal: a batch job, ``nohup``, CI)
it is one plain line per finished run, with no carriage returns, so the log reads top to
bottom.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["RunProgress"]


class RunProgress:
    """Progress of ``total`` runs.

    Parameters
    ----------
    total : int
        Runs planned (those still to do).
    enabled : bool
        ``False``: show nothing.
    stream : file, optional
        Where to write (default: ``sys.stderr``).
    tty : bool, optional
        Force the terminal form (``True``) or the log form (``False``); default: whether
        ``stream`` is a terminal.
    """

    def __init__(
        self,
        total: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        tty: bool | None = None,
    ) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self._stream = stream if stream is not None else sys.stderr
        self._t0 = time.perf_counter()
        self._bar: Any = None
        self._enabled = enabled and total > 0
        isatty = getattr(self._stream, "isatty", lambda: False)
        self.tty = isatty() if tty is None else tty
        if self._enabled and self.tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc="compare", unit="run", file=self._stream)

    def started(self, what: str) -> None:
        """A run started (the bar shows it; the log form says nothing)."""
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(what))

    def finished(self, what: str, ok: bool, detail: str = "") -> None:
        """A run finished (``ok``) or failed for good."""
        self.done += 1
        self.failed += 0 if ok else 1
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(what))
            self._bar.update(1)
            return
        elapsed = time.perf_counter() - self._t0
        left = elapsed / self.done * (self.total - self.done)
        status = "done" if ok else "FAILED"
        print(
            f"compare: {self.done}/{self.total} runs ({self.failed} failed), "
            f"{_minutes(elapsed)} elapsed, ETA {_minutes(left)}: {what} {status}"
            + (f" ({detail})" if detail else ""),
            file=self._stream,
            flush=True,
        )

    def note(self, text: str) -> None:
        """A line that must not tear the bar (a retry, a fallback)."""
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        else:
            print(text, file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _postfix(self, what: str) -> str:
        return (f"{self.failed} failed, " if self.failed else "") + what


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
