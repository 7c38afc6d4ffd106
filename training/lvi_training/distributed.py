"""One process or many: the same training code under ``torchrun``.

``torchrun --nproc_per_node N $(which lvi) train ...`` sets WORLD_SIZE/RANK/LOCAL_RANK;
we then join a process group (gloo on the CPU, nccl on CUDA), each rank takes its share
of every global batch through ``DistributedSampler``, gradients are averaged by
DistributedDataParallel, and only rank 0 writes files and computes metrics.

Work done once for all ranks (building the preprocessing cache) runs on rank 0 while the
others wait for a hand-off file, not inside a collective: a collective would end after
torch's timeout (30 minutes by default) with an error that does not say what was slow,
whereas the wait here ends after ``--cache-timeout`` seconds with a sentence that does.
"""

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from LVIPredictorLib.errors import InputError

from .atomic import save_json

# Building 5,000 full-size cases takes hours on a few cores; `lvi preprocess` beforehand makes the wait seconds.
DEFAULT_CACHE_TIMEOUT_S = 4 * 3600
_POLL_S = 0.5


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1

    def barrier(self):
        if self.distributed:
            if self.device.startswith("cuda"):
                dist.barrier(device_ids=[torch.cuda.current_device()])
            else:
                dist.barrier()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (e.g. an error message, a decision)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self):
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def setup(device):
    """Join the process group when launched by torchrun; returns the context.

    ``device`` is what the user asked for, already resolved ("cpu", "cuda", "mps").
    Under torchrun on CUDA every rank uses ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device = "cuda:{}".format(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def run_on_main(ctx, work, folder, timeout_s=DEFAULT_CACHE_TIMEOUT_S, what="the preprocessing cache"):
    """``work()`` on rank 0, its (JSON-able) result on every rank.

    The other ranks poll ``folder/handoff/<token>.json`` for at most ``timeout_s`` seconds, then
    stop with an InputError naming the timeout; when ``work`` fails on rank 0 they stop with its
    error. ``folder`` must be shared by the ranks (it is the cache folder they all read).
    """
    if not ctx.distributed:
        return work()
    token = ctx.broadcast(uuid.uuid4().hex if ctx.is_main else None)
    handoff = Path(folder) / "handoff" / (token + ".json")
    if ctx.is_main:
        try:
            result = work()
        except BaseException as exc:
            save_json({"error": str(exc) or type(exc).__name__}, handoff)
            raise
        save_json({"result": result}, handoff)
    else:
        deadline = time.monotonic() + float(timeout_s)
        while not handoff.exists():
            if time.monotonic() > deadline:
                raise InputError(str(folder), "rank {} waited {:.0f} s (--cache-timeout) for rank 0 to build {}; "
                                 "build it beforehand with `lvi preprocess` or raise --cache-timeout".format(
                                     ctx.rank, float(timeout_s), what))
            time.sleep(_POLL_S)
        message = json.loads(handoff.read_text(encoding="utf-8"))
        if "error" in message:
            raise InputError(str(folder), "rank 0 could not build {}: {}".format(what, message["error"]))
        result = message["result"]
    ctx.barrier()  # every rank has read the hand-off: it can go
    if ctx.is_main:
        handoff.unlink()
    return result
