"""Cross-validation splits: stratified, deterministic, the report's arrangement, split-file round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from funduskit.core.errors import DataError, FunduskitError
from funduskit.data.sample import Sample
from funduskit.training.splits import ALWAYS_TRAIN, make_split, read_split, write_split


def _samples(n: int, positives: int, *, source: str = "refuge2", split: str | None = None, prefix: str = "S") -> list[Sample]:
    return [
        Sample(image_id=f"{prefix}{i:04d}.jpg", image_path=Path(f"/data/{prefix}{i:04d}.jpg"),
               label=int(i < positives), source=source, split=split)
        for i in range(n)
    ]


def test_stratified_folds_keep_the_positive_ratio_and_cover_every_sample_once() -> None:
    samples = _samples(40, positives=8)  # 20 % positive
    validation_sets = []
    for fold in range(4):
        split = make_split(samples, n_folds=4, fold=fold, seed=3)
        validation = [row for row in split.rows if row.role == "validation"]
        assert len(validation) == 10
        assert sum(row.label for row in validation) == 2  # 20 % of 10
        assert set(split.train_ids).isdisjoint(split.validation_ids)
        assert len(split.train_ids) + len(split.validation_ids) == 40
        validation_sets.append(set(split.validation_ids))
    assert set().union(*validation_sets) == {s.image_id for s in samples}
    assert sum(len(v) for v in validation_sets) == 40


def test_splits_are_deterministic_for_a_seed_and_differ_across_seeds() -> None:
    samples = _samples(40, positives=8)
    first = make_split(samples, fold=1, seed=7)
    assert make_split(samples, fold=1, seed=7) == first
    assert make_split(samples, fold=1, seed=8).validation_ids != first.validation_ids


def test_unlabelled_samples_fall_back_to_plain_kfold() -> None:
    samples = [Sample(image_id=f"v{i}.png", image_path=Path(f"v{i}.png")) for i in range(9)]
    sizes = [len(make_split(samples, n_folds=3, fold=k).validation_ids) for k in range(3)]
    assert sizes == [3, 3, 3]


def test_refuge2_report_split_keeps_refuge1_in_training_and_folds_the_validation_set() -> None:
    refuge1 = _samples(12, positives=2, source="refuge2", split="train", prefix="g")
    validation = _samples(16, positives=4, source="refuge2", split="validation", prefix="V")
    test = _samples(4, positives=1, source="refuge2", split="test", prefix="T")
    split = make_split(refuge1 + validation + test, name="refuge2-report", n_folds=4, fold=2, seed=0)
    folds = {row.image_id: row.fold for row in split.rows}
    assert all(folds[s.image_id] == ALWAYS_TRAIN for s in refuge1)
    assert not any(s.image_id in folds for s in test)  # REFUGE2 test is not used
    assert len(split.validation_ids) == 4 and all(i.startswith("V") for i in split.validation_ids)
    assert sum(row.label for row in split.rows if row.role == "validation") == 1  # equal positive ratio
    assert len(split.train_ids) == 12 + 12
    # REFUGE1 read with the REFUGE (2018) layout counts too.
    old = _samples(3, positives=1, source="refuge", split="validation", prefix="n")
    assert all(f == ALWAYS_TRAIN for f in (r.fold for r in make_split(old + validation, name="refuge2-report").rows[:3]))


def test_refuge2_report_split_without_validation_images_says_what_to_do() -> None:
    with pytest.raises(FunduskitError, match="stratified"):
        make_split(_samples(8, 2, source="folder"), name="refuge2-report")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(FunduskitError, match="fold 4"):
        make_split(_samples(8, 2), fold=4, n_folds=4)
    with pytest.raises(FunduskitError, match="unknown split"):
        make_split(_samples(8, 2), name="random")
    with pytest.raises(FunduskitError, match="cannot be split"):
        make_split(_samples(3, 1), n_folds=4)


def test_split_file_round_trip(tmp_path: Path) -> None:
    samples = _samples(10, 3, split="validation") + [
        Sample(image_id="x.jpg", image_path=Path("x.jpg"), label=None, source="folder")
    ]
    split = make_split(samples, n_folds=2, fold=1, seed=5)
    path = write_split(split, tmp_path / "run" / "split.csv")
    assert path.read_text().splitlines()[1] == "image_id,fold,role,label,source,split"
    assert read_split(path) == split
    assert split.select(samples, "validation") == [s for s in samples if s.image_id in split.validation_ids]


def test_damaged_split_file_names_the_row(tmp_path: Path) -> None:
    path = write_split(make_split(_samples(4, 2), n_folds=2), tmp_path / "split.csv")
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("train", "holdout").replace("validation", "holdout")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="row 4"):
        read_split(path)
    with pytest.raises(DataError, match="not found"):
        read_split(tmp_path / "missing.csv")


def test_each_data_set_keeps_its_own_folds_when_trained_with_others() -> None:
    drishti = _samples(50, 35, source="drishti-gs1", prefix="D")
    rimone = _samples(120, 50, source="rim-one-dl", prefix="R")
    tiny = _samples(2, 1, source="folder", prefix="T")  # fewer than the folds: joins the first set
    for fold in range(5):
        together = make_split(drishti + rimone + tiny, n_folds=5, fold=fold)
        alone = make_split(rimone, n_folds=5, fold=fold)
        assert [i for i in together.validation_ids if i.startswith("R")] == alone.validation_ids
        assert any(i.startswith("D") for i in together.validation_ids)
    assert {row.image_id for row in together.rows} == {s.image_id for s in drishti + rimone + tiny}
