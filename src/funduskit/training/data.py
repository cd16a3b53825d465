"""Training data: decode once, cache at the network size, augment per (seed, epoch, index).

Decoding a 2124 x 2056 JPEG takes tens of milliseconds; doing it every epoch would dominate a
CPU run. :func:`cache_samples` decodes every sample once (a thread pool: OpenCV and PIL release
the GIL), letterboxes it to the network size (:class:`funduskit.transforms.preprocess.Geometry`) and keeps
uint8 arrays in memory. DataLoader workers are forked from the process that holds the cache, so
they share it without copying.

Augmentation randomness never depends on which worker runs an item or on the history of the
global generators: item ``i`` of epoch ``e`` is augmented with generators seeded from
``(seed, e, i)``, and the order of epoch ``e`` is a permutation seeded from ``(seed, e)``. A run
resumed at epoch ``e`` therefore sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from funduskit.core.errors import FunduskitError
from funduskit.core.progress import make_progress
from funduskit.data.sample import Sample
from funduskit.data.view import CropBox
from funduskit.transforms.augment import VESSEL_MASK
from funduskit.transforms.preprocess import Geometry, preprocess

VesselSource = Callable[[Sample, np.ndarray, Geometry], np.ndarray]
"""Gives the vessel-map input of a sample: ``(sample, original RGB image, geometry)`` ->
``(S, S)`` uint8 map (0-255) at the network size."""


@dataclass
class CachedItem:
    """One sample at the network size.

    Attributes:
        image: (S, S, 3) uint8 RGB, letterboxed.
        mask: (S, S) uint8 0/1 segmentation target (disc, cup or vessels), or None.
        vessels: (S, S) uint8 0-255 vessel-map input (disc, cup, fovea), or None.
        fovea: fovea ``(x, y)`` in network pixels, or None.
        label: glaucoma label, or None.
        geometry: the letterbox geometry (maps network points and maps back to the original).
        original_fovea: fovea ``(x, y)`` in original pixels, or None.
        vessel_photo: the photo at a vessel generator's input size, kept only until the
            generator's map has been computed.
        box: the disc crop the photograph was cut to before letterboxing (``data.view: disc``
            on a whole photograph), or None; ``geometry`` then maps to the crop's pixels.
    """

    image: np.ndarray
    geometry: Geometry
    mask: np.ndarray | None = None
    vessels: np.ndarray | None = None
    fovea: tuple[float, float] | None = None
    label: int | None = None
    original_fovea: tuple[float, float] | None = None
    vessel_photo: np.ndarray | None = None
    box: CropBox | None = None


def binary_to_network(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(H, W) bool -> (S, S) uint8 0/1: area-averaged then thresholded at one half."""
    soft = geometry.to_network(mask.astype(np.uint8) * np.uint8(255))
    return (soft >= 128).astype(np.uint8)


