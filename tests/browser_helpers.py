"""The system's Chromium for the browser tests (Debian's ``chromium``: `.ci/run` installs it)."""

from __future__ import annotations

import shutil

import pytest

from funduskit.tools.serve_load import CHROMIUM_FLAGS as HEADLESS_FLAGS

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
CHROMIUM_FLAGS = list(HEADLESS_FLAGS)
