"""Inference speed and memory on this machine: ``funduskit bench`` / ``benchmarks/inference.py``.

Three ways of running the same networks (same weights, same inputs) are measured side by side:

==============  ==========================================================================
``baseline``    eager PyTorch, fp32, NCHW, one photograph at a time (the plain way)
``torch``       the optimised predictor: :func:`funduskit.runtime.optimise.optimise_for_inference`
                (batch norms folded, Winograd 3x3 convolutions, channels_last), bf16 autocast
                where the CPU computes bf16 natively, inference mode, batches
``onnx``        ONNX Runtime on the networks exported by :func:`funduskit.tools.export.export_network`
==============  ==========================================================================

Rows:

- **per network** (vessel U-Net, disc/cup segmenter, fovea localiser, glaucoma classifier at the
  preset's sizes): seconds per photograph (median of repeats after warm-up, batch 1), photographs
  per second at batch ``--batch``, peak resident memory, FLOPs per photograph (torch's
  ``FlopCounterMode``), achieved GFLOP/s and its fraction of this machine's measured matmul peak,
  largest probability difference to the baseline;
- **pipelines** through :class:`funduskit.inference.predictor.Predictor` (preprocessing, vessel map
  shared, ensembles, mapping back, post-processing): the single-model pipeline and the report's
  full ensemble (8 classifiers, 4 disc, 2 cup, 10 fovea, one vessel network), with their
  agreement to the baseline (disc and cup Dice, fovea distance, glaucoma probability);
- **memory with the number of photographs**: peak resident memory after the first and after the
  last of ``--photos`` photographs streamed through the optimised pipeline.
- **the predict command**: ``funduskit predict --backend onnx`` itself, in a subprocess, with the
  ensemble's run directories made of the exported networks, over 2 and ``--photos``' first count
  of photographs: wall time and peak resident memory, as a screening user sees them.

The network and pipeline jobs keep glibc's default allocator in every mode, so that the baseline
timed in turns beside an optimised network runs as it does alone; the memory-over-photographs job
and the predict command (ONNX Runtime) run with the allocator setting of ``funduskit predict
--backend onnx`` (:func:`funduskit.runtime.memory.return_freed_buffers_to_system`).

Every configuration runs in its own subprocess, so its peak resident memory (``ru_maxrss``) is its
own. Networks are untrained (timing does not depend on the weights); their last layer is
calibrated so that maps are confident, as trained ones are (:func:`make_confident`), which makes
the mask agreement meaningful.
The photographs are synthetic, at the two REFUGE camera sizes (2124 x 2056 and 1634 x 1634).

One module per concern; their names are importable from this package too, loaded on first use
(importing the package itself loads neither numpy nor torch):

==================  ========================================================================
``options``         the modes, networks, ensembles, camera sizes, targets; :class:`BenchOptions`
``networks``        configurations, calibrated networks, the runtime and module of each mode,
                    the predictor's ensembles, synthetic photographs
``timing``          peak memory, median and interleaved timings, matmul peak, the machine
``jobs``            the jobs, and the job process ``python -m funduskit.tools.bench.jobs``
``runner``          :func:`run_benchmark` (the result document), speed-ups, :func:`check_targets`
``tables``          :func:`render`: the rich tables of a result document
==================  ========================================================================

The command line (``funduskit bench`` and ``benchmarks/inference.py``) is :mod:`funduskit.cli.bench`.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "options": ["CAMERA_SIZES", "EXPORTED_MODES", "MODES", "NETWORK_TASKS", "REPORT_ENSEMBLE", "SINGLE_MODEL", "TARGETS_BY_KIND",
                    "TINY_KWARGS", "BenchOptions"],
        "networks": ["CONFIDENT_SCALE", "CONFIDENT_SPREAD", "CUP_AREA_OF_DISC", "DRAWN_DISC_RED", "FOREGROUND", "MIN_PROBE_PIXELS", "RIDGE", "build_ensembles", "build_network",
                     "make_confident", "make_runtime", "member_config", "precision_of", "prepare_for_mode",
                     "synthetic_photo", "task_config"],
        "timing": ["SPEED_FLAGS", "cpu_flags", "interleaved_seconds", "machine_description", "matmul_gflops", "median_seconds"],
        "jobs": ["RESULT_MARK", "job_command", "job_machine", "job_network", "job_pipeline", "job_stream",
                 "options_from_dict", "options_to_dict", "run_job"],
        "runner": ["check_targets", "run_benchmark"],
        "tables": ["render"],
    },
)
