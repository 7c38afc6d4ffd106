"""The optimisation step, shared by the training engine and the benchmarks.

Torch only (no SimpleITK), so benchmarks/gpu_train.py can use it on a GPU machine that
has nothing but torch and numpy.
"""

import torch


def autocast(device):
    # bf16 on CUDA: same exponent range as fp32, so no loss scaling; the CPU stays fp32.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=str(device).startswith("cuda"))


def optimisation_step(model, criterion, optimizer, scheduler, x, y, device, sample_weight=None, side_loss=None):
    """One step: forward (bf16 autocast on CUDA), loss in float32, backward, Adam, LR schedule.

    With ``sample_weight`` the criterion must return per-sample losses (``reduction="none"``);
    the loss is their weighted mean. ``side_loss()``, called after the forward pass, adds a
    side task's loss to the one that is optimised (the returned loss is the LVI loss alone).
    """
    with autocast(device):
        logits = model(x).reshape(-1)
    loss = criterion(logits.float(), y)
    if sample_weight is not None:
        loss = (loss * sample_weight).sum() / sample_weight.sum()
    total = loss if side_loss is None else loss + side_loss()
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    scheduler.step()
    return logits, loss
