"""Cross-validation splits and the split file every run directory holds.

A split assigns every sample a ``fold`` (0 .. n_folds-1) or :data:`ALWAYS_TRAIN` (-1, a sample that
is in the training set of every fold) and, for the fold a run trains, a ``role``: ``"train"`` or
``"validation"``. Two named arrangements:

- ``"stratified"``: stratified k-fold (scikit-learn ``StratifiedKFold`` with a seed) on the
  glaucoma label; plain shuffled ``KFold`` when the samples carry no labels. Each data set
  (``Sample.source``) is split on its own, so that a set's folds are the same whether it is trained
  alone or with others (``--data A --data B``), and every fold holds some of every set.
- ``"refuge2-report"``: the report's arrangement (section 2.3): REFUGE1 images (read with the
  REFUGE layout, or the ``Train`` split of a REFUGE2 root) are always in training; the REFUGE2
  validation images are split into folds with equal positive ratio. Other samples (e.g. REFUGE2
  ``Test``) are left out.

The split file (``split.csv``: ``image_id,fold,role,label,source,split``) is written into the
run directory and read back, so a run can be audited and repeated.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from funduskit.core.errors import DataError, FunduskitError
from funduskit.data.sample import Sample

ALWAYS_TRAIN = -1
Role = Literal["train", "validation"]
SPLIT_NAMES = ("stratified", "refuge2-report")
SPLIT_FILE_COLUMNS = ("image_id", "fold", "role", "label", "source", "split")


@dataclass(frozen=True)
class SplitRow:
    """One sample's place in a split."""

    image_id: str
    fold: int
    role: Role
    label: int | None = None
    source: str = ""
    split: str | None = None


@dataclass(frozen=True)
class Split:
    """The rows of one cross-validation fold, in the order of the samples they were made from."""

    name: str
    n_folds: int
    fold: int
    rows: tuple[SplitRow, ...]

    @property
    def train_ids(self) -> list[str]:
        return [row.image_id for row in self.rows if row.role == "train"]

    @property
    def validation_ids(self) -> list[str]:
        return [row.image_id for row in self.rows if row.role == "validation"]

    def select(self, samples: Sequence[Sample], role: Role) -> list[Sample]:
        """The samples of ``role``, in the split's order; raises if one is missing."""
        by_id = {sample.image_id: sample for sample in samples}
        wanted = self.train_ids if role == "train" else self.validation_ids
        missing = [image_id for image_id in wanted if image_id not in by_id]
        if missing:
            raise FunduskitError(
                f"the split names {len(missing)} image(s) the data set does not hold, e.g. {missing[0]!r}"
            )
        return [by_id[image_id] for image_id in wanted]


def _fold_assignment(n: int, labels: Sequence[int | None], n_folds: int, seed: int) -> np.ndarray:
    """Fold index per sample: stratified on ``labels`` when all are known and both classes fill the folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if n < n_folds:
        raise FunduskitError(f"{n} sample(s) cannot be split into {n_folds} folds; use fewer folds (--folds)")
    folds = np.full(n, -1, dtype=int)
    known = all(label is not None for label in labels)
    counts = np.bincount(np.asarray(labels, dtype=int)) if known and n else np.array([])
    if known and len(counts) >= 2 and counts.min() >= n_folds:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(n), np.asarray(labels, dtype=int))
    else:
        parts = KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n))
    for fold, (_, validation_index) in enumerate(parts):
        folds[validation_index] = fold
    return folds


def _by_source(samples: Sequence[Sample], n_folds: int) -> dict[str, list[Sample]]:
    """The samples of each data set, in their order (sets in order of first appearance); a set
    with fewer samples than folds joins the first set that can fill them."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.source, []).append(sample)
    large = [source for source, members in groups.items() if len(members) >= n_folds]
    if not large:
        return {"all": list(samples)}
    for source in [source for source in groups if source not in large]:
        groups[large[0]] += groups.pop(source)
    return groups


def _is_refuge1(sample: Sample) -> bool:
    return sample.source == "refuge" or (sample.source == "refuge2" and sample.split == "train")


