"""What every benchmark prints beside its figures: the CPU kind it ran on
(:func:`funduskit.tools.bench.timing.cpu_flags`)."""

from __future__ import annotations

from funduskit.tools.bench.timing import SPEED_FLAGS, cpu_flags

__all__ = ["SPEED_FLAGS", "cpu_flags"]
