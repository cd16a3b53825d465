"""Checkpoints written atomically, and the random-number-generator state they carry.

A checkpoint is one ``torch.save`` file holding plain containers and tensors only, so it loads
with ``torch.load(weights_only=True)``:

``{"format": 1, "task", "epoch", "models": {name: state_dict}, "optimizers": {name: state_dict},
"scheduler": dict, "best_metric", "best_epoch", "rng": {...}, "config": dict, "history": [...]}``

It is written to a temporary file in the same directory and moved into place with
:func:`os.replace`, so an interrupted write never leaves a truncated ``last.pt`` behind.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from funduskit.core.errors import DataError
from funduskit.core.files import atomic_path
from funduskit.runs.layout import LAST

CHECKPOINT_FORMAT = 1


def capture_rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's (CPU and CUDA) global generators, as plain data."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    python_version, python_internal, python_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": python_version, "internal": list(python_internal), "gauss": python_gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the global generators from :func:`capture_rng_state`'s result."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    numpy_state = state["numpy"]
    np.random.set_state((
        numpy_state["kind"],
        numpy_state["keys"].numpy().astype(np.uint32),
        numpy_state["position"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    ))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically and durably (:func:`funduskit.core.files.atomic_path`)."""
    path = Path(path)
    with atomic_path(path, durable=True) as temporary:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, temporary)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (plain data only: ``weights_only=True``)."""
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise DataError(path, "checkpoint not found", fix="give a run directory holding last.pt, or a .pt file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for a damaged or foreign file
        raise DataError(path, f"cannot be read as a funduskit checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "models" not in state:
        raise DataError(path, "is not a funduskit checkpoint (no 'models' entry or unknown format)")
    return state
