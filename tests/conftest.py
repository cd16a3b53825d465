"""Shared fixtures. Tests run offline and on two cores: every worker uses one thread."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The research-use data sets beside the repository; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (research-use data is never bundled)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _openvino_only_in_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO's CPU plugin, once it has run in a process, makes later forks and training there
    die of SIGSEGV (docs/decisions.md): tests run it through the command line in a subprocess, and a
    test that compiles an OpenVINO network inside the test worker fails here, naming the rule."""
    from funduskit.inference import openvino_backend

    def refuse() -> None:
        raise AssertionError("OpenVINO runs only in a subprocess in the tests (it breaks later forks of the "
                             "test worker, docs/decisions.md): run the command with subprocess")

    monkeypatch.setattr(openvino_backend, "_openvino", refuse)
