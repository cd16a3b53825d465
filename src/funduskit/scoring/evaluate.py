"""Score a REFUGE / REFUGE2 submission against a ground-truth data set, the official way.

``evaluate(pred_dir, gt_dir)`` reads the submission (:mod:`funduskit.scoring.submission`) and the ground
truth (any layout :func:`funduskit.data.datasets.read_dataset` reads), matches images by file stem,
refuses a submission that does not cover the ground truth exactly, and computes per image and
over the set the metrics of :mod:`funduskit.scoring.metrics`. ``save_evaluation`` writes
``summary.json`` and ``per_image.csv``; ``summary_table`` renders the summary for the terminal.

Only the tasks present both in the submission and in the ground truth are scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table

from funduskit import __version__
from funduskit.core.errors import DataError
from funduskit.core.files import atomic_write_bytes
from funduskit.core.progress import track
from funduskit.data.sample import Sample
from funduskit.scoring.metrics import (
    REFERENCE_SPECIFICITY,
    absolute_error,
    auroc,
    fovea_distance,
    segmentation_scores,
    sensitivity_at_specificity,
)
from funduskit.scoring.submission import (
    CLASSIFICATION_FILE,
    FOVEA_FILE,
    SEGMENTATION_DIR,
    TASKS,
    Submission,
    atomic_write_csv,
    check_refuge_mask,
    image_stem,
    load_submission_mask,
    read_submission,
    summarise_list,
)

SUMMARY_FILE = "summary.json"
PER_IMAGE_FILE = "per_image.csv"

#: Summary metrics in report order: key -> (label, task, key of ``counts`` giving the images scored).
METRICS: dict[str, tuple[str, str, str]] = {
    "mean_disc_dice": ("Disc Dice (mean)", "segmentation", "segmentation"),
    "mean_cup_dice": ("Cup Dice (mean)", "segmentation", "cup"),
    "mean_vcdr_error": ("vCDR absolute error (mean)", "segmentation", "cup"),
    "auroc": ("AUROC", "classification", "classification"),
    "sensitivity_at_specificity": ("Sensitivity at specificity {specificity:g}", "classification", "classification"),
    "mean_fovea_distance": ("Fovea distance, px (mean)", "fovea", "fovea"),
}

PER_IMAGE_COLUMNS = (
    "image",
    "disc_dice",
    "cup_dice",
    "vcdr_pred",
    "vcdr_ref",
    "vcdr_error",
    "glaucoma_risk",
    "glaucoma_label",
    "fovea_x_pred",
    "fovea_y_pred",
    "fovea_x_ref",
    "fovea_y_ref",
    "fovea_distance",
)


@dataclass(frozen=True)
class ImageEvaluation:
    """The scores of one ground-truth image; ``None`` where a task is not scored for it."""

    image: str
    disc_dice: float | None = None
    cup_dice: float | None = None
    vcdr_pred: float | None = None
    vcdr_ref: float | None = None
    glaucoma_risk: float | None = None
    glaucoma_label: int | None = None
    fovea_pred: tuple[float, float] | None = None
    fovea_ref: tuple[float, float] | None = None

    @property
    def vcdr_error(self) -> float | None:
        if self.vcdr_pred is None or self.vcdr_ref is None:
            return None
        return absolute_error(self.vcdr_pred, self.vcdr_ref)

    @property
    def fovea_distance(self) -> float | None:
        if self.fovea_pred is None or self.fovea_ref is None:
            return None
        return fovea_distance(self.fovea_pred, self.fovea_ref)

    def row(self) -> dict[str, object]:
        """The ``per_image.csv`` row (:data:`PER_IMAGE_COLUMNS`)."""
        pred = self.fovea_pred or (None, None)
        ref = self.fovea_ref or (None, None)
        return {
            "image": self.image,
            "disc_dice": self.disc_dice,
            "cup_dice": self.cup_dice,
            "vcdr_pred": self.vcdr_pred,
            "vcdr_ref": self.vcdr_ref,
            "vcdr_error": self.vcdr_error,
            "glaucoma_risk": self.glaucoma_risk,
            "glaucoma_label": self.glaucoma_label,
            "fovea_x_pred": pred[0],
            "fovea_y_pred": pred[1],
            "fovea_x_ref": ref[0],
            "fovea_y_ref": ref[1],
            "fovea_distance": self.fovea_distance,
        }


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` found.

    Attributes:
        images: one result per ground-truth image, in ground-truth order.
        tasks: the tasks scored (present in both submission and ground truth).
        metrics: summary metric key (:data:`METRICS`) -> value for the scored tasks; ``None``
            where undefined (AUROC with one class only).
        counts: images scored per task; ``"cup"``: images whose reference annotates the cup
            (disc-only references score the disc only); ``"glaucoma"``: positives among the
            labelled images.
        specificity: the reference specificity of ``sensitivity_at_specificity``.
        notes: what was skipped and why.
    """

    images: tuple[ImageEvaluation, ...]
    tasks: tuple[str, ...]
    metrics: dict[str, float | None]
    counts: dict[str, int]
    specificity: float = REFERENCE_SPECIFICITY
    notes: tuple[str, ...] = ()
    sources: dict[str, str | None] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """The content of ``summary.json``."""
        return {
            "funduskit_version": __version__,
            **self.sources,
            "images": len(self.images),
            "tasks": list(self.tasks),
            "metrics": dict(self.metrics),
            "counts": dict(self.counts),
            "reference_specificity": self.specificity,
            "notes": list(self.notes),
        }


