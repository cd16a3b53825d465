"""``funduskit predict``: run the trained ensembles over photographs."""

from __future__ import annotations

import argparse
from pathlib import Path

from funduskit.core.config import PRECISIONS
from funduskit.data.sample import VIEWS
from funduskit.inference.fast_ensemble import ENSEMBLES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="predict glaucoma risk, disc/cup, vCDR and fovea for photographs",
        description=(
            "Run every task's ensemble (vessels, disc, cup, fovea, glaucoma) found in --models, and the "
            "starter models installed with funduskit for the tasks it lacks, over photographs and write, in --out: the REFUGE2 submission (classification_results.csv, "
            "segmentation/NAME.png, fovea_location_results.csv), results.csv / results.json, overlay "
            "PNGs, vessels/NAME.png (vessel probability maps) and report.html. A restarted run skips the "
            "photographs already done."
        ),
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGES_OR_DIR", help="image files or folders of images")
    parser.add_argument("--models", type=Path, default=None, metavar="DIR",
                        help="folder of training run directories, or holding a models.yaml manifest; its models "
                             "replace the starter models task by task (default: the starter models alone)")
    parser.add_argument("--no-starter", dest="starter", action="store_false",
                        help="never use the starter models: a task --models has no model for is an error")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--tta", action="store_true", help="also predict the horizontally flipped photo and average")
    parser.add_argument("--batch-size", type=int, default=0, metavar="N",
                        help="photographs per batch (default: 1 on CPU, where the report's ensemble ran fastest and "
                             "leanest; 4 on a GPU)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda if present")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 autocast where the device computes bf16 natively, else fp32")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx", "openvino"), default="auto",
                        help="onnx: ONNX Runtime on models exported with `funduskit export` (and the starter models); "
                             "openvino: OpenVINO's CPU plugin on the same files (bf16 where the CPU has it); "
                             "torch: the optimised PyTorch networks; auto (default): each model on the backend of "
                             "its file (ONNX Runtime for exported ones)")
    parser.add_argument("--ensemble", choices=ENSEMBLES, default="full",
                        help="full (default): every member of each task's ensemble, the report's answer; fast: one "
                             "member of each task and stage (or those --models names in fast.yaml): fewer networks, "
                             "answers a little different (speed and agreement in docs/performance.md)")
    parser.add_argument("--view", choices=("auto", *VIEWS), default="auto",
                        help="whole: whole fundus photographs; disc: crops centred on the optic disc (no fovea); "
                             "auto (default): each photograph's own, by its dark corners")
    parser.add_argument("--quality", choices=("on", "off"), default="on",
                        help="on (default): grade each photograph's quality and give a rejected one (out of focus, "
                             "too dark, not a fundus photograph, ...) no glaucoma probability, vCDR, fovea or mask; "
                             "off: answer every photograph (challenge submissions); the grade is recorded either way")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="torch threads (default: torch's choice)")
    parser.add_argument("--save-probabilities", action="store_true",
                        help="also save disc/cup probability maps (float16) for `funduskit tune`")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (default): this process; ray: Ray workers, one copy of the networks each, "
                             "for cohorts (pip install 'funduskit[ray]'; docs/scale.md). Same outputs either way")
    parser.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                        help="ray: the Ray cluster to join (auto: the one this machine is in); default: start a "
                             "Ray instance on this machine for the run")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="ray: worker actors (default 2), each with its share of the cores")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                        help="ray: GPUs each worker reserves (e.g. 1 on a GPU cluster; default 0: CPU workers)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


#: The options of this command that are fields of ``PredictOptions`` (same names).
OPTION_NAMES = ("tta", "batch_size", "device", "precision", "threads", "save_probabilities", "backend", "view",
                "starter", "quality", "ensemble")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from funduskit.inference.pipeline import PredictOptions, predict_photos

    options = PredictOptions(**{name: getattr(args, name) for name in OPTION_NAMES})
    if args.engine == "ray":
        from funduskit.inference.cohort import RayPlacement, predict_cohort

        placement = RayPlacement(address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker)
        summary = predict_cohort(args.inputs, args.models, args.out, options, placement,
                                 progress=not args.quiet).summary
    else:
        summary = predict_photos(args.inputs, args.models, args.out, options, progress=not args.quiet)
    console = Console()
    console.print(
        f"{summary.total} photographs: {summary.predicted} predicted, {summary.skipped} skipped (already done), "
        f"{summary.failed} could not be read; {summary.seconds:.1f} s ({summary.runtime}).",
        soft_wrap=True,
    )
    grades = ", ".join(f"{count} {grade}" for grade, count in summary.grades.items())
    if grades:
        console.print(f"Quality: {grades}" + (" (rejected ones have no answers; --quality off answers them)"
                                              if summary.grades.get("reject") and args.quality == "on" else ""),
                      soft_wrap=True)
    if summary.passed_over:
        console.print(f"{len(summary.passed_over)} other file(s) not predicted:", soft_wrap=True)
        for item in summary.passed_over[:20]:
            console.print(f"  {item.path}: {item.reason}", soft_wrap=True, markup=False, highlight=False)
        if len(summary.passed_over) > 20:
            console.print(f"  ... and {len(summary.passed_over) - 20} more (all in predict.json)", soft_wrap=True)
    console.print("Models: " + "; ".join(f"{task} from {origin}" for task, origin in summary.origin.items()),
                  soft_wrap=True, markup=False, highlight=False)
    console.print(f"Report: {summary.report}", soft_wrap=True)
    return 0
