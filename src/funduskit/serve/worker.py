"""The worker: one thread that predicts the queued jobs, oldest first, with the models loaded once.

The queue is the job table itself (:class:`.jobs.JobStore`): what is queued survives a restart,
and its length is bounded where jobs are accepted (:mod:`.app` answers 503 past the limit). One
job runs at a time, so memory is that of one prediction whatever the number of clients.
"""

from __future__ import annotations

import logging
import threading

from funduskit.inference.pipeline import PredictEngine
from funduskit.serve.jobs import Job, JobStore

log = logging.getLogger("funduskit.serve")


class JobWorker:
    """Predicts queued jobs in a daemon thread until :meth:`stop`.

    Args:
        store: the job database.
        engine: the loaded models and prediction options.
    """

    def __init__(self, store: JobStore, engine: PredictEngine):
        self.store = store
        self.engine = engine
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="funduskit-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop once its current job is done; wait up to ``timeout`` s. A job cut
        short (the process ends first) stays ``running`` and is queued again at the next start."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            self._predict(job)

    def _predict(self, job: Job) -> None:
        uploads = self.store.uploads_dir(job.id)
        try:
            self.engine.predict([uploads / photo.name for photo in job.photos], self.store.out_dir(job.id),
                                progress=False)
        except Exception as error:
            log.exception("job %s failed", job.id)
            self.store.finish(job.id, error=f"{type(error).__name__}: {error}".replace(str(uploads) + "/", ""))
        else:
            self.store.finish(job.id)