def evaluate(
    pred_dir: str | Path,
    gt_dir: str | Path,
    gt_format: str | None = None,
    *,
    specificity: float = REFERENCE_SPECIFICITY,
    progress: bool = True,
) -> EvaluationResult:
    """Score the submission in ``pred_dir`` against the ground truth in ``gt_dir``.

    Args:
        pred_dir: a submission directory (:func:`funduskit.scoring.submission.read_submission`).
        gt_dir: a data set in any layout :func:`funduskit.data.datasets.read_dataset` reads.
        gt_format: the ground-truth layout name, detected when ``None``.
        specificity: reference specificity for the sensitivity (0.85 in REFUGE).
        progress: show a progress bar over the images.

    Returns:
        The :class:`EvaluationResult` (nothing is written; see :func:`save_evaluation`).

    Raises:
        DataError: the submission misses images of the ground truth, holds images the ground
            truth lacks, or holds masks of the wrong size or with values other than 0 / 128 /
            255 (one error lists every such file, the first 20 by name), or no task is present
            in both.
    """
    from funduskit.data.datasets import read_dataset

    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    submission = read_submission(pred_dir)
    samples = read_dataset(gt_dir, format=gt_format)
    references = _by_stem(samples, gt_dir)
    tasks, notes = _shared_tasks(submission, references, pred_dir)
    _check_coverage(submission, references, tasks, pred_dir, gt_dir)

    problems: list[str] = []
    items: Iterable[tuple[str, Sample]] = references.items()
    if progress:
        items = track(list(items), "Evaluating")
    images = [_score_image(stem, sample, submission, tasks, problems) for stem, sample in items]
    if problems:
        raise DataError(
            pred_dir / SEGMENTATION_DIR,
            f"{len(problems)} masks cannot be scored: " + "; ".join(summarise_list(problems)),
            fix="masks must be single-channel 0 (cup) / 128 (rim) / 255 (background) at the image size",
        )
    metrics, counts, summary_notes = _summarise(images, tasks, specificity)
    return EvaluationResult(
        images=tuple(images),
        tasks=tasks,
        metrics=metrics,
        counts=counts,
        specificity=specificity,
        notes=tuple(notes + summary_notes),
        sources={
            "prediction": str(pred_dir),
            "ground_truth": str(gt_dir),
            "ground_truth_format": gt_format or ", ".join(sorted({sample.source for sample in samples})),
        },
    )


