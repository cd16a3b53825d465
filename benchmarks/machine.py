"""What every benchmark prints beside its figures: the CPU kind it ran on."""

from __future__ import annotations

from pathlib import Path

#: The /proc/cpuinfo flags that change the fastest path and the precision ``auto`` picks.
SPEED_FLAGS = ("avx512_bf16", "avx512_vnni", "amx_bf16")


def cpu_flags() -> str:
    """``"amx_bf16, avx512_bf16, avx512_vnni"``, or the words for an AVX2-only CPU."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    flags = sorted(flag for flag in SPEED_FLAGS if flag in text)
    return ", ".join(flags) or "AVX2 only (no avx512_bf16 / avx512_vnni / amx)"
