"""The system's Chromium for the browser tests (Debian's ``chromium``: `.ci/run` installs it)."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
#: Headless, as root, and quiet on a machine without a network (no background connections).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio", "--disable-quic"]