def _is_refuge2_validation(sample: Sample) -> bool:
    return sample.source == "refuge2" and sample.split == "validation"


def make_split(
    samples: Sequence[Sample],
    *,
    name: str = "stratified",
    n_folds: int = 4,
    fold: int = 0,
    seed: int = 0,
) -> Split:
    """Assign folds to ``samples`` and roles for ``fold``; deterministic for a given seed.

    Args:
        samples: the data set, in reader order (the split does not depend on the order of
            equal-label samples beyond scikit-learn's shuffling with ``seed``).
        name: ``"stratified"`` or ``"refuge2-report"`` (see the module docstring).
        n_folds: number of folds (the report uses 4).
        fold: the fold whose samples form the validation set.
        seed: seed of the shuffling.
    """
    if name not in SPLIT_NAMES:
        raise FunduskitError(f"unknown split {name!r}; choose one of {', '.join(SPLIT_NAMES)}")
    if not 0 <= fold < n_folds:
        raise FunduskitError(f"fold {fold} does not exist: folds are numbered 0 to {n_folds - 1}")
    if name == "stratified":
        in_folds = list(samples)
        always_train: list[Sample] = []
    else:
        always_train = [sample for sample in samples if _is_refuge1(sample)]
        in_folds = [sample for sample in samples if _is_refuge2_validation(sample)]
        if not in_folds:
            raise FunduskitError(
                "the 'refuge2-report' split needs REFUGE2 validation images (a REFUGE2 root with "
                "Validation/); none were found — use the 'stratified' split instead"
            )
    fold_of: dict[str, int] = {}
    for members in _by_source(in_folds, n_folds).values():
        folds = _fold_assignment(len(members), [sample.label for sample in members], n_folds, seed)
        fold_of.update({sample.image_id: int(f) for sample, f in zip(members, folds)})
    fold_of.update({sample.image_id: ALWAYS_TRAIN for sample in always_train})
    rows = tuple(
        SplitRow(
            image_id=sample.image_id,
            fold=fold_of[sample.image_id],
            role="validation" if fold_of[sample.image_id] == fold else "train",
            label=sample.label,
            source=sample.source,
            split=sample.split,
        )
        for sample in samples
        if sample.image_id in fold_of
    )
    if len({row.image_id for row in rows}) != len(rows):
        raise FunduskitError("two samples share an image_id; a split needs unique image names")
    return Split(name=name, n_folds=n_folds, fold=fold, rows=rows)


def write_split(split: Split, path: str | Path) -> Path:
    """Write ``split`` as CSV (``image_id,fold,role,label,source,split``) with a one-line header comment."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        handle.write(f"# split={split.name} n_folds={split.n_folds} fold={split.fold}\n")
        writer = csv.writer(handle)
        writer.writerow(SPLIT_FILE_COLUMNS)
        for row in split.rows:
            writer.writerow([row.image_id, row.fold, row.role, "" if row.label is None else row.label,
                             row.source, row.split or ""])
    return path


def read_split(path: str | Path) -> Split:
    """Read a split file written by :func:`write_split`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "split file not found", fix="a run directory holds split.csv")
    with path.open(newline="") as handle:
        header = handle.readline()
        if not header.startswith("# split="):
            raise DataError(path, "not a funduskit split file", row=1, fix="expected '# split=NAME n_folds=N fold=K'")
        meta = dict(item.split("=", 1) for item in header[1:].split())
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != SPLIT_FILE_COLUMNS:
            raise DataError(path, f"columns {reader.fieldnames} are not {list(SPLIT_FILE_COLUMNS)}", row=2)
        rows = []
        for number, record in enumerate(reader, start=3):
            if record["role"] not in ("train", "validation"):
                raise DataError(path, f"role {record['role']!r} is not train/validation", row=number)
            rows.append(SplitRow(
                image_id=record["image_id"],
                fold=int(record["fold"]),
                role=record["role"],  # type: ignore[arg-type]
                label=int(record["label"]) if record["label"] != "" else None,
                source=record["source"],
                split=record["split"] or None,
            ))
    return Split(name=meta["split"], n_folds=int(meta["n_folds"]), fold=int(meta["fold"]), rows=tuple(rows))
