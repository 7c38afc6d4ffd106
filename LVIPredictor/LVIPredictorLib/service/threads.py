"""How many CPU threads torch may use for a prediction.

A radiologist's workstation is never idle, and torch's intra-op pool degrades badly when it
asks for more threads than there are free cores: every parallel region waits for its slowest
thread, and a thread that shares a core with another busy process is slow. Measured on the
2-core development machine (benchmarks/bench_threads.py, docs/benchmarks.md): every bundled model
on the sample case took 0.6 s with 2 threads when idle but 2.5 s with 2 threads while another
process kept one core busy, against 1.1 s with 1 thread. So the default policy counts the
cores that are idle right now and uses that many threads (at least one); ``LVI_THREADS`` (a
number, or "all") overrides it.
"""

import contextlib
import os
import time

ENVIRONMENT = "LVI_THREADS"
_SAMPLE_SECONDS = 0.05


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times():
    """(busy, total) jiffies over all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def idle_cores(sample_seconds=_SAMPLE_SECONDS):
    """Roughly how many of this process's cores are idle now: sampled from /proc/stat over
    ``sample_seconds``, else from the 1-minute load average, else all of them."""
    n = cpu_count()
    first = _cpu_times()
    if first is not None:
        time.sleep(sample_seconds)
        second = _cpu_times()
        total = second[1] - first[1]
        if total > 0:
            machine = os.cpu_count() or n
            busy_cores = (second[0] - first[0]) / total * machine
            return max(0.0, min(float(n), machine - busy_cores))
    try:
        return max(0.0, n - os.getloadavg()[0])
    except (AttributeError, OSError):
        return float(n)


class ThreadPolicy(object):
    """``mode``: "adaptive" (idle cores now, at least 1), "all" (every core), or a fixed count."""

    def __init__(self, mode="adaptive"):
        if mode not in ("adaptive", "all"):
            mode = int(mode)
            if mode < 1:
                raise ValueError("a thread count must be at least 1, got {}".format(mode))
        self.mode = mode

    def threads(self):
        if self.mode == "all":
            return cpu_count()
        if self.mode == "adaptive":
            return max(1, min(cpu_count(), int(round(idle_cores()))))
        return self.mode

    def __repr__(self):
        return "ThreadPolicy({!r})".format(self.mode)


def default_policy():
    return ThreadPolicy(os.environ.get(ENVIRONMENT, "adaptive").strip().lower() or "adaptive")


@contextlib.contextmanager
def applied(policy):
    """torch's intra-op thread count set by ``policy`` for the block, restored after (inside
    Slicer the pool is shared with every other module)."""
    import torch

    before = torch.get_num_threads()
    wanted = policy.threads()
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
