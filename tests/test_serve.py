"""``funduskit serve``: the real server in a subprocess on a loopback port, spoken to over HTTP.

Tiny random networks answer (seconds per photograph); what is checked is the server: jobs and
their results, bad files answered one by one, hostile names and sizes, tokens, the bounded queue,
a kill and restart, a bounded load with flat memory, and the page driven in headless Chromium.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from browser_helpers import CHROMIUM, CHROMIUM_FLAGS, needs_chromium
from predict_helpers import make_models

from funduskit.tools.serve_load import ServerProcess, run_load, wait_for_job

SERVER_OPTIONS = ["--no-starter", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six small synthetic whole photographs (JPEG)."""
    from funduskit.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("photos") / "set"
    generate_dataset(root, 6, 0, scale=0.1)
    return sorted((root / "Images").iterdir())


def start_server(tmp: Path, models: Path, *extra: str, data: Path | None = None) -> ServerProcess:
    return ServerProcess(data or tmp / "data", ["--models", str(models), *SERVER_OPTIONS, *extra],
                         log=tmp / "server.log").start()


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("server")
    running = start_server(tmp, models, "--max-upload-mb", "2", "--max-queue", "8")
    yield running
    running.stop()


@pytest.fixture()
def client(server: ServerProcess):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def submit(client: httpx.Client, files: list[tuple[str, bytes]]) -> dict:
    answer = client.post("/api/v1/jobs", files=[("files", item) for item in files])
    assert answer.status_code == 202, answer.text
    return answer.json()


# --------------------------------------------------------------------------------------------
# Files a clinic might send by mistake, and worse
# --------------------------------------------------------------------------------------------

def png_bomb_header(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels (1.2 GB decoded), a few bytes long."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")


def encoded(image: np.ndarray, suffix: str) -> bytes:
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def bad_files(photo: Path) -> dict[str, bytes]:
    jpeg = photo.read_bytes()
    return {
        "notes.txt": b"not a photograph at all\n",
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "one-pixel.png": encoded(np.zeros((1, 1, 3), np.uint8), ".png"),
        "bomb.png": png_bomb_header(),
    }


