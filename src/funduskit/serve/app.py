"""The FastAPI application of ``funduskit serve``: the page at ``/`` and the API at ``/api/v1``.

=======  ===================================================  ==================================
method   path                                                 answer
=======  ===================================================  ==================================
GET      ``/``                                                the page (self-contained HTML)
GET      ``/api/v1/health``                                   status, models loaded, queue
GET      ``/api/v1/models``                                   the models answering each task
POST     ``/api/v1/jobs``                                     multipart ``files``: 202 + the job
GET      ``/api/v1/jobs/{id}``                                the job, each photograph's status
GET      ``/api/v1/jobs/{id}/results``                        the records (``results.json``)
GET      ``/api/v1/jobs/{id}/results.csv``                    ``results.csv``
GET      ``/api/v1/jobs/{id}/download.zip``                   submission, overlays, report
GET      ``/api/v1/jobs/{id}/photos/{name}/{image}``          overlay, mask or vessels PNG
GET      ``/openapi.json``, ``/docs``                         the API's OpenAPI document and UI
=======  ===================================================  ==================================

With a token (``--token``), every ``/api/v1`` call must carry ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from funduskit import __version__
from funduskit.inference.model_catalogue import describe_runs
from funduskit.inference.pipeline import PredictEngine, models_text, starter_notice
from funduskit.inference.results import RESULTS_CSV, load_result
from funduskit.serve.answers import (
    PHOTO_IMAGES,
    job_answer,
    job_zip,
    photo_answers,
    public_file,
)
from funduskit.serve.jobs import Job, JobStore, Photo
from funduskit.serve.limits import BodySizeLimit
from funduskit.serve.settings import ServeSettings
from funduskit.serve.uploads import unique_names
from funduskit.serve.worker import JobWorker

API = "/api/v1"
#: Seconds a client is asked to wait (Retry-After) when the queue is full.
RETRY_AFTER_S = 10
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                     "description": "the photographs (JPEG, PNG, TIFF, BMP, ...)"}},
        }}},
    },
}


def create_app(settings: ServeSettings, engine: PredictEngine) -> Any:
    """The ASGI application (FastAPI inside the request-size limit).

    Args:
        settings: the server's settings (checked: :meth:`ServeSettings.check`).
        engine: the models, loaded (:meth:`PredictEngine.load`) or loaded by the first job.
    """
    settings.check()
    store = JobStore(settings.data_dir)
    worker = JobWorker(store, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.recover()
        worker.start()
        yield
        worker.stop()

    app = FastAPI(title="funduskit", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Glaucoma assessment from colour fundus photographs: submit photographs, poll the "
                              "job, fetch each photograph's results and images. See docs/serve.md.")
    app.state.store, app.state.worker, app.state.engine = store, worker, engine
    router = APIRouter(prefix=API, dependencies=[Depends(_token_check(settings.token))])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html = resources.files("funduskit.serve").joinpath("page/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    _add_docs(app)

    @router.get("/health", summary="Is the server up, are the models loaded, how long is the queue")
    def health() -> dict[str, Any]:
        return {"status": "ok" if worker.alive else "worker stopped", "funduskit": __version__,
                "models_loaded": engine.loaded, "pending_jobs": store.count_pending(),
                "max_pending_jobs": settings.max_queued_jobs}

    @router.get("/models", summary="The models that answer each task")
    def models() -> dict[str, Any]:
        entries = describe_runs(engine.models.runs, engine.models.origin)
        return {"funduskit": __version__, "models": models_text(engine.models), "notice": starter_notice(engine.models),
                "runtime": engine.runtime_text, "thresholds": engine.models.thresholds.as_dict(),
                "quality_gate": engine.options.quality, "entries": [asdict(entry) for entry in entries]}

    @router.post("/jobs", status_code=202, openapi_extra=_UPLOAD_SCHEMA,
                 summary="Submit photographs (multipart field 'files'); answers 202 with the job")
    async def submit(request: Request) -> JSONResponse:
        _refuse_when_full(store, settings)
        try:
            form = await request.form(max_files=settings.max_files, max_fields=settings.max_files + 10)
        except StarletteHTTPException as error:  # Starlette's answer to a malformed or oversized form
            raise HTTPException(400, f"cannot read the upload ({error.detail}): send multipart/form-data with "
                                     f"at most {settings.max_files} files in the field 'files'") from None
        try:
            uploads = [value for key, value in form.multi_items() if key == "files" and isinstance(value, UploadFile)]
            if not uploads:
                raise HTTPException(400, "no photographs: send them as multipart/form-data in the field 'files'")
            job_id = store.new_job_id()
            photos = await asyncio.to_thread(_save_uploads, store.uploads_dir(job_id), uploads)
        finally:
            await form.close()
        try:
            _refuse_when_full(store, settings)
        except HTTPException:
            shutil.rmtree(store.job_dir(job_id), ignore_errors=True)
            raise
        job = store.add(job_id, photos)
        worker.notify()
        return JSONResponse(job_answer(store, job, API), status_code=202,
                            headers={"Location": f"{API}/jobs/{job.id}"})

    @router.get("/jobs/{job_id}", summary="A job: its status and each photograph's status and result")
    def job(job_id: str) -> dict[str, Any]:
        return job_answer(store, _job(store, job_id), API)

    @router.get("/jobs/{job_id}/results", summary="The records of the photographs done (results.json)")
    def results(job_id: str) -> list[dict[str, Any]]:
        return [answer["result"] for answer in photo_answers(store, _job(store, job_id)) if answer["result"]]

    @router.get("/jobs/{job_id}/results.csv", summary="results.csv of a finished job")
    def results_csv(job_id: str) -> Response:
        job = _finished_job(store, job_id)
        if not (store.out_dir(job.id) / RESULTS_CSV).is_file():
            raise HTTPException(404, f"job {job_id} has no results table (its error: {job.error})")
        return Response(public_file(store, job, RESULTS_CSV), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="funduskit-{job.id[:8]}.csv"'})

    @router.get("/jobs/{job_id}/download.zip", summary="The REFUGE2 submission, overlays, vessel maps and report")
    def download(job_id: str) -> FileResponse:
        job = _finished_job(store, job_id)
        return FileResponse(job_zip(store, job), media_type="application/zip", filename=f"funduskit-{job.id[:8]}.zip")

    @router.get("/jobs/{job_id}/photos/{name}/{image}", summary="A photograph's overlay, mask or vessel map (PNG)")
    def photo_image(job_id: str, name: str, image: str) -> FileResponse:
        job = _job(store, job_id)
        if image not in PHOTO_IMAGES:
            raise HTTPException(404, f"no image {image!r}: ask for one of {', '.join(PHOTO_IMAGES)}")
        if name not in {photo.name for photo in job.photos}:
            raise HTTPException(404, f"job {job_id} has no photograph {name!r}")
        result = load_result(store.out_dir(job.id), name)
        relative = getattr(result, PHOTO_IMAGES[image]) if result is not None else None
        path = store.out_dir(job.id) / relative if relative else None  # a path the pipeline wrote, never the URL's
        if path is None or not path.is_file():
            raise HTTPException(404, f"{name} has no {image} ({'not predicted yet' if result is None else result.status})")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    app.include_router(router)
    return BodySizeLimit(app, settings.max_upload_bytes)


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the files of the ``swagger-ui-bundle`` package (offline)."""
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="funduskit API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def _token_check(token: str | None) -> Any:
    """The dependency that checks ``Authorization: Bearer TOKEN`` on every API call (none without a token)."""

    def check(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.encode(), token.encode()):
            raise HTTPException(401, "this server needs its access token: send 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def _refuse_when_full(store: JobStore, settings: ServeSettings) -> None:
    if store.count_pending() >= settings.max_queued_jobs:
        raise HTTPException(503, f"the queue is full ({settings.max_queued_jobs} jobs waiting or running): try again "
                                 f"in {RETRY_AFTER_S} s", headers={"Retry-After": str(RETRY_AFTER_S)})


def _job(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id) if _JOB_ID.match(job_id) else None
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} on this server")
    return job


def _finished_job(store: JobStore, job_id: str) -> Job:
    job = _job(store, job_id)
    if job.status not in ("done", "failed"):
        raise HTTPException(409, f"job {job_id} is {job.status}: wait until it is done")
    return job


def _save_uploads(folder: Path, uploads: list[UploadFile]) -> list[Photo]:
    """Copy the uploaded files into ``folder`` under safe, unique names."""
    folder.mkdir(parents=True)
    photos = []
    for name, upload in zip(unique_names(upload.filename for upload in uploads), uploads, strict=True):
        upload.file.seek(0)
        with open(folder / name, "wb") as target:
            shutil.copyfileobj(upload.file, target, length=1 << 20)
        uploaded = (upload.filename or "").replace("\x00", "")[:1000]
        photos.append(Photo(name, uploaded, (folder / name).stat().st_size))
    return photos
