"""The record that describes one data set layout: how to recognise it and how to read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from funduskit.data.sample import Sample


@dataclass(frozen=True)
class DatasetFormat:
    """One layout funduskit reads.

    Attributes:
        name: the ``--format`` name (``"refuge2"``, ``"drive"``, ...).
        looks_for: what :attr:`detect` looks for, in words (shown when no layout matches).
        detect: True when a folder has this layout; cheap (names only, no decoding).
        read: every sample of a folder with this layout, checked (files exist, sizes agree).
    """

    name: str
    looks_for: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], list[Sample]]
