"""A real ``funduskit serve`` in a subprocess, and a bounded load on it (tests and ``benchmarks/serve.py``).

:class:`ServerProcess` starts the command on a free loopback port, waits for ``/api/v1/health``,
and stops it with Ctrl-C (SIGINT) or kills it (SIGKILL); :func:`run_load` sends photographs from
concurrent clients, each submitting one job at a time and polling it to the end, and samples the
server's resident memory while it works.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HEALTH = "/api/v1/health"
#: Headless Chromium as root on a machine without a network (no background connections): the
#: browser tests' and the screenshot's flags.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio", "--disable-quic")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """``python -m funduskit serve --data DATA --port PORT ARGS...`` in a subprocess.

    Args:
        data_dir: the server's ``--data``.
        arguments: further options (``--models DIR``, ``--no-starter``, ``--token T``, ...).
        log: where its output goes (a file, so that a long run cannot fill a pipe).
        env: extra environment variables.
    """

    def __init__(self, data_dir: Path, arguments: Sequence[str], log: Path, env: dict[str, str] | None = None):
        self.data_dir, self.arguments, self.log_path = Path(data_dir), list(arguments), Path(log)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0, headers: dict[str, str] | None = None) -> ServerProcess:
        """Start it and wait until its health check answers (raises with its log when it dies)."""
        command = [sys.executable, "-m", "funduskit", "serve", "--data", str(self.data_dir), "--port", str(self.port),
                   *self.arguments]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"funduskit serve exited with {self.process.returncode}:\n{self.log}")
            try:
                if httpx.get(self.url + HEALTH, headers=headers, timeout=2).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"funduskit serve did not answer within {timeout:.0f} s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        """The server's resident memory now, in MB."""
        return self._status_mb("VmRSS")

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory so far, in MB."""
        return self._status_mb("VmHWM")

    def _status_mb(self, key: str) -> float:
        """A memory line of ``/proc/PID/status`` (kB there), in MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {key} in /proc/{self.pid}/status")

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C (SIGINT) and wait; returns the exit status (kills it after ``timeout``)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to tidy up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 300.0, interval: float = 0.2) -> dict:
    """Poll ``/api/v1/jobs/{id}`` until the job is done or failed; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
        if answer["status"] in ("done", "failed"):
            return answer
        time.sleep(interval)
    raise TimeoutError(f"job {job_id} not finished after {timeout:.0f} s")


@dataclass
class LoadResult:
    """What a load run measured."""

    clients: int
    photos: int
    answered: int = 0
    failed: int = 0
    refused: int = 0  # 503 answers (retried after Retry-After)
    latencies_s: list[float] = field(default_factory=list)  # submit -> job done, per photograph
    seconds: float = 0.0
    memory_mb: list[float] = field(default_factory=list)  # resident memory, sampled
    peak_mb: float = 0.0
    errors: list[str] = field(default_factory=list)  # what went wrong in a client (an unanswered request)

    @property
    def median_s(self) -> float:
        return statistics.median(self.latencies_s) if self.latencies_s else float("nan")

    @property
    def p95_s(self) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run_load(server: ServerProcess, photos: Sequence[Path], clients: int, headers: dict[str, str] | None = None,
             sample_every_s: float = 0.25) -> LoadResult:
    """Send ``photos`` from ``clients`` concurrent clients (the photographs dealt out in turn),
    each submitting one single-photograph job at a time and polling it to the end; a 503 is
    retried after its Retry-After. Samples the server's resident memory meanwhile."""
    result = LoadResult(clients=clients, photos=len(photos))
    lock = threading.Lock()
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.is_set():
            result.memory_mb.append(server.rss_mb())
            stop_sampling.wait(sample_every_s)

    def client_work(mine: Sequence[Path]) -> None:
        try:
            send(mine)
        except Exception as error:  # noqa: BLE001 - reported in the result, not lost in a thread
            with lock:
                result.errors.append(f"{type(error).__name__}: {error}")

    def send(mine: Sequence[Path]) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for photo in mine:
                started = time.perf_counter()
                while True:
                    answer = client.post("/api/v1/jobs", files=[("files", (photo.name, photo.read_bytes()))])
                    if answer.status_code != 503:
                        break
                    with lock:
                        result.refused += 1
                    time.sleep(float(answer.headers.get("Retry-After", "1")))
                answer.raise_for_status()
                job = wait_for_job(client, answer.json()["job_id"])
                with lock:
                    result.latencies_s.append(time.perf_counter() - started)
                    done = sum(p["status"] == "done" for p in job["photos"])
                    result.answered += done
                    result.failed += len(job["photos"]) - done

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=client_work, args=(photos[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    stop_sampling.set()
    sampler.join()
    result.peak_mb = server.peak_rss_mb()
    return result
