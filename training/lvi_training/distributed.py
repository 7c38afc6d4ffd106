"""One process or many: the same training code under ``torchrun``.

``torchrun --nproc_per_node N $(which lvi) train ...`` sets WORLD_SIZE/RANK/LOCAL_RANK;
we then join a process group (gloo on the CPU, nccl on CUDA), each rank takes its share
of every global batch through ``DistributedSampler``, gradients are averaged by
DistributedDataParallel, and only rank 0 writes files and computes metrics.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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
