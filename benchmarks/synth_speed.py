"""Seconds per synthetic image, per camera, on one core.

Usage::

    python benchmarks/synth_speed.py [--images 4] [--scale 1.0] [--threads 1]

Prints a table: camera, image size, and the mean wall-clock seconds per image spent drawing the
parameters (vessel tree included), rendering, and encoding the JPEG and the two PNG masks, with
their total; and the CPU seconds of the process per image, which stay meaningful when other jobs
share the machine.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from funduskit.synthetic import CAMERAS, case_rng, draw_case_params, render_case
from funduskit.synthetic.dataset import JPEG_QUALITY


def time_camera(camera: str, images: int, scale: float) -> dict[str, float]:
    """Mean seconds per image of each stage for ``images`` cases of one camera."""
    totals = {"draw": 0.0, "render": 0.0, "encode": 0.0}
    size = ""
    cpu_start = time.process_time()
    for index in range(images):
        start = time.perf_counter()
        params = draw_case_params(case_rng(2024, index), label=index % 2, scale=scale, camera=camera)
        drawn = time.perf_counter()
        image, disc_cup_mask, vessel_mask = render_case(params)
        rendered = time.perf_counter()
        cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        cv2.imencode(".png", disc_cup_mask)
        cv2.imencode(".png", vessel_mask.astype(np.uint8) * 255)
        encoded = time.perf_counter()
        totals["draw"] += drawn - start
        totals["render"] += rendered - drawn
        totals["encode"] += encoded - rendered
        size = f"{image.shape[1]} x {image.shape[0]}"
    result = {stage: seconds / images for stage, seconds in totals.items()}
    result["total"] = sum(result.values())
    result["cpu"] = (time.process_time() - cpu_start) / images
    result["size"] = size  # type: ignore[assignment]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="images per camera (default 4)")
    parser.add_argument("--scale", type=float, default=1.0, help="output scale (default 1.0)")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1: one core)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    time_camera("canon", 1, 0.1)  # warm-up: imports, OpenCV initialisation

    table = Table(title=f"synthetic image generation, scale {args.scale}, {args.threads} OpenCV thread(s)")
    for column in ("camera", "size", "draw s", "render s", "encode s", "total s/image", "CPU s/image"):
        table.add_column(column, justify="left" if column in ("camera", "size") else "right")
    for camera in CAMERAS:
        timing = time_camera(camera, args.images, args.scale)
        table.add_row(camera, str(timing["size"]), f"{timing['draw']:.3f}", f"{timing['render']:.3f}",
                      f"{timing['encode']:.3f}", f"{timing['total']:.3f}", f"{timing['cpu']:.3f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
