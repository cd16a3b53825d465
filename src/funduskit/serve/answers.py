"""What the API says about a job and its photographs, and the job's ZIP download.

A photograph's result is its ``funduskit predict`` record (the fields of ``results.json``,
:class:`funduskit.inference.results.ImageResult`), with the server's own paths taken out: the
photograph is named by its safe name, and an error names the file, not the folder it sits in.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Literal

from funduskit.inference.report import REPORT_FILE
from funduskit.inference.results import (
    OVERLAYS_DIR,
    RESULTS_CSV,
    RESULTS_JSON,
    VESSELS_DIR,
    ImageResult,
    load_result,
)
from funduskit.scoring.submission import (
    CLASSIFICATION_FILE,
    FOVEA_FILE,
    SEGMENTATION_DIR,
)
from funduskit.serve.jobs import Job, JobStore

PhotoStatus = Literal["waiting", "predicting", "done", "error"]
#: The images of a photograph the API serves: name -> the record's field holding its file.
PHOTO_IMAGES: dict[str, str] = {"overlay": "overlay_file", "mask": "mask_file", "vessels": "vessel_file"}
#: What the ZIP download holds: the REFUGE2 submission, the overlays, vessel maps and tables, the report.
ZIP_FILES = (CLASSIFICATION_FILE, FOVEA_FILE, RESULTS_CSV, REPORT_FILE)
ZIP_FOLDERS = (SEGMENTATION_DIR, OVERLAYS_DIR, VESSELS_DIR)
ZIP_FILE = "download.zip"


def public_record(result: ImageResult, uploads_dir: Path) -> dict[str, Any]:
    """The record of a photograph as the API gives it (``image_path`` is the safe name)."""
    record = result.as_dict()
    record["image_path"] = result.image_id
    if result.error:
        record["error"] = without_folder(result.error, uploads_dir)
    return record


def without_folder(text: str, folder: Path) -> str:
    """``text`` with the server's ``folder`` taken out of the paths in it (errors name files by name)."""
    return text.replace(f"{folder}/", "").replace(str(folder), "")


def public_file(store: JobStore, job: Job, name: str) -> bytes:
    """A text file of a job's output folder (``results.csv``, ``report.html``) without the server's paths."""
    text = (store.out_dir(job.id) / name).read_text(encoding="utf-8")
    return without_folder(text, store.uploads_dir(job.id)).encode("utf-8")


def photo_answers(store: JobStore, job: Job) -> list[dict[str, Any]]:
    """Each photograph of a job: its name, the client's name for it, status, error and result."""
    out_dir, uploads = store.out_dir(job.id), store.uploads_dir(job.id)
    answers = []
    for photo in job.photos:
        result = load_result(out_dir, photo.name) if job.status != "queued" else None
        status: PhotoStatus
        if result is not None:
            status = "done" if result.ok else "error"
        elif job.status in ("queued", "running"):
            status = "waiting" if job.status == "queued" else "predicting"
        else:
            status = "error"
        record = public_record(result, uploads) if result is not None else None
        error = record["error"] if record else (job.error if status == "error" else None)
        answers.append({"name": photo.name, "uploaded_name": photo.uploaded_name, "size": photo.size,
                        "status": status, "error": error, "result": record})
    return answers


def job_answer(store: JobStore, job: Job, base: str) -> dict[str, Any]:
    """The JSON of ``GET /api/v1/jobs/{id}``; ``base`` is the API's root path (``/api/v1``)."""
    photos = photo_answers(store, job)
    counts = {status: sum(photo["status"] == status for photo in photos)
              for status in ("waiting", "predicting", "done", "error")}
    finished = job.status in ("done", "failed")
    return {
        "job_id": job.id,
        "status": job.status,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "error": job.error,
        "counts": counts,
        "photos": photos,
        "links": {
            "self": f"{base}/jobs/{job.id}",
            "results": f"{base}/jobs/{job.id}/results",
            **({"csv": f"{base}/jobs/{job.id}/results.csv", "zip": f"{base}/jobs/{job.id}/download.zip"}
               if finished else {}),
        },
    }


def job_zip(store: JobStore, job: Job) -> Path:
    """The ZIP of a finished job (written once, then kept): the REFUGE2 submission files
    (``classification_results.csv``, ``fovea_location_results.csv``, ``segmentation/``), the
    overlays and vessel maps, ``results.csv``, ``results.json`` (the API's records) and
    ``report.html``."""
    path = store.job_dir(job.id) / ZIP_FILE
    if path.is_file():
        return path
    out_dir = store.out_dir(job.id)
    records = [answer["result"] for answer in photo_answers(store, job) if answer["result"] is not None]
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as part:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in ZIP_FILES:
                if (out_dir / name).is_file():
                    archive.writestr(name, public_file(store, job, name))
            for folder in ZIP_FOLDERS:
                for file in sorted((out_dir / folder).glob("*")) if (out_dir / folder).is_dir() else []:
                    archive.write(file, f"{folder}/{file.name}", compress_type=zipfile.ZIP_STORED)  # PNG: packed
            archive.writestr(RESULTS_JSON, json.dumps(records, indent=1) + "\n")
    os.replace(part.name, path)
    return path
