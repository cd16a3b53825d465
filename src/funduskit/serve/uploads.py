"""File names from the outside world, made safe to write.

An uploaded file's name is the client's to choose: ``../../etc/passwd``, ``C:\\boot.ini``, a NUL
byte, 10 000 characters. It is never used as a path: only its last part is kept, reduced to
letters, digits, ``.``, ``-`` and ``_``, shortened, and made unique within its job (by stem, as
``funduskit predict`` names its outputs by stem). The client's name is kept as text only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from funduskit.scoring.submission import image_stem

#: Longest safe name, suffix included.
MAX_NAME_LENGTH = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(uploaded: str | None, fallback: str = "photo") -> str:
    """A name made of ``[A-Za-z0-9._-]`` only, without path parts or a leading dot, at most
    :data:`MAX_NAME_LENGTH` characters, its suffix kept.

    >>> safe_name("../../etc/passwd")
    'passwd'
    >>> safe_name("C:\\\\scans\\\\left eye (1).JPG")
    'left_eye_1_.JPG'
    """
    name = (uploaded or "").replace("\x00", "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).lstrip("._-")
    if not name:
        return fallback
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, suffix = name.rpartition(".")
        suffix = suffix[:10] if dot and stem else ""
        name = name[: MAX_NAME_LENGTH - len(suffix) - 1].rstrip(".") + ("." + suffix if suffix else "")
    return name


def unique_names(uploaded: Iterable[str | None]) -> list[str]:
    """Safe names, one per uploaded name, with distinct stems (``eye.jpg``, ``eye-2.jpg``, ...)."""
    names, stems = [], set()
    for position, original in enumerate(uploaded, start=1):
        name = safe_name(original, fallback=f"photo-{position}")
        stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
        candidate, copy = name, 1
        while image_stem(candidate) in stems:
            copy += 1
            candidate = f"{stem}-{copy}{dot}{suffix}"
        stems.add(image_stem(candidate))
        names.append(candidate)
    return names
