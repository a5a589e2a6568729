"""Checkpoints: everything a run needs to continue exactly where it stopped.

One file per run folder, `checkpoint.pt`, replaced atomically (written to a temporary file, then
renamed), so a kill during the write leaves the previous checkpoint intact. It holds the model,
the optimizer, the loop's state (step, loss accumulator, best accuracy, time so far) and every
random-number state the run uses. The batch order needs no state: it is a function of the seed
and the step (training.data.BatchOrder). Files load with `weights_only=True`: plain tensors and
containers, no pickled code.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

CHECKPOINT_FILE = "checkpoint.pt"


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


def save_checkpoint(run_dir: str | Path, model, optimizer, loop_state: dict) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "loop": loop_state,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }
    path = checkpoint_path(run_dir)
    tmp = path.with_suffix(".pt.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(run_dir: str | Path, model, optimizer) -> dict | None:
    """Restore model, optimizer and random-number states; return the loop state, or None when the
    run folder has no checkpoint."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["loop"]
