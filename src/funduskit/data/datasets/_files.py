"""File-system helpers shared by the readers: finding images, folders and masks by name."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from funduskit.core.errors import DataError
from funduskit.data.io import IMAGE_SUFFIXES, image_size

SPLIT_WORDS = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
               "validation": "validation", "test": "test", "testing": "test"}
"""Words in folder or file names that name a split, and the split name funduskit gives it."""


def name_key(name: str) -> str:
    """Lower-case ``name`` with everything but letters and digits removed (``"5. Optic Disc"`` -> ``"5opticdisc"``)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def is_image_file(path: Path) -> bool:
    """True for a visible file whose suffix is an image suffix (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def walk(root: Path, max_depth: int) -> Iterator[Path]:
    """Every visible file and folder under ``root`` down to ``max_depth`` levels (1 = children)."""
    stack = [(root, 1)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name == "__MACOSX":  # hidden, macOS zip debris
                continue
            path = Path(entry.path)
            yield path
            if depth < max_depth and entry.is_dir():
                stack.append((path, depth + 1))


def child_dir(folder: Path, *names: str) -> Path | None:
    """The sub-folder of ``folder`` whose name matches one of ``names`` (by :func:`name_key`)."""
    wanted = [name_key(n) for n in names]
    if not folder.is_dir():
        return None
    by_key = {name_key(p.name): p for p in sorted(folder.iterdir()) if p.is_dir()}
    for key in wanted:
        if key in by_key:
            return by_key[key]
    return None


def split_from_path(path: Path, root: Path | None = None) -> str | None:
    """The split named by the deepest folder (or file) name of ``path``, from ``root``'s own
    name down (all of ``path`` when ``root`` is None).

    A name counts when one of its words (split on anything but letters) is a split word:
    ``"a. Training Set"`` -> ``"train"``, ``"REFUGE-Validation400"`` -> ``"validation"``.
    """
    if root is None:
        parts = path.parts
    else:
        root = root.absolute()
        parts = path.absolute().relative_to(root.parent).parts
    for part in reversed(parts):
        for word in re.split(r"[^a-z]+", part.lower()):
            if word in SPLIT_WORDS:
                return SPLIT_WORDS[word]
    return None


class FileIndex:
    """Image files found by name: exact name, then name ignoring case, then stem ignoring case."""

    def __init__(self, paths: Iterable[Path], where: Path):
        self.where = where
        self.paths = sorted(paths)
        self._by_name: dict[str, Path] = {}
        self._by_stem: dict[str, Path] = {}
        for path in self.paths:
            self._by_name.setdefault(path.name.lower(), path)
            self._by_stem.setdefault(path.stem.lower(), path)

    def __len__(self) -> int:
        return len(self.paths)

    def find(self, name: str) -> Path | None:
        """The file called ``name`` (with or without its suffix), or ``None``."""
        name = Path(str(name).strip()).name.lower()
        return self._by_name.get(name) or self._by_stem.get(name) or self._by_stem.get(Path(name).stem)


def check_same_size(image_path: Path, mask_path: Path, what: str = "mask") -> None:
    """Raise a DataError naming ``mask_path`` when its header size differs from the image's."""
    image_wh, mask_wh = image_size(image_path), image_size(mask_path)
    if image_wh != mask_wh:
        raise DataError(
            mask_path,
            f"the {what} is {mask_wh[0]}x{mask_wh[1]} pixels but its image {image_path.name} is "
            f"{image_wh[0]}x{image_wh[1]}; a {what} must have its image's size",
            fix="use the mask made for this image, at full resolution",
        )


def matching_file(index: FileIndex | None, image: Path, what: str, *, required: bool = False) -> Path | None:
    """The file of ``index`` with ``image``'s stem, checked to have the image's size.

    Returns ``None`` when there is no index, or no such file and it is not ``required``.

    Raises:
        DataError: a required file is missing, or the file's size differs from the image's.
    """
    if index is None:
        return None
    path = index.find(image.stem)
    if path is None:
        if required:
            raise DataError(index.where / f"{image.stem}.png", f"the {what} for {image.name} is missing",
                            fix=f"every image in the split needs its {what}")
        return None
    check_same_size(image, path, what)
    return path


def disc_and_cup_files(image: Path, disc: Path | None, cup: Path | None, what: str,
                       missing_name: Callable[[str], str]) -> bool:
    """Check a photograph's disc and cup annotation files, stored apart: both or neither, each of
    the photograph's size. Returns True when both are there.

    Args:
        image: the photograph.
        disc, cup: its disc and cup files, ``None`` when absent.
        what: what the files are, for messages (``"soft map"``, ``"mask"``).
        missing_name: the expected file name of the absent one, given ``"disc"`` or ``"cup"``.

    Raises:
        DataError: only one of the two is there, or one's size differs from the photograph's.
    """
    if (disc is None) != (cup is None):
        absent = "cup" if cup is None else "disc"
        raise DataError(disc or cup, f"has no partner {what} {missing_name(absent)} for {image.name}",  # type: ignore[arg-type]
                        fix=f"restore both {what}s or neither")
    if disc is None or cup is None:
        return False
    check_same_size(image, disc, f"disc {what}")
    check_same_size(image, cup, f"cup {what}")
    return True