def _by_stem(samples: list[Sample], gt_dir: Path) -> dict[str, Sample]:
    references: dict[str, Sample] = {}
    clashes: list[str] = []
    for sample in samples:
        stem = image_stem(sample.image_id)
        if stem in references:
            clashes.append(f"{references[stem].image_path} and {sample.image_path}")
        references[stem] = sample
    if clashes:
        raise DataError(
            gt_dir,
            "images share a file stem, so submissions cannot name them apart: " + "; ".join(summarise_list(clashes)),
        )
    if not references:
        raise DataError(gt_dir, "the ground truth holds no images")
    return references


def _reference_stems(references: dict[str, Sample], task: str) -> set[str]:
    has = {
        "segmentation": lambda s: s.disc_cup_mask_path is not None,
        "classification": lambda s: s.label is not None,
        "fovea": lambda s: s.fovea is not None,
    }[task]
    return {stem for stem, sample in references.items() if has(sample)}


def _shared_tasks(
    submission: Submission, references: dict[str, Sample], pred_dir: Path
) -> tuple[tuple[str, ...], list[str]]:
    notes: list[str] = []
    tasks: list[str] = []
    for task in submission.tasks:
        if _reference_stems(references, task):
            tasks.append(task)
        else:
            notes.append(f"{task} not scored: the ground truth has no {task} annotations")
    for task in TASKS:
        if task not in submission.tasks and _reference_stems(references, task):
            notes.append(f"{task} not scored: the submission has no {task} part")
    if not tasks:
        raise DataError(
            pred_dir,
            f"no task present both in the submission ({', '.join(submission.tasks) or 'none'}) and in the ground truth",
        )
    return tuple(tasks), notes


def _mask_name(stem: str, submission: Submission) -> str:
    source = submission.segmentation.get(stem)
    return f"{SEGMENTATION_DIR}/{source.name if isinstance(source, Path) else stem + '.png'}"


def _csv_name(task: str) -> str:
    return CLASSIFICATION_FILE if task == "classification" else FOVEA_FILE


def _check_coverage(
    submission: Submission, references: dict[str, Sample], tasks: tuple[str, ...], pred_dir: Path, gt_dir: Path
) -> None:
    offending: list[str] = []
    for task in tasks:
        for stem in sorted(_reference_stems(references, task) - submission.stems(task)):
            image_id = references[stem].image_id
            if task == "segmentation":
                offending.append(f"{SEGMENTATION_DIR}/{stem}.png (for {image_id}) is missing")
            else:
                offending.append(f"{_csv_name(task)} has no row for {image_id}")
    for task in submission.tasks:
        for stem in sorted(submission.stems(task) - set(references)):
            if task == "segmentation":
                offending.append(f"{_mask_name(stem, submission)} names no ground-truth image")
            else:
                offending.append(f"{_csv_name(task)} row {submission.file_name(stem)} names no ground-truth image")
    if offending:
        raise DataError(
            pred_dir,
            f"does not match the {len(references)} ground-truth images of {gt_dir}, {len(offending)} problems: "
            + "; ".join(summarise_list(offending)),
            fix="the submission must hold exactly one prediction per ground-truth image and task, named by image stem",
        )


