"""Console progress for the long commands (training, the cache, cohort checks), on stderr.

One line, rewritten in place: what is being done, how far it is, the time spent and the
time left at the pace of this process, and a short status (loss, AUC). Shown only on a
terminal: in a pipe, a CI log or under ``--quiet`` it writes nothing, so logs stay readable
(the run's train.log has every epoch anyway).
"""

import shutil
import sys
import time


def is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def notice(message, quiet=False, stream=None):
    """One status line (where the log is, which run starts) on stderr, unless ``quiet``.

    Written in pipes too: it is one line per run, and says where to look while it trains.
    """
    if not quiet:
        print(message, file=stream or sys.stderr, flush=True)


def print_problems(problems, heading="{} problem(s):"):
    """Every problem found, one indented line each, under a heading that counts them (on stdout)."""
    print(heading.format(len(problems)))
    for problem in problems:
        print("  {}".format(problem))


def duration(seconds):
    """'42s', '7m05s', '2h13m': short enough for a status line."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return "{}s".format(seconds)
    if seconds < 3600:
        return "{}m{:02d}s".format(seconds // 60, seconds % 60)
    return "{}h{:02d}m".format(seconds // 3600, (seconds % 3600) // 60)


class Progress:
    """``total`` units of work under ``label``, e.g. ``Progress(40, "preprocessing", "case")``.

    ``skip(n)`` counts work done earlier (a resumed run's finished epochs), which does not
    enter the pace; ``advance(n, status)`` counts work done now. The time left is the work
    still to do at this process's pace so far.
    """

    def __init__(self, total, label, unit="item", quiet=False, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = not quiet and is_terminal(self.stream)
        self.total = int(total)
        self.label = label
        self.unit = unit
        self.status = ""
        self.done = 0
        self._skipped = 0
        self._started = time.monotonic()
        self._shown = False
        self._drawn_at = 0.0

    def skip(self, n):
        self.done += n
        self._skipped += n

    def advance(self, n=1, status=None):
        self.done += n
        if status is not None:
            self.status = status
        self._draw()

    def describe(self, label=None, status=None):
        if label is not None:
            self.label = label
        if status is not None:
            self.status = status
        self._draw()

    def line(self):
        """The status line as it is drawn (without the carriage return)."""
        elapsed = time.monotonic() - self._started
        measured = self.done - self._skipped
        parts = ["{} {}/{} {}s".format(self.label, self.done, self.total, self.unit), duration(elapsed)]
        if 0 < measured and self.done < self.total:
            parts[-1] += ", ~{} left".format(duration(elapsed / measured * (self.total - self.done)))
        if self.status:
            parts.append(self.status)
        return " | ".join(parts)

    def _draw(self):
        if not self.enabled:
            return
        now = time.monotonic()
        # Redrawing for every one of 5,000 cheap cases would cost more than the cases; the last one always shows.
        if now - self._drawn_at < 0.2 and self.done < self.total:
            return
        self._drawn_at = now
        width = shutil.get_terminal_size((100, 20)).columns - 1
        # \r and erase-to-end-of-line: the line is rewritten in place, never scrolls.
        self.stream.write("\r" + self.line()[:width] + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def close(self):
        """End the line, so what is printed next starts on a fresh one."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
