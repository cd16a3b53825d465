"""The quality gate: a real photograph (skimage.data.retina(), CC0) graded good, and its
controlled degradations and non-fundus pictures rejected with the right reason; the gate in
``funduskit predict`` (a rejected photograph has no answers, ``--quality off`` answers it)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from funduskit.cli import main
from funduskit.data.io import find_fov, frame_fov
from funduskit.data.view import detect_view
from funduskit.inference.fundus_content import FUNDUS_CLASS_COUNT, FundusContent, fundus_classes
from funduskit.inference.quality import CROP_THRESHOLDS, QUALITY_THRESHOLDS, QualityGrade, grade_measures, measure_image
from funduskit.transforms.degrade import DEGRADATIONS
from tests.test_predict import make_run

RETINA = skimage_data.retina()[..., :3]


def graded(image: np.ndarray, content: FundusContent | None = None) -> QualityGrade:
    """The gate's grade of a picture from its image measures (and its content measure, given ``content``)."""
    view = detect_view(image).view
    measures = measure_image(image, find_fov(image) if view == "whole" else frame_fov(image.shape), view)
    if content is not None:
        measures = replace(measures, fundus_likeness=content.likeness(image))
    return grade_measures(measures, view)


@pytest.fixture(scope="module")
def content() -> FundusContent:
    """The content measure with the registry's ImageNet Lite0 weights (a funduskit dependency)."""
    return FundusContent()


def disc_crop_of_retina() -> np.ndarray:
    """A 400 x 400 disc-centred crop of retina() (its disc is near x 255, y 657 at full size)."""
    return np.ascontiguousarray(RETINA[457:857, 55:455])


@pytest.fixture(scope="module")
def retina() -> tuple[np.ndarray, float]:
    """The photograph at half size (705 x 705) and its field of view's diameter."""
    image = cv2.resize(RETINA, (705, 705), interpolation=cv2.INTER_AREA)
    return image, 2 * find_fov(image).radius


def test_a_clean_real_photograph_is_good(retina: tuple[np.ndarray, float]) -> None:
    result = graded(retina[0])
    assert result.grade == "good" and result.reasons == ()
    assert 0.6 < result.measures.fov_coverage < 0.9 and result.measures.red_share > 0.5


@pytest.mark.parametrize(("degradation", "reason"), [
    ("blur", "out of focus"), ("dark", "too dark"), ("bright", "over-exposed"), ("glare", "glare"),
    ("haze", "washed out"), ("shift", "mis-centred"),
])
def test_severe_degradations_are_rejected_with_their_reason(retina: tuple[np.ndarray, float], degradation: str,
                                                            reason: str) -> None:
    image, diameter = retina
    result = graded(DEGRADATIONS[degradation](image, diameter, 2))
    assert result.grade == "reject"
    assert any(reason in text for text in result.reasons), result.reasons


def test_focus_falls_with_the_blur_and_a_mild_blur_is_not_rejected(retina: tuple[np.ndarray, float]) -> None:
    results = [graded(retina[0])] + [graded(DEGRADATIONS["blur"](*retina, k)) for k in range(3)]
    sharpness = [result.measures.sharpness for result in results]
    assert sharpness == sorted(sharpness, reverse=True) and sharpness[0] > 3 * sharpness[-1]
    assert results[1].grade != "reject"


def test_a_blurred_disc_crop_is_rejected_and_the_sharp_one_is_not() -> None:
    """Crops are softer than whole photographs: the focus measure (fine over coarse detail)
    still tells a severely blurred crop (sigma 6 D / 512) from the sharp one."""
    crop = disc_crop_of_retina()
    assert detect_view(crop).view == "disc"
    sharp, blurred = graded(crop), graded(DEGRADATIONS["blur"](crop, 400.0, 2))
    assert sharp.grade != "reject", sharp.reasons
    assert blurred.grade == "reject" and "out of focus" in blurred.reasons
    assert blurred.measures.sharpness < CROP_THRESHOLDS["sharpness"].reject_below < sharp.measures.sharpness