def _score_image(
    stem: str, sample: Sample, submission: Submission, tasks: tuple[str, ...], problems: list[str]
) -> ImageEvaluation:
    from funduskit.data.datasets import has_cup_annotation, load_disc_cup_mask

    scores: dict[str, object] = {}
    if "segmentation" in tasks and sample.disc_cup_mask_path is not None:
        source = submission.segmentation[stem]
        name = _mask_name(stem, submission)
        reference = load_disc_cup_mask(sample)
        try:
            predicted = load_submission_mask(source)
        except DataError as error:
            predicted, problem = None, error.problem
        else:
            problem = check_refuge_mask(predicted)
            if problem is None and predicted.shape != reference.shape:
                (h, w), (rh, rw) = predicted.shape, reference.shape
                problem = f"is {w}x{h}, expected {rw}x{rh} (the image size)"
        if problem is not None or predicted is None:
            problems.append(f"{name} {problem}")
        else:
            seg = segmentation_scores(predicted, reference)
            scores.update(disc_dice=seg.disc_dice)
            if has_cup_annotation(sample):  # disc-only references (IDRiD, PALM) score the disc only
                scores.update(cup_dice=seg.cup_dice, vcdr_pred=seg.vcdr_pred, vcdr_ref=seg.vcdr_ref)
    if "classification" in tasks and sample.label is not None:
        scores.update(glaucoma_risk=submission.glaucoma_risk[stem], glaucoma_label=int(sample.label))
    if "fovea" in tasks and sample.fovea is not None:
        scores.update(fovea_pred=submission.fovea[stem], fovea_ref=(float(sample.fovea[0]), float(sample.fovea[1])))
    return ImageEvaluation(image=sample.image_id, **scores)  # type: ignore[arg-type]


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def _summarise(
    images: list[ImageEvaluation], tasks: tuple[str, ...], specificity: float
) -> tuple[dict[str, float | None], dict[str, int], list[str]]:
    metrics: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    notes: list[str] = []
    if "segmentation" in tasks:
        discs = [image.disc_dice for image in images if image.disc_dice is not None]
        cups = [image for image in images if image.cup_dice is not None]
        counts["segmentation"] = len(discs)
        counts["cup"] = len(cups)
        metrics["mean_disc_dice"] = _mean(discs)  # type: ignore[arg-type]
        metrics["mean_cup_dice"] = _mean([image.cup_dice for image in cups]) if cups else None  # type: ignore[misc]
        metrics["mean_vcdr_error"] = _mean([image.vcdr_error for image in cups]) if cups else None  # type: ignore[misc]
        if len(cups) < len(discs):
            notes.append(
                f"cup Dice and vCDR scored on {len(cups)} of {len(discs)} images: the others have disc-only references"
            )
    if "classification" in tasks:
        labelled = [image for image in images if image.glaucoma_label is not None]
        labels = [image.glaucoma_label for image in labelled]
        risks = [image.glaucoma_risk for image in labelled]
        counts["classification"] = len(labelled)
        counts["glaucoma"] = int(sum(labels))  # type: ignore[arg-type]
        area = auroc(labels, risks)
        sensitivity = sensitivity_at_specificity(labels, risks, specificity)
        metrics["auroc"] = None if math.isnan(area) else area
        metrics["sensitivity_at_specificity"] = None if math.isnan(sensitivity) else sensitivity
        if math.isnan(area):
            notes.append("AUROC and sensitivity undefined: the ground-truth labels hold one class only")
    if "fovea" in tasks:
        located = [image.fovea_distance for image in images if image.fovea_distance is not None]
        counts["fovea"] = len(located)
        metrics["mean_fovea_distance"] = _mean(located)  # type: ignore[arg-type]
    return metrics, counts, notes


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def save_evaluation(result: EvaluationResult, summary_path: str | Path) -> tuple[Path, Path]:
    """Write ``summary_path`` (JSON) and ``per_image.csv`` beside it, each atomically.

    Returns:
        The two paths written.
    """
    summary_path = Path(summary_path)
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.summary(), indent=2) + "\n"
    atomic_write_bytes(summary_path, text.encode("utf-8"))
    per_image_path = summary_path.with_name(PER_IMAGE_FILE)
    rows = ([_cell(image.row()[column]) for column in PER_IMAGE_COLUMNS] for image in result.images)
    atomic_write_csv(per_image_path, PER_IMAGE_COLUMNS, rows)
    return summary_path, per_image_path


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def summary_table(result: EvaluationResult) -> Table:
    """A rich table of the summary metrics: task, metric, value, images scored."""
    table = Table(title=f"REFUGE evaluation ({len(result.images)} images)")
    table.add_column("Task")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_column("Images", justify="right")
    for key, (label, task, count) in METRICS.items():
        if key not in result.metrics:
            continue
        value = result.metrics[key]
        images = str(result.counts.get(count, ""))
        if task == "classification":
            images += f" ({result.counts.get('glaucoma', 0)} glaucoma)"
        shown = "n/a" if value is None else f"{value:.4f}"
        table.add_row(task, label.format(specificity=result.specificity), shown, images)
    if result.notes:
        table.caption = "; ".join(result.notes)
    return table

