"""The glaucoma combiner: a logistic model on the classifiers' probability and the measured vCDR,
fitted by ``funduskit tune`` on labelled validation predictions and applied by the predictor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from funduskit.core.errors import FunduskitError
from funduskit.inference.glaucoma_combiner import GlaucomaCombiner, fit_combiner, logit
from funduskit.inference.model_store import read_thresholds
from funduskit.scoring.metrics import auroc


def separable_cases(n: int = 40, seed: int = 0) -> tuple[list[float], list[float], list[int]]:
    """Labels that the vCDR separates (0.45 vs 0.75, as in the synthetic data) and a classifier of noise."""
    rng = np.random.default_rng(seed)
    labels = [index % 2 for index in range(n)]
    vcdrs = [0.45 + 0.3 * label + rng.normal(0, 0.05) for label in labels]
    classifier = list(rng.uniform(0.05, 0.95, n))
    return classifier, vcdrs, labels


def test_the_combiner_leans_on_the_signal_that_separates_the_classes() -> None:
    classifier, vcdrs, labels = separable_cases()
    combiner = fit_combiner(classifier, vcdrs, labels)
    assert combiner.weights[1] > 1.0 and abs(combiner.weights[0]) < combiner.weights[1] / 3
    combined = [combiner.probability(p, v) for p, v in zip(classifier, vcdrs)]
    assert auroc(labels, combined) > 0.95 > auroc(labels, classifier) + 0.2
    assert (combiner.images, combiner.positives) == (40, 20)
    # higher vCDR, higher probability; 0 < p < 1
    assert 0 < combiner.probability(0.5, 0.4) < combiner.probability(0.5, 0.8) < 1


def test_the_probability_is_the_logistic_model_written_out() -> None:
    combiner = GlaucomaCombiner(weights=(0.5, 2.0), intercept=-0.25, means=(0.0, 0.6), scales=(2.0, 0.1),
                                images=10, positives=5)
    expected = 1 / (1 + math.exp(-(-0.25 + 0.5 * logit(0.8) / 2.0 + 2.0 * (0.7 - 0.6) / 0.1)))
    assert combiner.probability(0.8, 0.7) == pytest.approx(expected, rel=1e-12)
    assert GlaucomaCombiner.from_dict(json.loads(json.dumps(combiner.as_dict()))) == combiner


def test_too_few_photographs_of_a_class_is_an_error() -> None:
    with pytest.raises(FunduskitError, match="at least 4 glaucomatous"):
        fit_combiner([0.5] * 10, [0.5] * 10, [1, 1, 1] + [0] * 7)


def test_tune_fits_the_combiner_on_labelled_predictions(tmp_path: Path) -> None:
    """Saved maps whose cup follows the reference (so the vCDR is right) and records whose
    classifier probability is noise: tune writes a combiner that predict reads back."""
    from funduskit.data.datasets import read_dataset
    from funduskit.data.io import load_mask
    from funduskit.inference.results import ImageResult, save_result
    from funduskit.inference.tuning import tune
    from funduskit.synthetic import generate_dataset

    dataset = tmp_path / "validation"
    generate_dataset(dataset, 12, 3, scale=0.08, glaucoma_fraction=0.5, progress=False)
    pred, models = tmp_path / "pred", tmp_path / "models"
    (pred / "probabilities").mkdir(parents=True)
    models.mkdir()
    rng = np.random.default_rng(1)
    samples = read_dataset(dataset)
    assert sum(sample.label for sample in samples) >= 4
    for sample in samples:
        reference = load_mask(sample.disc_cup_mask_path)
        stem = Path(sample.image_id).stem
        np.save(pred / "probabilities" / f"{stem}_disc.npy", np.where(reference < 255, 0.9, 0.1).astype(np.float16))
        np.save(pred / "probabilities" / f"{stem}_cup.npy", np.where(reference == 0, 0.9, 0.1).astype(np.float16))
        save_result(pred, ImageResult(image_id=sample.image_id, image_path=str(sample.image_path),
                                      glaucoma_probability=float(rng.uniform(0.2, 0.8))))
    result, path = tune(pred, dataset, out=models)
    assert path == models / "thresholds.json"
    combiner = read_thresholds(models).glaucoma
    assert combiner is not None and combiner.images == len(samples)
    assert result.glaucoma_auroc["vcdr"] == pytest.approx(1.0)  # the synthetic labels follow the vCDR
    assert result.glaucoma_auroc["combined"] >= 0.95
    assert json.loads(path.read_text())["glaucoma"]["features"] == ["classifier_logit", "vcdr"]


def test_tune_refits_on_the_classifiers_own_probability_when_a_combiner_gave_the_answer(tmp_path: Path) -> None:
    """Predictions made with a combiner record the classifiers' mean apart: tune uses that, not the
    combined probability (which already holds the vCDR)."""
    from funduskit.inference.results import ImageResult, save_result
    from funduskit.inference.tuning import load_validation_cases
    from funduskit.synthetic import generate_dataset

    dataset = tmp_path / "validation"
    generate_dataset(dataset, 4, 5, scale=0.08, glaucoma_fraction=0.5, progress=False)
    pred = tmp_path / "pred"
    (pred / "probabilities").mkdir(parents=True)
    for index, image in enumerate(sorted((dataset / "Images").glob("*.jpg"))):
        for part in ("disc", "cup"):
            np.save(pred / "probabilities" / f"{image.stem}_{part}.npy", np.zeros((8, 8), np.float16))
        save_result(pred, ImageResult(image_id=image.name, image_path=str(image), glaucoma_probability=0.9,
                                      classifier_probability=0.1 * (index + 1)))
    cases = load_validation_cases(pred, dataset)
    assert sorted(case.classifier_probability for case in cases) == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_an_older_thresholds_file_reads_and_fingerprints_as_before(tmp_path: Path) -> None:
    """A thresholds.json without a combiner (written before 0.2) gives the same settings as then,
    so restarted predictions keep their records."""
    (tmp_path / "thresholds.json").write_text(json.dumps({"disc": 0.3, "cup": 0.65, "images": 3}))
    thresholds = read_thresholds(tmp_path)
    assert thresholds.glaucoma is None and thresholds.as_dict() == {"disc": 0.3, "cup": 0.65}
    (tmp_path / "thresholds.json").write_text("[1, 2]")
    from funduskit.core.errors import DataError

    with pytest.raises(DataError, match="cannot be read"):
        read_thresholds(tmp_path)
