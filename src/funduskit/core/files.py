"""Files written atomically: every output of funduskit (submission files, records, tables,
checkpoints, curves, exported networks) is written to a temporary file beside its destination and
moved into place with :func:`os.replace`, so an interruption never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


#: The process's umask, read once (reading it means setting it, which is not thread-safe).
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp", durable: bool = False) -> Iterator[Path]:
    """A temporary path in ``path``'s folder (created) to write to; moved onto ``path`` when the
    block ends without an error, removed when it raises.

    Args:
        path: the destination.
        suffix: the temporary file's suffix (writers that choose the format by suffix need it).
        durable: flush the file to the disk (``fsync``) before the move, so that a power loss
            leaves the old file or the new one (checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if durable:
            descriptor = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs are shared like any file
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`), creating its folder."""
    path = Path(path)
    with atomic_path(path, durable=durable) as temporary:
        temporary.write_bytes(data)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))