def test_health_models_and_page(client: httpx.Client) -> None:
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["models_loaded"] is True
    listing = client.get("/api/v1/models").json()
    assert {entry["task"] for entry in listing["entries"]} == {"vessel", "disc", "cup", "fovea", "glaucoma"}
    assert all(entry["origin"] != "starter" for entry in listing["entries"])
    page = client.get("/")
    assert page.status_code == 200 and "Drop fundus photographs here" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # self-contained: works offline
    schema = client.get("/openapi.json").json()
    assert "/api/v1/jobs" in schema["paths"] and "/api/v1/jobs/{job_id}/download.zip" in schema["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200  # the UI's files are served here


def test_a_job_answers_good_photos_and_says_why_for_each_bad_file(
        client: httpx.Client, server: ServerProcess, photos: list[Path]) -> None:
    sixteen_bit = cv2.imread(str(photos[1])).astype(np.uint16) * 257
    files = [(photos[0].name, photos[0].read_bytes()), ("deep.png", encoded(sixteen_bit, ".png")),
             *bad_files(photos[0]).items()]
    job = submit(client, files)
    assert job["status"] in ("queued", "running") and len(job["photos"]) == len(files)
    done = wait_for_job(client, job["job_id"])
    assert done["status"] == "done"
    by_name = {photo["name"]: photo for photo in done["photos"]}
    for name in (photos[0].name, "deep.png"):  # a 16-bit PNG is read (its high byte), not refused
        assert by_name[name]["status"] == "done", by_name[name]
        result = by_name[name]["result"]
        assert 0 <= result["glaucoma_probability"] <= 1 and result["vcdr"] is not None
    expected_words = {"notes.txt": "not an image", "empty.jpg": "empty", "truncated.jpg": "",
                      "one-pixel.png": "1x1", "bomb.png": "megapixel"}
    for name, words in expected_words.items():
        photo = by_name[name]
        assert photo["status"] == "error" and photo["error"], photo
        assert words in photo["error"], photo["error"]
        assert str(server.data_dir) not in photo["error"]  # the server's folders are not told
    assert done["counts"] == {"waiting": 0, "predicting": 0, "done": 2, "error": 5}

    records = client.get(f"/api/v1/jobs/{job['job_id']}/results").json()
    assert [record["image_id"] for record in records] == list(by_name)
    assert {record["status"] for record in records} == {"ok", "error"}

    overlay = client.get(f"/api/v1/jobs/{job['job_id']}/photos/{photos[0].name}/overlay")
    assert overlay.headers["content-type"] == "image/png"
    mask = cv2.imdecode(np.frombuffer(client.get(
        f"/api/v1/jobs/{job['job_id']}/photos/{photos[0].name}/mask").content, np.uint8), cv2.IMREAD_GRAYSCALE)
    original = cv2.imread(str(photos[0]))
    assert mask.shape == original.shape[:2] and set(np.unique(mask)) <= {0, 128, 255}
    assert client.get(f"/api/v1/jobs/{job['job_id']}/photos/empty.jpg/overlay").status_code == 404

    table = client.get(f"/api/v1/jobs/{job['job_id']}/results.csv")
    assert table.headers["content-type"].startswith("text/csv")
    assert len(table.text.strip().splitlines()) == 1 + len(files) and str(server.data_dir) not in table.text
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/v1/jobs/{job['job_id']}/download.zip").content))
    names = set(archive.namelist())
    # (fovea_location_results.csv too when a fovea was found: the random tiny networks' are withheld)
    assert {"classification_results.csv", "results.csv", "results.json",
            "report.html", f"segmentation/{photos[0].stem}.png", f"overlays/{photos[0].stem}.png"} <= names
    assert json.loads(archive.read("results.json")) == records
    risks = archive.read("classification_results.csv").decode()
    assert photos[0].name in risks and "deep.png" in risks and "notes.txt" not in risks
    assert client.get("/api/v1/health").json()["status"] == "ok"  # still serving


def test_hostile_file_names_never_become_paths(client: httpx.Client, server: ServerProcess,
                                               photos: list[Path], tmp_path: Path) -> None:
    jpeg = photos[2].read_bytes()
    names = ["../../escape.jpg", "/tmp/absolute.jpg", "C:\\Windows\\win.jpg", "nul\x00byte.jpg", "x" * 900 + ".jpg",
             "..", ".hidden.jpg", "same.jpg", "same.jpg"]
    job = submit(client, [(name, jpeg) for name in names])
    stored = [photo["name"] for photo in job["photos"]]
    assert stored[:3] == ["escape.jpg", "absolute.jpg", "win.jpg"] and "\x00" not in stored[3]
    assert all(len(name) <= 100 and "/" not in name and not name.startswith(".") for name in stored)
    assert len({Path(name).stem for name in stored}) == len(stored)  # the two "same.jpg" kept apart
    assert [photo["uploaded_name"] for photo in job["photos"]][:2] == names[:2]  # kept as text
    done = wait_for_job(client, job["job_id"])
    assert all(photo["status"] == "done" for photo in done["photos"]), done["photos"]
    data = server.data_dir.resolve()
    for path in data.rglob("*"):
        assert path.resolve().is_relative_to(data)
    assert not (server.data_dir.parent.parent / "escape.jpg").exists() and not Path("/tmp/absolute.jpg").exists()
    assert client.get(f"/api/v1/jobs/{job['job_id']}/photos/..%2F..%2Fescape.jpg/overlay").status_code == 404
    too_long = client.post("/api/v1/jobs", files=[("files", ("x" * 20000 + ".jpg", jpeg))])  # past the parser's limit
    assert too_long.status_code == 400 and "cannot read the upload" in too_long.json()["detail"]


def raw_request(server: ServerProcess, head: bytes, body_chunks: list[bytes] = ()) -> bytes:
    """Send bytes on a socket and read the answer (what an HTTP client hides)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head)
        try:
            for chunk in body_chunks:
                connection.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before all was sent: what we want to see
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b"detail" in answer:
                break
    return answer


def test_a_request_over_the_limit_is_refused_before_it_is_read(server: ServerProcess) -> None:
    declared = raw_request(server, b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                                   b"boundary=b\r\nContent-Length: 60000000\r\n\r\n")  # no body sent at all
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    assert b"limit of 2 MB" in declared
    part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.jpg"\r\n\r\n'
    chunks = [part] + [b"x" * 65536] * 60  # 3.9 MB of a valid multipart body, no length declared
    chunked = raw_request(server, b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                                  b"boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n",
                          [b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks])
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    assert httpx.get(server.url + "/api/v1/health").status_code == 200


def test_wrong_requests_get_4xx_answers_without_tracebacks(client: httpx.Client) -> None:
    answers = [
        (client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef"), 404),
        (client.get("/api/v1/jobs/not-a-job"), 404),
        (client.get("/api/v1/jobs/../../etc/passwd"), 404),
        (client.delete("/api/v1/health"), 405),
        (client.put("/api/v1/jobs"), 405),
        (client.post("/api/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}), 400),
        (client.post("/api/v1/jobs", content=b"--b\r\nbroken", headers={"content-type": "multipart/form-data; boundary=b"}), 400),
        (client.post("/api/v1/jobs", files=[("other", ("a.jpg", b"x"))]), 400),
        (client.get("/api/v1/no-such-thing"), 404),
    ]
    for answer, status in answers:
        assert answer.status_code == status, (answer.request.url, answer.status_code, answer.text)
        assert "Traceback" not in answer.text and "detail" in answer.json()


def test_a_token_is_checked_on_every_api_call(models: Path, tmp_path: Path) -> None:
    refused = subprocess.run([sys.executable, "-m", "funduskit", "serve", "--models", str(models), "--host", "0.0.0.0",
                              "--data", str(tmp_path / "open")], capture_output=True, text=True, timeout=120,
                             env={**__import__("os").environ, "FUNDUSKIT_TOKEN": ""})
    assert refused.returncode == 2 and "--token" in refused.stderr
    guarded = ServerProcess(tmp_path / "data", ["--models", str(models), *SERVER_OPTIONS, "--token", "s3cret"],
                            log=tmp_path / "server.log").start()
    try:
        for path in ("/api/v1/health", "/api/v1/models", "/api/v1/jobs/0123456789abcdef0123456789abcdef"):
            assert httpx.get(guarded.url + path).status_code == 401
            assert httpx.get(guarded.url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(guarded.url + "/api/v1/jobs", files=[("files", ("a.jpg", b"x"))]).status_code == 401
        assert httpx.get(guarded.url + "/api/v1/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(guarded.url + "/").status_code == 200  # the page asks for the token itself
    finally:
        assert guarded.stop() == 0


def test_a_full_queue_answers_503_with_retry_after(models: Path, photos: list[Path], tmp_path: Path) -> None:
    busy = start_server(tmp_path, models, "--max-queue", "1")
    try:
        with httpx.Client(base_url=busy.url, timeout=60) as http:
            first = submit(http, [(f"p{i}.jpg", photos[i % len(photos)].read_bytes()) for i in range(12)])
            second = http.post("/api/v1/jobs", files=[("files", (photos[0].name, photos[0].read_bytes()))])
            assert second.status_code == 503 and int(second.headers["Retry-After"]) > 0
            assert "queue is full" in second.json()["detail"]
            assert wait_for_job(http, first["job_id"])["status"] == "done"
            assert http.post("/api/v1/jobs", files=[("files", (photos[0].name, photos[0].read_bytes()))]).status_code == 202
    finally:
        assert busy.stop() == 0
    assert "Stopped." in busy.log  # Ctrl-C stops it cleanly


def test_jobs_survive_a_killed_server(models: Path, photos: list[Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(tmp_path, models, data=data)
    with httpx.Client(base_url=first.url, timeout=60) as http:
        finished = wait_for_job(http, submit(http, [(photos[0].name, photos[0].read_bytes())])["job_id"])
        unfinished = submit(http, [(f"late{i}.jpg", photos[i % len(photos)].read_bytes()) for i in range(10)])
    first.kill()  # SIGKILL while the second job waits or runs
    second = start_server(tmp_path, models, data=data)
    try:
        with httpx.Client(base_url=second.url, timeout=60) as http:
            again = http.get(f"/api/v1/jobs/{finished['job_id']}").json()
            assert again["status"] == "done" and again["photos"] == finished["photos"]
            resumed = wait_for_job(http, unfinished["job_id"])
            assert resumed["status"] == "done" and resumed["counts"]["done"] == 10
    finally:
        assert second.stop() == 0


def test_four_clients_forty_photographs_all_answered_in_flat_memory(
        models: Path, photos: list[Path], tmp_path: Path) -> None:
    loaded = start_server(tmp_path, models, "--max-queue", "8")
    try:
        sent = [photos[i % len(photos)] for i in range(40)]
        warm_up = run_load(loaded, sent[:8], clients=4)
        settled = max(warm_up.memory_mb)
        result = run_load(loaded, sent, clients=4)
    finally:
        loaded.stop()
    assert result.errors == [] and warm_up.errors == []
    assert result.answered == 40 and result.failed == 0 and len(result.latencies_s) == 40
    # memory flat: 40 more photographs add little to what 8 left (tiny models: the figure is the server's own)
    assert max(result.memory_mb) < settled + 60, (settled, max(result.memory_mb))


# --------------------------------------------------------------------------------------------
# The page, in a real browser
# --------------------------------------------------------------------------------------------

@needs_chromium
def test_the_page_uploads_a_photograph_and_shows_the_api_numbers(
        server: ServerProcess, photos: list[Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    bad = tmp_path / "notes.txt"
    bad.write_text("not a photograph")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/")
            page.wait_for_selector("#models:not(:has-text('loading'))")
            assert "Models:" in page.inner_text("#models")
            page.set_input_files("#files", [str(photos[3]), str(bad)])
            row = page.wait_for_selector(f'#results tr[data-name="{photos[3].name}"] td[data-key="status"]:text("done")',
                                         timeout=120_000)
            assert row is not None
            page.wait_for_selector('#results tr[data-name="notes.txt"] td[data-key="status"]:text-matches("error")')
            page.wait_for_selector(f'.card[data-name="{photos[3].name}"] img.overlay')
            page.wait_for_selector("#downloads a")
            shown = {key: page.inner_text(f'#results tr[data-name="{photos[3].name}"] td[data-key="{key}"]')
                     for key in ("glaucoma_probability", "vcdr", "hcdr", "fovea_x", "fovea_y")}
            error_text = page.inner_text('.card[data-name="notes.txt"] .status')
            page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
        finally:
            browser.close()
    jobs = sorted((server.data_dir / "jobs").iterdir(), key=lambda p: p.stat().st_mtime)
    with httpx.Client(base_url=server.url) as http:
        record = next(r for r in http.get(f"/api/v1/jobs/{jobs[-1].name}/results").json() if r["image_id"] == photos[3].name)
    digits = {"glaucoma_probability": 3, "vcdr": 3, "hcdr": 3, "fovea_x": 1, "fovea_y": 1}
    expected = {key: "—" if record[key] is None else f"{record[key]:.{n}f}" for key, n in digits.items()}
    assert shown == expected
    assert "not an image" in error_text
    assert (tmp_path / "serve.png").stat().st_size > 10_000
