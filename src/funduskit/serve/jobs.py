"""The job database: one SQLite file under ``--data``, each job's files in a folder beside it.

::

    DATA/jobs.sqlite                 the jobs and their photographs (this module)
    DATA/jobs/JOB_ID/uploads/NAME    the photographs as uploaded (safe names, :mod:`.uploads`)
    DATA/jobs/JOB_ID/out/            what ``funduskit predict`` writes for them (results, overlays, ...)

A job is written to disk whole before its row is committed, so a killed server never leaves a
queued job without its photographs; folders without a row (an upload cut short) are removed when
the store opens. Jobs that were running when the server stopped are queued again: prediction
resumes where it stopped (the records of photographs already done are kept).

Every call opens its own connection (the worker thread and the request handlers share nothing
but the file); WAL journaling lets them read while another writes.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

JobStatus = Literal["queued", "running", "done", "failed"]
#: Statuses of a job that is not finished.
PENDING: tuple[JobStatus, ...] = ("queued", "running")

DATABASE_FILE = "jobs.sqlite"
JOBS_DIR = "jobs"
UPLOADS_DIR = "uploads"
OUT_DIR = "out"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS photos (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    uploaded_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (job_id, position)
);
"""


@dataclass(frozen=True)
class Photo:
    """A photograph of a job: ``name`` is the safe name it is stored and reported under,
    ``uploaded_name`` what the client called it (never used as a path)."""

    name: str
    uploaded_name: str
    size: int


@dataclass(frozen=True)
class Job:
    """A row of the job table with its photographs."""

    id: str
    status: JobStatus
    created: float
    started: float | None
    finished: float | None
    error: str | None
    photos: tuple[Photo, ...]


class JobStore:
    """The jobs of a server's data folder.

    Args:
        data_dir: the server's ``--data`` folder (created).
    """

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        (self.data_dir / JOBS_DIR).mkdir(parents=True, exist_ok=True)
        self.database = self.data_dir / DATABASE_FILE
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection whose changes are committed on leaving (rolled back on an error)."""
        with closing(sqlite3.connect(self.database, timeout=30)) as db:
            with db:
                yield db

    # ----------------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / JOBS_DIR / job_id

    def uploads_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / UPLOADS_DIR

    def out_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / OUT_DIR

    def new_job_id(self) -> str:
        """A fresh job id (32 hex digits); make its uploads folder, then :meth:`add`."""
        return uuid.uuid4().hex

    def add(self, job_id: str, photos: Sequence[Photo]) -> Job:
        """Queue a job whose photographs are already in :meth:`uploads_dir`."""
        created = time.time()
        with self._connection() as db:
            db.execute("INSERT INTO jobs (id, status, created) VALUES (?, 'queued', ?)", (job_id, created))
            db.executemany("INSERT INTO photos VALUES (?, ?, ?, ?, ?)",
                           [(job_id, i, p.name, p.uploaded_name, p.size) for i, p in enumerate(photos)])
        return Job(job_id, "queued", created, None, None, None, tuple(photos))

    def get(self, job_id: str) -> Job | None:
        with self._connection() as db:
            row = db.execute("SELECT id, status, created, started, finished, error FROM jobs WHERE id = ?",
                             (job_id,)).fetchone()
            if row is None:
                return None
            photos = db.execute("SELECT name, uploaded_name, size FROM photos WHERE job_id = ? ORDER BY position",
                                (job_id,)).fetchall()
        return Job(*row, photos=tuple(Photo(*photo) for photo in photos))

    def count_pending(self) -> int:
        """Jobs queued or running."""
        with self._connection() as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", PENDING).fetchone()[0])

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running and return it (None when none waits)."""
        with self._connection() as db:
            row = db.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created, rowid LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status = 'running', started = ? WHERE id = ?", (time.time(), row[0]))
        return self.get(row[0])

    def finish(self, job_id: str, error: str | None = None) -> None:
        """Mark a job done, or failed with ``error``."""
        with self._connection() as db:
            db.execute("UPDATE jobs SET status = ?, finished = ?, error = ? WHERE id = ?",
                       ("failed" if error else "done", time.time(), error, job_id))

    def recover(self) -> int:
        """After a restart: queue again the jobs that were running, and remove job folders
        that have no row (uploads cut short). Returns the number of jobs queued again."""
        with self._connection() as db:
            requeued = db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'").rowcount
            known = {row[0] for row in db.execute("SELECT id FROM jobs")}
        for folder in (self.data_dir / JOBS_DIR).iterdir():
            if folder.is_dir() and folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
        return int(requeued)
