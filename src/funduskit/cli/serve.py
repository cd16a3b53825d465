"""``funduskit serve``: the web page and HTTP API for screening (docs/serve.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from funduskit.core.config import PRECISIONS
from funduskit.inference.fast_ensemble import ENSEMBLES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from funduskit.serve.settings import (
        DEFAULT_MAX_FILES,
        DEFAULT_MAX_QUEUED_JOBS,
        DEFAULT_MAX_UPLOAD_MB,
        TOKEN_VARIABLE,
    )

    parser = subparsers.add_parser(
        "serve",
        help="serve a web page and an HTTP API that predict uploaded photographs",
        description=(
            "Load the models once and serve, at http://HOST:PORT/, a page to drop photographs on and an API "
            "(/api/v1, OpenAPI at /docs) that accepts them as jobs. Jobs, uploads and results are kept in a SQLite "
            "database and folders under --data: a restarted server still answers for finished jobs and finishes "
            "the others. Ctrl-C stops it."
        ),
    )
    parser.add_argument("--models", type=Path, default=None, metavar="DIR",
                        help="models folder, as for `funduskit predict` (default: the starter models)")
    parser.add_argument("--no-starter", dest="starter", action="store_false",
                        help="never use the starter models: --models must hold every task")
    parser.add_argument("--data", type=Path, default=Path("funduskit-serve"), metavar="DIR",
                        help="where jobs, uploads and results are kept (default: ./funduskit-serve)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs --token)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--token", default=os.environ.get(TOKEN_VARIABLE) or None,
                        help=f"access token every API call must carry as 'Authorization: Bearer TOKEN' "
                             f"(default: ${TOKEN_VARIABLE}); required off loopback")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB",
                        help=f"largest request; larger ones are refused with 413 (default {DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUED_JOBS, metavar="N",
                        help=f"jobs waiting or running at once; more are refused with 503 and Retry-After "
                             f"(default {DEFAULT_MAX_QUEUED_JOBS})")
    parser.add_argument("--max-files", type=int, default=DEFAULT_MAX_FILES, metavar="N",
                        help=f"photographs per upload (default {DEFAULT_MAX_FILES})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda if present")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 autocast where the device computes bf16 natively, else fp32")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="torch threads (default: torch's choice)")
    parser.add_argument("--tta", action="store_true", help="also predict the horizontally flipped photo and average")
    parser.add_argument("--quality", choices=("on", "off"), default="on",
                        help="on (default): a photograph the quality gate rejects gets no answers; off: answer all")
    parser.add_argument("--ensemble", choices=ENSEMBLES, default="full",
                        help="full (default): every member of each task's ensemble; fast: one member of each task "
                             "and stage, as `funduskit predict --ensemble fast`")
    return parser


def run(args: argparse.Namespace) -> int:
    import uvicorn
    from rich.console import Console

    from funduskit.inference.pipeline import PredictEngine, PredictOptions, models_text
    from funduskit.serve.app import create_app
    from funduskit.serve.settings import ServeSettings

    console = Console()
    options = PredictOptions(tta=args.tta, device=args.device, precision=args.precision, threads=args.threads,
                             starter=args.starter, quality=args.quality, ensemble=args.ensemble)
    settings = ServeSettings(data_dir=args.data, models_dir=args.models, host=args.host, port=args.port,
                             token=args.token, max_upload_bytes=int(args.max_upload_mb * 1e6),
                             max_queued_jobs=args.max_queue, max_files=args.max_files)
    settings.check()
    engine = PredictEngine(args.models, options)
    with console.status("loading the models"):
        engine.load()
    app = create_app(settings, engine)
    console.print(f"Models: {models_text(engine.models)} ({engine.runtime_text})", soft_wrap=True, markup=False,
                  highlight=False)
    console.print(f"Jobs and results in {settings.data_dir.resolve()}", soft_wrap=True, markup=False, highlight=False)
    console.print(f"Serving on http://{args.host}:{args.port}/ (API: /api/v1, documentation: /docs); Ctrl-C stops",
                  soft_wrap=True, markup=False, highlight=False)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    console.print("Stopped.")
    return 0