def soft_to_network(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(H, W) bool -> (S, S) uint8 0-255: the area fraction covered (thin vessels stay visible)."""
    return geometry.to_network(mask.astype(np.uint8) * np.uint8(255))


def cache_samples(
    samples: Sequence[Sample],
    cache_one: Callable[[Sample], CachedItem],
    *,
    threads: int = 2,
    description: str = "Caching images",
    show_progress: bool = True,
) -> list[CachedItem]:
    """Apply ``cache_one`` to every sample (thread pool, progress bar), keeping the order."""
    results: list[CachedItem | None] = [None] * len(samples)
    progress = make_progress(transient=True)
    progress.disable = not show_progress
    with progress, ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        task = progress.add_task(description, total=len(samples))
        futures = {pool.submit(cache_one, sample): index for index, sample in enumerate(samples)}
        for future in futures:
            results[futures[future]] = future.result()
            progress.advance(task)
    return results  # type: ignore[return-value]


def item_seed(seed: int, epoch: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of item ``index`` in ``epoch``; independent of workers and history."""
    return np.random.SeedSequence([seed, epoch, index])


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The order of ``epoch``: a permutation of ``range(n)`` seeded from ``(seed, epoch)`` only."""
    generator = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0x5EED]))
    return generator.permutation(n).tolist()


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` pairs; call :meth:`set_epoch` before iterating an epoch.

    Runs in the main process, so it works with persistent workers; the dataset receives the
    epoch with every index and seeds the augmentation from it.

    In a multi-process run (``world_size`` > 1, :mod:`funduskit.training.distributed`) every
    process walks the same order of global batches of ``batch_size`` and takes its share of each
    (``batch[rank::world_size]``): together the processes see exactly the batches of one process.

    Args:
        n: items.
        batch_size: items per (global) batch.
        seed: run seed; the order of epoch ``e`` is :func:`epoch_permutation` ``(n, seed, e)``.
        shuffle: that order, else ``0 .. n-1``.
        min_last: a last, smaller batch of fewer than this many items is dropped (2 in training:
            batch norm needs two), and one that would leave a process without any (it would hang
            the others).
        rank, world_size: this process and the number of processes.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, shuffle: bool = True, min_last: int = 1,
                 rank: int = 0, world_size: int = 1):
        if n == 0:
            raise FunduskitError("no samples to train on")
        if batch_size < world_size:
            raise FunduskitError(f"a batch of {batch_size} cannot be shared by {world_size} processes; "
                                 f"use a batch size of at least {world_size}")
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.min_last = min_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[list[int]]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else list(range(self.n))
        batches = [order[start : start + self.batch_size] for start in range(0, self.n, self.batch_size)]
        last = batches[-1]
        if len(batches) > 1 and len(last) < self.batch_size and len(last) < max(self.min_last, self.world_size):
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self._global_batches():
            yield [(self.epoch, index) for index in batch[self.rank :: self.world_size]]

    def __len__(self) -> int:
        return len(self._global_batches())


ToTensors = Callable[[CachedItem, dict[str, "np.ndarray | tuple[float, float] | None"]], dict[str, torch.Tensor]]


class AugmentedDataset(Dataset):
    """Cached items -> augmented, preprocessed tensors; indexed by ``(epoch, index)`` pairs.

    Args:
        items: the cache.
        preprocessing: name in ``funduskit.transforms.preprocess.PREPROCESSINGS``, applied after augmentation.
        to_tensors: the task's conversion of the augmented arrays into input and target tensors.
        augmentation: a ``funduskit.transforms.augment.build_augmentation`` pipeline at the cache's size
            (targets ``image``, ``mask``, ``vessel_mask``, ``keypoints``), or None.
        seed: run seed; item generators come from ``(seed, epoch, index)``.
        patch_size: each item is a random ``P x P`` square of the augmented, preprocessed image
            (:func:`random_patch`), or None for the whole ``S x S`` image.
        repeats: dataset items per cached item: index ``i`` is cached item ``i % len(items)``,
            each with its own augmentation and patch.

    An item is a dict of tensors (at least ``"input"`` (C, S, S) or (C, P, P) float32 and
    ``"target"``) plus ``"index"`` (of the cached item).
    """

    def __init__(self, items: Sequence[CachedItem], *, preprocessing: str, to_tensors: ToTensors,
                 augmentation: object | None = None, seed: int = 0, patch_size: int | None = None,
                 repeats: int = 1):
        if repeats < 1:
            raise FunduskitError(f"patches per image must be at least 1; got {repeats}")
        self.items = items
        self.preprocessing = preprocessing
        self.to_tensors = to_tensors
        self.augmentation = augmentation
        self.seed = seed
        self.patch_size = patch_size
        self.repeats = repeats

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def arrays(self, epoch: int, index: int) -> dict[str, np.ndarray | None]:
        """The augmented arrays of one item: ``image`` (S, S, 3) uint8, ``mask`` and ``vessels``
        (S, S) uint8 or None, ``fovea`` (x, y) in network pixels or None."""
        item = self.items[index % len(self.items)]
        if self.augmentation is None:
            return {"image": item.image, "mask": item.mask, "vessels": item.vessels, "fovea": item.fovea}
        data: dict[str, np.ndarray] = {"image": item.image}
        if item.mask is not None:
            data["mask"] = item.mask
        if item.vessels is not None:
            data[VESSEL_MASK] = item.vessels
        points = [item.fovea] if item.fovea is not None else []
        data["keypoints"] = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        sequence = item_seed(self.seed, epoch, index)
        # One generator shared by every transform (Compose.set_random_seed would give each
        # transform the same seed, making their random draws identical).
        self.augmentation.set_random_state(  # type: ignore[attr-defined]
            np.random.default_rng(sequence), random.Random(int(sequence.generate_state(1)[0]))
        )
        result = self.augmentation(**data)  # type: ignore[operator]
        fovea = tuple(float(v) for v in result["keypoints"][0][:2]) if item.fovea is not None else None
        return {"image": result["image"], "mask": result.get("mask"), "vessels": result.get(VESSEL_MASK),
                "fovea": fovea}

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        arrays = self.arrays(epoch, index)
        arrays["image"] = preprocess(np.ascontiguousarray(arrays["image"]), self.preprocessing)
        if self.patch_size is not None:
            generator = np.random.default_rng(item_seed(self.seed, epoch, index).spawn(1)[0])
            arrays = random_patch(arrays, self.patch_size, generator)
        item_index = index % len(self.items)
        tensors = self.to_tensors(self.items[item_index], arrays)
        tensors["index"] = torch.tensor(item_index)
        return tensors


def random_patch(arrays: dict[str, Any], size: int, generator: np.random.Generator) -> dict[str, Any]:
    """One random ``size x size`` square of an item's arrays, the same square in each.

    Args:
        arrays: ``image`` (S, S, C) and optional ``mask`` / ``vessels`` (S, S) arrays, ``fovea``
            ``(x, y)`` network pixels or None.
        size: the patch side P <= S.
        generator: draws the top-left corner, uniform over the positions that fit.

    Returns:
        The same keys: (P, P, C) and (P, P) views, the fovea shifted into the patch's pixels.
    """
    side = arrays["image"].shape[0]
    top, left = (int(v) for v in generator.integers(0, side - size + 1, size=2))
    window = (slice(top, top + size), slice(left, left + size))
    patch = {key: (None if value is None else np.ascontiguousarray(value[window]))
             for key, value in arrays.items() if key != "fovea"}
    fovea = arrays.get("fovea")
    patch["fovea"] = None if fovea is None else (fovea[0] - left, fovea[1] - top)
    return patch


def worker_init(_: int) -> None:
    """DataLoader workers: nothing to set up; the parent limits OpenCV before forking them.

    (Calling ``cv2.setNumThreads`` in a forked child hangs: it joins pool threads that only
    exist in the parent. See :func:`single_threaded_opencv`.)
    """


@contextlib.contextmanager
def single_threaded_opencv() -> Iterator[None]:
    """Run OpenCV single-threaded while DataLoader workers are forked and used.

    OpenCV's thread pool does not survive ``fork``: a child that uses a pool created in the
    parent can deadlock. Shrinking the pool to one thread in the parent before forking makes the
    children run OpenCV serially (each worker is one core's worth of augmentation anyway).
    """
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
