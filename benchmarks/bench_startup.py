"""Start-up time of the `lvi` command: what a user waits before anything happens.

Each line is run --repeats times in a fresh interpreter, alternating, and the median wall time
printed. "every command imported" builds the parser the way `lvi` did before it imported only the
command it runs (lvi_training.commands), for comparison on the same machine in the same run.

    python benchmarks/bench_startup.py --repeats 7
"""

import argparse
import statistics
import subprocess
import sys
import time

CASES = (
    ("every command imported (the old start-up)",
     "from lvi_training.cli import build_parser; build_parser()"),
    ("lvi --help", "from lvi_training.cli import main; main(['--help'])"),
    ("lvi validate-cohort --help", "from lvi_training.cli import main; main(['validate-cohort', '--help'])"),
    ("lvi phantom --help", "from lvi_training.cli import main; main(['phantom', '--help'])"),
    ("lvi predict --help (imports torch)", "from lvi_training.cli import main; main(['predict', '--help'])"),
)


def run_once(code):
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys\ntry:\n    " + code + "\nexcept SystemExit:\n    pass"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = {label: [] for label, _code in CASES}
    for _ in range(args.repeats):  # alternating, so that a burst of load hits every case alike
        for label, code in CASES:
            times[label].append(run_once(code))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print("median of {} runs, seconds (load average {} at the end)".format(args.repeats, load))
    for label, _code in CASES:
        print("  {:<45} {:6.2f}   (min {:.2f}, max {:.2f})".format(
            label, statistics.median(times[label]), min(times[label]), max(times[label])))


if __name__ == "__main__":
    main()
