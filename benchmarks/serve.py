"""Load on a real ``funduskit serve``: concurrent clients, every request answered, latency and memory.

Starts the server in a subprocess on a free loopback port (the starter models unless ``--models``),
sends ``--photos`` photographs from ``--clients`` concurrent clients (each submits one
single-photograph job at a time and polls it to the end; a 503 is retried after its Retry-After)
and prints: requests answered, median and 95th-percentile latency (submit to done), throughput,
the server's resident memory during a warm-up (every distinct photograph once), idle after it, during
the load and at its peak: flat memory is the load's maximum close to the warm-up's. With ``--screenshot PATH`` it also
saves the page, after uploading two photographs in headless Chromium, to PATH (docs/serve.png).

Usage::

    python benchmarks/serve.py                              # starter models, 40 photos, 4 clients
    python benchmarks/serve.py --models runs/demo --photos 20 --screenshot docs/serve.png

Photographs: ``skimage.data.retina()`` and synthetic whole photographs at camera size (REFUGE layout).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
from machine import cpu_flags


def make_photos(folder: Path, count: int) -> list[Path]:
    from skimage.data import retina

    from funduskit.synthetic import generate_dataset

    folder.mkdir(parents=True, exist_ok=True)
    retina_path = folder / "retina.jpg"
    cv2.imwrite(str(retina_path), cv2.cvtColor(retina(), cv2.COLOR_RGB2BGR))
    generate_dataset(folder / "synthetic", max(1, min(count, 8) - 1), 0, scale=0.5)
    pool = [retina_path, *sorted((folder / "synthetic" / "Images").iterdir())]
    return [pool[i % len(pool)] for i in range(count)]


def screenshot(url: str, photos: list[Path], path: Path) -> None:
    import shutil

    from playwright.sync_api import sync_playwright

    from funduskit.tools.serve_load import CHROMIUM_FLAGS

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + "/")
        page.set_input_files("#files", [str(p) for p in photos])
        page.wait_for_selector("#downloads a", timeout=300_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(path), full_page=True)
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()

    from funduskit.tools.serve_load import ServerProcess, run_load

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        photos = make_photos(tmp_path / "photos", args.photos)
        options = ["--models", str(args.models)] if args.models else []
        server = ServerProcess(tmp_path / "data", options + ["--max-queue", str(2 * args.clients)],
                               log=tmp_path / "server.log").start(timeout=300)
        try:
            warm = run_load(server, photos[:8], clients=args.clients)  # every distinct photograph once
            settled = server.rss_mb()
            result = run_load(server, photos, clients=args.clients)
            if args.screenshot:
                screenshot(server.url, [photos[0], photos[1]], args.screenshot)
        finally:
            server.stop()
    print(f"funduskit serve under load ({'models ' + str(args.models) if args.models else 'starter models'}); "
          f"CPU flags: {cpu_flags()}; {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores")
    print()
    print("| requests | clients | answered | failed | 503 retried | median s | p95 s | photos/s "
          "| max during warm-up MB | idle after warm-up MB | max during load MB | peak (VmHWM) MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {result.photos} | {result.clients} | {result.answered} | {result.failed} | {result.refused} "
          f"| {result.median_s:.2f} | {result.p95_s:.2f} | {result.photos / result.seconds:.2f} "
          f"| {max(warm.memory_mb):.0f} | {settled:.0f} | {max(result.memory_mb):.0f} | {result.peak_mb:.0f} |")
    print(f"\nwarm-up: {warm.photos} photos; errors: {result.errors or 'none'}")
    print(f"command: {' '.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}")
    return 0 if not result.errors and result.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