def test_the_content_measure_passes_fundus_photographs_and_rejects_a_cat_and_a_cup_of_coffee(
        content: FundusContent) -> None:
    """The two pictures whose colour and contrast pass the image measures are rejected by content;
    retina(), whole (any size) or cropped round its disc, is not."""
    limit = QUALITY_THRESHOLDS["fundus_likeness"]
    for picture in (RETINA, cv2.resize(RETINA, (300, 300), interpolation=cv2.INTER_AREA), disc_crop_of_retina()):
        result = graded(picture, content)
        assert result.measures.fundus_likeness > limit.usable_below and result.grade == "good", result.reasons
    for name in ("chelsea", "coffee"):
        picture = getattr(skimage_data, name)()
        without_content = graded(picture)
        assert without_content.grade != "reject"  # what the image measures alone made of it
        result = graded(picture, content)
        assert result.measures.fundus_likeness < limit.reject_below
        assert result.grade == "reject" and "not a fundus photograph (content)" in result.reasons


def test_fundus_classes_are_the_classes_with_the_most_probability() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.full(1000, 0.1), size=50)
    probabilities[:, [3, 500, 999]] += 1.0
    classes = fundus_classes(probabilities)
    assert len(classes) == FUNDUS_CLASS_COUNT and classes == tuple(sorted(classes))
    assert {3, 500, 999} <= set(classes)
    mean = probabilities.mean(axis=0)
    assert min(mean[list(classes)]) >= max(np.delete(mean, list(classes)))


@pytest.mark.parametrize("name", ["grey strip", "astronaut", "camera", "noise", "black"])
def test_pictures_that_are_not_fundus_photographs_are_rejected(name: str) -> None:
    picture = {
        "grey strip": np.full((200, 4000, 3), 128, np.uint8),
        "astronaut": skimage_data.astronaut(),
        "camera": np.stack([skimage_data.camera()] * 3, axis=-1),
        "noise": np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8),
        "black": np.zeros((600, 600, 3), np.uint8),
    }[name]
    assert graded(picture).grade == "reject"


def test_predict_withholds_the_answers_of_a_rejected_photograph(tmp_path: Path) -> None:
    """A folder with a clean photograph, its blurred copy and a grey strip, predicted with tiny
    networks whose disc is everywhere (so that the disc confidence passes): the clean one is
    answered, the others are rejected with their reasons and left out of the submission;
    --quality off answers them all."""
    models = tmp_path / "models"
    make_run(models, "vessel", "vessel", 0)
    make_run(models, "disc", "disc", 1, disc_bias=4.0)
    make_run(models, "cup", "cup", 2)
    make_run(models, "glaucoma", "glaucoma", 3)
    photos = tmp_path / "photos"
    photos.mkdir()
    image = cv2.resize(RETINA, (400, 400), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photos / "clean.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    blurred = DEGRADATIONS["blur"](image, 2 * find_fov(image).radius, 2)
    cv2.imwrite(str(photos / "blurred.jpg"), cv2.cvtColor(blurred, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "strip.png"), np.full((200, 4000, 3), 128, np.uint8))

    out = tmp_path / "out"
    assert main(["predict", str(photos), "--models", str(models), "--out", str(out), "--quiet", "--no-starter"]) == 0
    records = {r["image_id"]: r for r in json.loads((out / "results.json").read_text())}
    assert records["clean.jpg"]["quality"] in ("good", "usable") and records["clean.jpg"]["glaucoma_probability"] is not None
    assert records["clean.jpg"]["quality_measures"]["fundus_likeness"] > 0.04  # the content measure took part
    for name, reason in (("blurred.jpg", "out of focus"), ("strip.png", "not a fundus photograph")):
        assert records[name]["quality"] == "reject" and reason in records[name]["quality_reasons"]
        assert records[name]["glaucoma_probability"] is None and records[name]["vcdr"] is None
        assert records[name]["quality_measures"]["sharpness"] is not None
        assert not (out / "segmentation" / f"{Path(name).stem}.png").exists()
    risks = (out / "classification_results.csv").read_text()
    assert "clean.jpg" in risks and "blurred.jpg" not in risks and "strip.png" not in risks
    page = (out / "report.html").read_text()
    assert "2 rejected by the quality gate" in page and 'data-grade="reject"' in page

    everything = tmp_path / "everything"
    assert main(["predict", str(photos), "--models", str(models), "--out", str(everything), "--quiet", "--no-starter",
                 "--quality", "off"]) == 0
    records = {r["image_id"]: r for r in json.loads((everything / "results.json").read_text())}
    assert records["blurred.jpg"]["quality"] == "reject" and records["blurred.jpg"]["glaucoma_probability"] is not None
