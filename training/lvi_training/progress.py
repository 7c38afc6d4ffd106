"""A one-line progress counter on the terminal, silent when output goes to a file or a pipe."""

import sys
import time


class Progress:
    """``label: done/total (rate, time left)`` rewritten in place on stderr.

    Quiet when asked or when stderr is not a terminal, so logs and CI output stay clean.
    """

    def __init__(self, total, label, quiet=False):
        self.total = int(total)
        self.label = label
        self.done = 0
        self._stream = sys.stderr
        self._show = not quiet and self.total > 0 and self._stream.isatty()
        self._start = time.monotonic()
        self._last = 0.0
        self._draw(force=True)

    def update(self, n=1):
        self.done += n
        self._draw(force=self.done >= self.total)

    def close(self):
        if self._show:
            self._draw(force=True)
            self._stream.write("\n")
            self._stream.flush()
            self._show = False

    def _draw(self, force=False):
        if not self._show:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:  # a redraw per item would cost more than the item at 5,000 cases
            return
        self._last = now
        elapsed = now - self._start
        left = ""
        if 0 < self.done < self.total:
            left = ", {:.0f} s left".format(elapsed / self.done * (self.total - self.done))
        self._stream.write("\r{}: {}/{} ({:.0f} s{})".format(self.label, self.done, self.total, elapsed, left))
        self._stream.flush()
