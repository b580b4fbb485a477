"""POST /api/v1/diagrams: every accepted format, names, symbols, auto_run, and every refusal.

Each refused upload must change nothing: no rows, no stored files, no queued messages.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import redis
from api_support import (
    API,
    MAX_PAGES,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    NothingChanges,
    Upload,
    assert_error,
    bomb_png_header,
    chunked,
    coco,
    jpeg_bytes,
    multipart,
    noisy_png,
    pdf_bytes,
    png_bytes,
    queued_task_ids,
    raw_exchange,
    request_head,
    tiff_bytes,
)

from pid.api.files import MAX_FILENAME_LENGTH

# ---- accepted uploads ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "data", "pages"),
    [
        ("sheet.png", png_bytes(), 1),
        ("photo.jpg", jpeg_bytes(), 1),
        ("scan.tiff", tiff_bytes(2), 2),
        ("plan.pdf", pdf_bytes(2), 2),
    ],
)
def test_each_page_becomes_a_diagram_with_its_original(
    upload: Upload,
    client: httpx.Client,
    data_dir: Path,
    filename: str,
    data: bytes,
    pages: int,
) -> None:
    response = upload(data=data, filename=filename)

    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["uids"]) == pages
    assert [d["page"] for d in body["diagrams"]] == list(range(1, pages + 1))
    for uid, summary in zip(body["uids"], body["diagrams"], strict=True):
        assert summary["uid"] == uid
        assert summary["status"] == "uploaded"
        assert (summary["width"], summary["height"]) == (96, 64)
        assert summary["page_count"] == pages
        assert summary["original_name"] == filename
        assert (data_dir / "diagrams" / uid / "original.png").is_file()
        detail = client.get(f"{API}/diagrams/{uid}").json()
        assert [a["name"] for a in detail["artifacts"]] == ["original.png"]
        assert detail["stage_runs"] == []


def test_a_drawing_with_its_symbols_skips_nothing_else(
    upload: Upload, client: httpx.Client, data_dir: Path
) -> None:
    response = upload(symbols=coco(96, 64, [[10, 10, 20, 12], [50, 30, 8, 8]]))

    assert response.status_code == 201, response.text
    uid = response.json()["uids"][0]
    detail = client.get(f"{API}/diagrams/{uid}").json()
    assert detail["has_symbols"] is True
    assert {a["name"] for a in detail["artifacts"]} == {"original.png", "symbols.json"}
    stored = json.loads((data_dir / "diagrams" / uid / "symbols.json").read_bytes())
    assert [a["bbox"] for a in stored["annotations"]] == [[10, 10, 20, 12], [50, 30, 8, 8]]


def test_auto_run_queues_the_chain_after_the_upload(
    upload: Upload, client: httpx.Client, broker: redis.Redis
) -> None:
    response = upload(auto_run=True)

    assert response.status_code == 201, response.text
    uid = response.json()["uids"][0]
    runs = client.get(f"{API}/diagrams/{uid}").json()["stage_runs"]
    assert [r["stage"] for r in runs][:1] == ["detect"]
    assert all(r["state"] == "queued" and r["task_id"] for r in runs)
    # The chain travels as one message: the first stage's, in its own queue.
    assert runs[0]["task_id"] in queued_task_ids(broker)["gpu"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("C:\\Users\\me\\Desktop\\plan.png", "plan.png"),
        ("../../etc/passwd", "passwd"),
        ("pl\x07an\x1b[31m.png", "plan[31m.png"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("   ", "upload"),
        ("..", "upload"),
        ("x" * 1000 + ".png", "x" * (MAX_FILENAME_LENGTH - 4) + ".png"),
    ],
)
def test_the_file_name_is_sanitised_before_it_is_recorded(
    client: httpx.Client, sent: str, kept: str
) -> None:
    body, content_type = multipart([("file", sent, png_bytes())])

    response = client.post(f"{API}/diagrams", content=body, headers={"Content-Type": content_type})

    assert response.status_code == 201, response.text
    assert response.json()["diagrams"][0]["original_name"] == kept


# ---- refused uploads -----------------------------------------------------------------------------


def _truncated_png() -> bytes:
    data = png_bytes(200, 150)
    return data[: len(data) * 2 // 3]


@pytest.mark.parametrize(
    ("data", "status", "phrase"),
    [
        (b"just some text, not a drawing", 400, "not a PNG, JPEG, TIFF or PDF"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 8, 400, "corrupt PNG"),
        (_truncated_png(), 400, "truncated"),
        (b"", 400, "empty file"),
        (pdf_bytes(MAX_PAGES + 1), 400, f"more than the limit of {MAX_PAGES}"),
        (tiff_bytes(MAX_PAGES + 1), 400, f"more than the limit of {MAX_PAGES} pages"),
    ],
    ids=["not-an-image", "corrupt", "truncated", "empty", "pdf-pages", "tiff-pages"],
)
def test_an_unusable_drawing_is_refused_and_changes_nothing(
    upload: Upload, nothing_changes: NothingChanges, data: bytes, status: int, phrase: str
) -> None:
    with nothing_changes():
        response = upload(data=data, filename="bad.png", auto_run=True)

    assert_error(response, status, "bad.png", phrase)


def test_a_decompression_bomb_is_refused_from_its_header(
    upload: Upload, nothing_changes: NothingChanges
) -> None:
    # 60000 x 60000 px would take 3.6 GB decoded; the file itself is about 100 bytes.
    bomb = bomb_png_header(60_000, 60_000)
    assert len(bomb) < 1024

    with nothing_changes():
        started = time.monotonic()
        response = upload(data=bomb, filename="bomb.png")
        elapsed = time.monotonic() - started

    assert_error(response, 400, f"60000x60000 px is more than the limit of {MAX_PIXELS} px")
    assert elapsed < 2.0, "the image was decoded before its size was checked"


@pytest.mark.parametrize(
    ("symbols", "phrase"),
    [
        (coco(96, 64, [[80, 50, 30, 30]]), "annotations[0]"),
        (coco(96, 64, [[10, 10, 0, 5]]), "width and height must be > 0"),
        (coco(200, 100, [[10, 10, 5, 5]]), "does not match the 96x64 image"),
        (b"{not json", "not valid JSON"),
    ],
    ids=["box-outside", "empty-box", "other-image-size", "malformed-json"],
)
def test_symbols_that_do_not_fit_the_drawing_are_refused(
    upload: Upload, nothing_changes: NothingChanges, symbols: bytes, phrase: str
) -> None:
    with nothing_changes():
        response = upload(symbols=symbols)

    assert_error(response, 400, "symbols", phrase)


def test_symbols_for_a_multi_page_drawing_are_refused(
    upload: Upload, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = upload(data=pdf_bytes(2), filename="two.pdf", symbols=coco(96, 64, []))

    assert_error(response, 400, "one-page drawing")


def test_a_form_without_the_file_is_a_validation_error(
    client: httpx.Client, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post(f"{API}/diagrams", data={"auto_run": "true"})

    assert_error(response, 422, "body.file: Field required")
    assert response.json()["errors"] == [
        {"loc": ["body", "file"], "msg": "Field required", "type": "missing"}
    ]


def test_auto_run_must_be_a_boolean(upload: Upload, nothing_changes: NothingChanges) -> None:
    with nothing_changes():
        response = upload(auto_run="perhaps")

    assert_error(response, 422, "body.auto_run")


def test_a_form_with_extra_files_is_refused(
    client: httpx.Client, nothing_changes: NothingChanges
) -> None:
    files = [("file", ("a.png", png_bytes())), ("symbols", ("s.json", b"{}"))]
    files.append(("extra", ("b.png", png_bytes())))

    with nothing_changes():
        response = client.post(f"{API}/diagrams", files=files)

    assert_error(response, 400, "Too many files")


# ---- the body limit ------------------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    base_url: str, nothing_changes: NothingChanges
) -> None:
    # Only the head is sent: a server that waited for the announced 10 GB would time out.
    head = request_head(
        "POST",
        f"{API}/diagrams",
        {
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(10 * 2**30),
        },
    )

    with nothing_changes():
        response = raw_exchange(base_url, head)

    assert response.status == 413
    assert response.json() == {
        "detail": f"request body is more than the limit of {MAX_UPLOAD_BYTES} bytes"
    }


def test_a_chunked_body_is_cut_off_at_the_limit(
    base_url: str, nothing_changes: NothingChanges
) -> None:
    # A multipart upload without a Content-Length whose file runs past the limit; the final
    # chunk never comes, so only a server that counts while reading can answer.
    opening, _ = multipart([("file", "big.png", b"")])
    start = opening[: opening.index(b"\r\n--pidtestboundary--")]
    body = start + png_bytes() + b"\x00" * MAX_UPLOAD_BYTES
    head = request_head(
        "POST",
        f"{API}/diagrams",
        {
            "Content-Type": "multipart/form-data; boundary=pidtestboundary",
            "Transfer-Encoding": "chunked",
        },
    )

    with nothing_changes():
        response = raw_exchange(base_url, head, chunked(body, 16 * 1024))

    assert response.status == 413
    assert response.json()["detail"] == (
        f"request body is more than the limit of {MAX_UPLOAD_BYTES} bytes"
    )


def test_a_body_just_within_the_limit_is_accepted(upload: Upload) -> None:
    data = noisy_png(500, 400)
    assert MAX_UPLOAD_BYTES // 2 < len(data) < MAX_UPLOAD_BYTES - 1024

    response = upload(data=data, filename="noisy.png")

    assert response.status_code == 201, response.text
    assert response.json()["diagrams"][0]["width"] == 500
