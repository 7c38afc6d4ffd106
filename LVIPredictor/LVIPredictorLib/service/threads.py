"""How many CPU threads torch may use for a prediction.

A radiologist's workstation is never idle, and torch's intra-op pool degrades badly when it
asks for more threads than there are free cores: every parallel region waits for its slowest
thread, and a thread that shares a core with another busy process is slow. Measured on the
2-core development machine (``python benchmarks/bench_threads.py --repeats 9``; every bundled
model on the sample case, models loaded once; docs/benchmarks.md): 2 threads took 0.61 s idle but
2.49 s while one other process kept a core busy; 1 thread 0.73 s / 0.98 s. So the default policy
counts the cores that are idle right now (sampled from /proc/stat over 50 ms, within the process's
CPU affinity, the decision reused for 2 s) and uses that many threads, at least one: 0.55 s idle,
0.99 s busy.
``LVI_THREADS`` (a number, or "all") overrides it.
"""

import contextlib
import os
import time

ENVIRONMENT = "LVI_THREADS"
_SAMPLE_SECONDS = 0.05
# An adaptive decision is reused for this long: a cohort predicts many cases a second, and sampling
# before each would add 50 ms per case and model.
_DECISION_SECONDS = 2.0


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _allowed_cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cpu_times(cpus):
    """{cpu: (busy, total) jiffies} for ``cpus`` from /proc/stat; None off Linux."""
    times = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, _, rest = line.partition(" ")
                if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
                    continue
                fields = [float(v) for v in rest.split()]
                idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
                total = sum(fields[:8])  # guest time is already counted in user time
                times[int(name[3:])] = (total - idle, total)
    except (OSError, ValueError):
        return None
    return times or None


def idle_cores(sample_seconds=_SAMPLE_SECONDS):
    """Roughly how many of the cores this process may use are idle now: sampled from /proc/stat over
    ``sample_seconds`` (only the CPUs in its affinity set), else from the 1-minute load average,
    else all of them."""
    n = cpu_count()
    cpus = _allowed_cpus()
    first = _cpu_times(set(cpus)) if cpus else None
    if first is not None:
        time.sleep(sample_seconds)
        second = _cpu_times(set(first)) or {}
        idle = 0.0
        for cpu, (busy, total) in first.items():
            if cpu in second and second[cpu][1] > total:
                idle += 1.0 - (second[cpu][0] - busy) / (second[cpu][1] - total)
            else:
                idle += 1.0  # no tick counted in the sample: nothing ran there
        return max(0.0, min(float(n), idle))
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
        self._decided = (float("-inf"), None)  # (when, threads) of the last adaptive decision

    def threads(self):
        if self.mode == "all":
            return cpu_count()
        if self.mode == "adaptive":
            when, threads = self._decided
            if time.monotonic() - when > _DECISION_SECONDS:
                threads = max(1, min(cpu_count(), int(round(idle_cores()))))
                self._decided = (time.monotonic(), threads)
            return threads
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
