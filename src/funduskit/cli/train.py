"""``funduskit train``: train one cross-validation fold of one task into a run directory."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from funduskit.core.config import PRECISIONS
from funduskit.core.presets import PRESET_NAMES
from funduskit.core.tasks import TASKS
from funduskit.data.sample import VIEWS
from funduskit.transforms.preprocess import PREPROCESSINGS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a network (vessel, disc, cup, fovea or glaucoma) on one fold",
        description=(
            "Train one network of the REFUGE2 system on one cross-validation fold. The run directory "
            "receives config.yaml, split.csv, augmentation.yaml, last.pt / best.pt, metrics.csv and "
            "curves.png. Every setting comes from the preset (cpu, paper or real) and the options below; "
            "--set changes any field of config.yaml (e.g. --set optimizer.lr=3e-4)."
        ),
    )
    parser.add_argument("task", choices=TASKS, metavar="TASK", help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--data", type=Path, required=True, action="append", metavar="DIR",
                        help="data set folder (any supported layout); repeat to train on several together, "
                             "e.g. --data DRIVE --data CHASE_DB1")
    parser.add_argument("--format", default=None, metavar="F", help="data set layout (detected when omitted)")
    parser.add_argument("--preset", default="cpu", choices=PRESET_NAMES,
                        help="cpu: small and fast, for synthetic data (default); paper: the report's sizes and "
                             "batches; real: pretrained EfficientNet-Lite0 recipes for small real sets "
                             "(disc, cup and glaucoma on disc crops)")
    parser.add_argument("--config", type=Path, default=None, metavar="YAML",
                        help="start from this configuration (e.g. another run's config.yaml) instead of the preset")
    parser.add_argument("--fold", type=int, default=None, metavar="K", help="fold used for validation (default 0)")
    parser.add_argument("--folds", type=int, default=None, metavar="N", help="number of folds (default 4)")
    parser.add_argument("--split", default=None, choices=("stratified", "refuge2-report"),
                        help="stratified k-fold over all images (default), or the report's arrangement "
                             "(REFUGE1 always in training, folds over REFUGE2 validation)")
    parser.add_argument("--epochs", type=int, default=None, metavar="N", help="number of epochs (total)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N")
    parser.add_argument("--input-size", type=int, default=None, metavar="S", help="network input side in pixels")
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate")
    parser.add_argument("--preprocessing", default=None, choices=tuple(PREPROCESSINGS),
                        help="network-input preprocessing (glaucoma: normalize or zero_local_mean; "
                             "lite: the pretrained EfficientNet-Lite encoders' input)")
    parser.add_argument("--view", default=None, choices=VIEWS,
                        help="what the network sees: whole photographs, or crops centred on the optic disc "
                             "(whole photographs with disc masks are cut around their disc)")
    parser.add_argument("--seed", type=int, default=None, metavar="S")
    parser.add_argument("--init", type=Path, default=None, metavar="CKPT",
                        help="fine-tune from this checkpoint or run directory (tensors that fit are loaded)")
    parser.add_argument("--encoder-weights", type=Path, default=None, metavar="FILE|lite0|lite1|lite2",
                        help="weights of the photo encoder / classifier backbone: a local timm weights file, or "
                             "the ImageNet EfficientNet-Lite weights installed with funduskit[pretrained] "
                             "(use a tf_efficientnet_lite* encoder for them)")
    parser.add_argument("--pretrained", action="store_true", help="ask timm for ImageNet weights (needs a network)")
    parser.add_argument("--backbone", type=Path, default=None, metavar="CKPT",
                        help="glaucoma: load everything but the last layer from CKPT and freeze it (the report's mode)")
    parser.add_argument("--vessel-model", type=Path, default=None, metavar="RUN",
                        help="disc, cup, fovea: take the vessel-map input from this trained vessel run "
                             "(default: the data set's vessel masks)")
    parser.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (0: torch's default)")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="auto (default): bf16 autocast on a CUDA GPU that has it, fp32 on every CPU; "
                             "bf16 forces autocast (emulated, slowly, on CPUs without native bf16)")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="data-loading worker processes")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="change any configuration field (repeatable), e.g. --set data.augmentation=strong")
    parser.add_argument("--out", type=Path, default=None, metavar="RUN",
                        help="run directory (default runs/TASK-PRESET-foldK)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN",
                        help="continue an interrupted run from its last.pt (same configuration; --epochs may grow)")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train in N processes on this machine (DistributedDataParallel under torchrun: one "
                             "per GPU, or CPU processes sharing the cores); the global batch stays --batch-size. "
                             "Or run `torchrun --nproc_per_node N -m funduskit train ...` (docs/scale.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    return parser


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--nproc 2`` or ``--nproc=2``)."""
    kept: list[str] = []
    words = iter(argv)
    for word in words:
        if word == option:
            next(words, None)
        elif not word.startswith(option + "="):
            kept.append(word)
    return kept


