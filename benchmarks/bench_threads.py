"""CPU thread policy of the prediction service: every bundled model on the shipped sample case,
models loaded once, idle and while other processes keep cores busy, side by side.

A radiologist's workstation is never idle. This measures what each policy of
``LVIPredictorLib.service.threads`` costs when it is not: "all" (torch's default, one thread
per core), fixed 1 thread, and "adaptive" (the service's default: as many threads as cores are
idle when the prediction starts). The load is N processes each spinning one core in pure Python
(what a busy viewer, a PACS upload or a second Slicer does to the CPU).

    python benchmarks/bench_threads.py [--repeats 5] [--busy 1]

Prints a table of median seconds per case (every bundled model that reads the sample's series,
heat-maps off) and the thread count each policy chose. Figures only; no assertion.
"""

import argparse
import multiprocessing
import statistics
import time

from LVIPredictorLib.service import CaseService, series_from_files
from LVIPredictorLib.service.threads import ThreadPolicy, cpu_count
from lvi_training.reference import default_sample_case


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def _inputs():
    sample = default_sample_case()
    return {"t2": series_from_files("t2", sample / "t2.nii.gz", sample / "t2_mask.nii.gz"),
            "dce": series_from_files("dce", sample / "dicom" / "dce", sample / "dce_mask.nii.gz")}


def _time(service, inputs, cards, repeats):
    """(median seconds, thread counts the policy chose)."""
    seconds, used = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        used.append(service.predict(inputs, cards).cpu_threads)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), "/".join(str(n) for n in sorted(set(used)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=1, help="processes spinning one core each in the busy case")
    args = parser.parse_args(argv)
    inputs = _inputs()
    policies = ["all", "1", "adaptive"]
    services = {mode: CaseService(device="cpu", thread_policy=ThreadPolicy(mode)) for mode in policies}
    cards, _refused = CaseService.choose(list(inputs))
    for service in services.values():  # load every model once, and warm up
        service.predict(inputs, cards)
    rows = {}
    for load in ("idle", "busy"):
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.busy if load == "busy" else 0)]
        for process in spinners:
            process.start()
        time.sleep(2.5)  # let the load settle, and the adaptive policy's last decision (2 s) expire
        try:
            for mode in policies:
                rows[(load, mode)] = _time(services[mode], inputs, cards, args.repeats)
        finally:
            stop.set()
            for process in spinners:
                process.join()
    print("{} bundled models on the sample case, {} cores, median of {} repeats, busy = {} spinning process(es)"
          .format(len(cards), cpu_count(), args.repeats, args.busy))
    print("{:<10} {:>16} {:>16}".format("policy", "idle s (threads)", "busy s (threads)"))
    for mode in policies:
        cells = ["{:>7.2f} ({})".format(*rows[(load, mode)]) for load in ("idle", "busy")]
        print("{:<10} {:>16} {:>16}".format(mode, *cells))


if __name__ == "__main__":
    main()
