"""What ``funduskit serve`` is started with (how photographs are predicted is the
:class:`funduskit.inference.pipeline.PredictEngine`'s)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from funduskit.core.errors import FunduskitError

#: Environment variable holding the access token (instead of ``--token`` on the command line).
TOKEN_VARIABLE = "FUNDUSKIT_TOKEN"
#: Largest request body by default: 50 MB.
DEFAULT_MAX_UPLOAD_MB = 50.0
#: Jobs waiting or running at once by default; one more is answered 503.
DEFAULT_MAX_QUEUED_JOBS = 32
#: Photographs per job by default.
DEFAULT_MAX_FILES = 200


@dataclass(frozen=True)
class ServeSettings:
    """How the server runs.

    Attributes:
        data_dir: the job database (``jobs.sqlite``) and every job's uploads and results.
        models_dir: models folder (as ``funduskit predict --models``); None: the starter models.
        host, port: where to listen.
        token: access token every API call must carry (``Authorization: Bearer TOKEN``); None:
            no token, allowed only on a loopback address.
        max_upload_bytes: largest request body; larger ones are answered 413.
        max_queued_jobs: jobs waiting or running at once; more are answered 503 with Retry-After.
        max_files: photographs per job.
    """

    data_dir: Path
    models_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1e6)
    max_queued_jobs: int = DEFAULT_MAX_QUEUED_JOBS
    max_files: int = DEFAULT_MAX_FILES

    def check(self) -> None:
        """Raise a FunduskitError when the settings are unsafe or impossible."""
        if not self.token and not is_loopback(self.host):
            raise FunduskitError(
                f"--host {self.host} is reachable from other machines, so an access token is required: give "
                f"--token TOKEN (or set {TOKEN_VARIABLE}), or serve on 127.0.0.1")
        if self.max_upload_bytes <= 0 or self.max_queued_jobs <= 0 or self.max_files <= 0:
            raise FunduskitError("--max-upload-mb, --max-queue and --max-files must be positive")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