OPTION_KEYS = {
    "fold": "data.fold",
    "folds": "data.n_folds",
    "split": "data.split",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "input_size": "data.input_size",
    "lr": "optimizer.lr",
    "preprocessing": "data.preprocessing",
    "view": "data.view",
    "seed": "seed",
    "device": "runtime.device",
    "threads": "runtime.threads",
    "precision": "runtime.precision",
    "workers": "runtime.num_workers",
}


def overrides_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Dotted-path configuration changes from the options given (``None`` = not given)."""
    from funduskit.core.config import parse_assignment

    changes: dict[str, object] = {key: getattr(args, option) for option, key in OPTION_KEYS.items()
                                  if getattr(args, option) is not None}
    if args.init is not None:
        changes["init.checkpoint"] = str(args.init)
    if args.encoder_weights is not None:
        changes["init.encoder_weights"] = str(args.encoder_weights)
    if args.pretrained:
        changes["init.pretrained"] = True
    if args.backbone is not None:
        changes["init.backbone_checkpoint"] = str(args.backbone)
        changes["model.kwargs.frozen_backbone"] = True
    if args.vessel_model is not None:
        changes["data.vessel_model"] = str(args.vessel_model)
    changes.update(parse_assignment(text) for text in args.assignments)
    return changes


#: The library's words (configuration keys, arguments) for what this command spells as options.
CLI_WORDS = {**{key: "--" + option.replace("_", "-") for option, key in OPTION_KEYS.items()},
             "data.vessel_model": "--vessel-model", "init.checkpoint": "--init", "init.pretrained": "--pretrained",
             "init.encoder_weights": "--encoder-weights", "init.backbone_checkpoint": "--backbone",
             "resume": "--resume", "epochs": "--epochs", "run directory": "--out"}


def in_cli_words(message: str) -> str:
    """``message`` with the library's words followed by this command's option, e.g.
    ``data.vessel_model`` -> ``data.vessel_model (--vessel-model)``."""
    for word in sorted(CLI_WORDS, key=len, reverse=True):
        message = re.sub(rf"(?<![\w.-]){re.escape(word)}(?![\w.])", lambda m, w=word: f"{m.group(0)} ({CLI_WORDS[w]})",
                         message, count=1)
    return message


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from funduskit.core.errors import FunduskitError
    from funduskit.training.distributed import (
        RANK_VARIABLES,
        close_process_group,
        launch,
    )
    from funduskit.training.train import train

    if args.nproc != 1 and not any(name in os.environ for name in RANK_VARIABLES):
        return launch(args.nproc, without_option(args._argv, "--nproc"))
    try:
        result = train(
            args.task, args.data, data_format=args.format, preset_name=args.preset, config_file=args.config,
            overrides=overrides_from_args(args), out=args.out, resume=args.resume, show_progress=not args.quiet,
        )
    except FunduskitError as error:
        raise FunduskitError(in_cli_words(str(error))) from error
    finally:
        close_process_group()
    if os.environ.get("RANK", "0") != "0":
        return 0  # one line from rank 0 is enough
    Console(quiet=args.quiet).print(
        f"Best {result.metric} {result.best_metric:.4f} at epoch {result.best_epoch}; run in {result.run_dir}"
    )
    return 0
