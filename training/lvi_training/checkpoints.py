"""Training checkpoints: torch state written atomically, read without unpickling code."""

import torch

from .atomic import atomic_write


def save_torch(obj, path):
    atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path):
    # weights_only: a checkpoint holds tensors, numbers and strings; never unpickle code.
    return torch.load(str(path), map_location="cpu", weights_only=True)


def rng_state():
    """The torch RNG states (CPU and every CUDA device); training draws from nothing else."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
