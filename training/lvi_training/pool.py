"""Per-case work spread over worker processes, results in the order of the input."""

from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from .progress import Progress


def ordered_map(fn, items, workers, label, quiet=True):
    """``[fn(item) for item in items]`` on ``workers`` processes, with a progress line.

    ``fn`` must be a module-level function (it is pickled to the workers). Results keep
    the order of ``items`` so a report built from them reads the same for any worker count.
    """
    items = list(items)
    progress = Progress(len(items), label, "case", quiet=quiet)
    try:
        if workers <= 1 or len(items) <= 1:
            results = []
            for item in items:
                results.append(fn(item))
                progress.advance()
            return results
        results = [None] * len(items)
        # spawn, not fork: the parent may already hold torch/OpenMP threads, which fork breaks.
        with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=get_context("spawn"),
                                 initializer=_worker_init) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                progress.advance()
        return results
    finally:
        progress.close()


def _worker_init():
    import SimpleITK as sitk

    # Each worker gets one core; SimpleITK would otherwise start a thread per core in each.
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
