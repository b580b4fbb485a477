"""Everything after the upload: list, detail, artifacts, runs, cancel, delete, a person's
corrections, review gates and task states.

Stages never run here (no worker consumes the test broker); where a route needs what a stage
would have written, the test stores it through the storage and repository layers first.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import redis
from api_support import (
    API,
    MAX_UPLOAD_BYTES,
    NothingChanges,
    Upload,
    app_with_test_broker,
    assert_error,
    chunked,
    closed_port,
    coco,
    mask_bytes,
    png_bytes,
    queued_task_ids,
    raw_exchange,
    request_head,
    row_counts,
    serve,
    set_status,
    store_artifacts,
)
from celery import Celery

from pid.api.app import create_app
from pid.core.statuses import DiagramStatus
from pid.pipeline.stages import CHAIN
from pid.settings import Settings

UNKNOWN = "00000000-0000-4000-8000-000000000000"

#: A graph in graph.json's schema: a valve joined to a pipe end.
VALID_GRAPH = {
    "directed": False,
    "multigraph": True,
    "graph": {"width": 96, "height": 64},
    "nodes": [
        {"id": "s0", "kind": "symbol", "class": "gate_valve", "bbox": [10, 10, 30, 22]},
        {"id": "e0", "kind": "endpoint", "point": [80, 16]},
    ],
    "edges": [
        {
            "source": "s0",
            "target": "e0",
            "key": 0,
            "polyline": [[30, 16], [80, 16]],
            "length": 50.0,
            "line_type": "solid",
        }
    ],
}


def detail(client: httpx.Client, uid: str) -> dict[str, Any]:
    response = client.get(f"{API}/diagrams/{uid}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def run(client: httpx.Client, uid: str, body: Any = None) -> httpx.Response:
    return client.post(f"{API}/diagrams/{uid}/run", json=body)


# ---- list and detail -----------------------------------------------------------------------------


def test_the_list_pages_through_every_diagram_newest_first(
    client: httpx.Client, upload: Upload, settings: Settings
) -> None:
    for name in ("a.png", "b.png", "c.png"):
        assert upload(filename=name).status_code == 201

    first = client.get(f"{API}/diagrams", params={"limit": 2}).json()
    second = client.get(f"{API}/diagrams", params={"limit": 2, "offset": 2}).json()

    total = row_counts(settings.database_url)["diagrams"]
    assert first["total"] == second["total"] == total
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
    assert [d["original_name"] for d in first["items"]] == ["c.png", "b.png"]
    assert second["items"][0]["original_name"] == "a.png"
    assert not {d["uid"] for d in first["items"]} & {d["uid"] for d in second["items"]}


def test_the_list_filters_by_status(client: httpx.Client, diagram: str) -> None:
    assert client.post(f"{API}/diagrams/{diagram}/cancel").status_code == 200

    page = client.get(f"{API}/diagrams", params={"status": "cancelled", "limit": 200}).json()

    assert diagram in {d["uid"] for d in page["items"]}
    assert {d["status"] for d in page["items"]} == {"cancelled"}
    assert page["total"] == len(page["items"])


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ({"status": "finished"}, "query.status: Input should be 'uploaded'"),
        ({"limit": 0}, "query.limit: Input should be greater than or equal to 1"),
        ({"limit": 1000}, "query.limit: Input should be less than or equal to 200"),
        ({"offset": -1}, "query.offset"),
        ({"limit": "ten"}, "query.limit: Input should be a valid integer"),
    ],
)
def test_bad_list_parameters_are_validation_errors(
    client: httpx.Client, params: dict[str, Any], phrase: str
) -> None:
    assert_error(client.get(f"{API}/diagrams", params=params), 422, phrase)


def test_the_detail_has_every_stage_run_and_artifact(client: httpx.Client, upload: Upload) -> None:
    uid = upload(symbols=coco(96, 64, [[10, 10, 20, 12]]), auto_run=True).json()["uids"][0]

    body = detail(client, uid)

    assert body["uid"] == uid
    assert body["status"] == "uploaded"
    assert (body["error_stage"], body["error_message"]) == (None, None)
    assert [r["stage"] for r in body["stage_runs"]] == list(CHAIN)
    for stage_run in body["stage_runs"]:
        assert stage_run["state"] == "queued"
        assert stage_run["attempt"] == 0
        assert stage_run["queued_at"] is not None
        assert uuid.UUID(stage_run["task_id"])
        for later in ("started_at", "finished_at", "duration_s", "error", "provenance"):
            assert stage_run[later] is None
    names = [a["name"] for a in body["artifacts"]]
    assert names == ["original.png", "symbols.json"]
    for artifact in body["artifacts"]:
        assert artifact["url"].endswith(f"/api/v1/diagrams/{uid}/artifacts/{artifact['name']}")
        assert len(artifact["sha256"]) == 64
        assert artifact["size"] > 0


# ---- artifacts -----------------------------------------------------------------------------------


def test_an_artifact_streams_with_its_type_length_and_digest(
    client: httpx.Client, upload: Upload, data_dir: Path
) -> None:
    uid = upload(symbols=coco(96, 64, [[10, 10, 20, 12]])).json()["uids"][0]
    listed = {a["name"]: a for a in detail(client, uid)["artifacts"]}

    for name, media_type in [("original.png", "image/png"), ("symbols.json", "application/json")]:
        response = client.get(listed[name]["url"])

        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert int(response.headers["content-length"]) == listed[name]["size"]
        assert response.headers["etag"] == f'"{listed[name]["sha256"]}"'
        assert hashlib.sha256(response.content).hexdigest() == listed[name]["sha256"]
        assert response.content == (data_dir / "diagrams" / uid / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "phrase"),
    [("graph.json", "has no artifact 'graph.json'"), ("nothing.bin", "has no artifact")],
)
def test_an_artifact_not_stored_is_not_found(
    client: httpx.Client, diagram: str, name: str, phrase: str
) -> None:
    response = client.get(f"{API}/diagrams/{diagram}/artifacts/{name}")

    assert_error(response, 404, phrase)


def test_an_artifact_whose_file_is_gone_is_not_found(
    client: httpx.Client, diagram: str, data_dir: Path
) -> None:
    (data_dir / "diagrams" / diagram / "original.png").unlink()

    response = client.get(f"{API}/diagrams/{diagram}/artifacts/original.png")

    assert_error(response, 404, "the artifact's file is not in storage")


# ---- unknown and malformed uids ----------------------------------------------------------------


ROUTES = [
    ("GET", ""),
    ("DELETE", ""),
    ("POST", "/run"),
    ("POST", "/cancel"),
    ("GET", "/artifacts/original.png"),
    ("PUT", "/pipe_mask"),
    ("PUT", "/graph"),
    ("POST", "/review/accept"),
]


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
def test_an_unknown_uid_is_not_found(
    client: httpx.Client, nothing_changes: NothingChanges, method: str, suffix: str
) -> None:
    body = {"/pipe_mask": mask_bytes(96, 64), "/graph": json.dumps(VALID_GRAPH).encode()}
    with nothing_changes():
        response = client.request(
            method, f"{API}/diagrams/{UNKNOWN}{suffix}", content=body.get(suffix)
        )

    assert_error(response, 404, UNKNOWN)


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
def test_a_malformed_uid_is_a_validation_error(
    client: httpx.Client, method: str, suffix: str
) -> None:
    response = client.request(method, f"{API}/diagrams/not-a-uid{suffix}")

    assert_error(response, 422, "path.uid: Input should be a valid UUID")


# ---- runs ----------------------------------------------------------------------------------------


def test_a_run_queues_the_chain_and_a_second_one_conflicts(
    client: httpx.Client, diagram: str, broker: redis.Redis, nothing_changes: NothingChanges
) -> None:
    response = run(client, diagram)

    assert response.status_code == 202, response.text
    task_ids = response.json()["task_ids"]
    assert response.json()["uid"] == diagram
    assert len(task_ids) == len(CHAIN)
    assert [r["task_id"] for r in detail(client, diagram)["stage_runs"]] == task_ids
    assert task_ids[0] in queued_task_ids(broker)["gpu"]

    with nothing_changes():
        again = run(client, diagram, {"from_stage": "detect"})

    assert_error(again, 409, "already running (detect, cvat_upload")


def test_a_run_between_two_stages_queues_only_those(client: httpx.Client, diagram: str) -> None:
    response = run(client, diagram, {"from_stage": "detect", "to_stage": "cvat_fetch"})

    assert response.status_code == 202, response.text
    assert len(response.json()["task_ids"]) == 3
    stages = [r["stage"] for r in detail(client, diagram)["stage_runs"]]
    assert stages == ["detect", "cvat_upload", "cvat_fetch"]


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        ({"from_stage": "bogus"}, 422, "body.from_stage: Value error, unknown stage 'bogus'"),
        ({"to_stage": "paint"}, 422, "body.to_stage: Value error, unknown stage 'paint'"),
        ({"from_stage": "detect", "colour": "red"}, 422, "body.colour: Extra inputs"),
        ({"from_stage": "export", "to_stage": "detect"}, 400, "'export' comes after 'detect'"),
        ({"from_stage": "classify"}, 400, "classify needs skeleton.png"),
        ([1, 2], 422, "body: Input should be a valid dictionary"),
    ],
)
def test_a_bad_run_request_is_refused_and_changes_nothing(
    client: httpx.Client,
    diagram: str,
    nothing_changes: NothingChanges,
    body: Any,
    status: int,
    phrase: str,
) -> None:
    with nothing_changes():
        response = run(client, diagram, body)

    assert_error(response, status, phrase)


def test_malformed_json_is_a_validation_error(
    client: httpx.Client, diagram: str, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post(
            f"{API}/diagrams/{diagram}/run",
            content=b'{"from_stage": ',
            headers={"Content-Type": "application/json"},
        )

    assert_error(response, 422, "body: malformed JSON (Expecting value)")


def test_a_cancelled_diagram_can_be_run_again(client: httpx.Client, diagram: str) -> None:
    assert run(client, diagram).status_code == 202

    cancelled = client.post(f"{API}/diagrams/{diagram}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    runs = detail(client, diagram)["stage_runs"]
    assert {r["state"] for r in runs} == {"failed"}
    assert {r["error"] for r in runs} == {"cancelled"}
    assert run(client, diagram).status_code == 202


def test_a_deleted_diagram_is_gone_from_every_route(client: httpx.Client, diagram: str) -> None:
    response = client.delete(f"{API}/diagrams/{diagram}")

    assert response.status_code == 202
    assert response.json()["status"] == "deleted"
    assert_error(client.get(f"{API}/diagrams/{diagram}"), 404, diagram)
    assert_error(client.get(f"{API}/diagrams/{diagram}/artifacts/original.png"), 404)
    assert_error(run(client, diagram), 404)
    assert_error(client.delete(f"{API}/diagrams/{diagram}"), 404)


# ---- a person's pipe mask ------------------------------------------------------------------------


@pytest.fixture
def segmented(diagram: str, settings: Settings) -> str:
    """A diagram as the segment stage leaves it: node mask and validated boxes stored."""
    store_artifacts(
        settings,
        diagram,
        {
            "node_mask.png": mask_bytes(96, 64),
            "pipe_mask.png": mask_bytes(96, 64),
            "validated_detections.json": coco(96, 64, [[10, 10, 20, 12]]),
        },
    )
    set_status(settings, diagram, DiagramStatus.mask_review)
    return diagram


def test_a_corrected_mask_continues_with_skeletonize_simple(
    client: httpx.Client, segmented: str, data_dir: Path, broker: redis.Redis
) -> None:
    mask = mask_bytes(96, 64)

    response = client.put(
        f"{API}/diagrams/{segmented}/pipe_mask",
        content=mask,
        headers={"Content-Type": "image/png"},
    )

    assert response.status_code == 202, response.text
    task_ids = response.json()["task_ids"]
    runs = detail(client, segmented)["stage_runs"]
    assert [r["stage"] for r in runs] == ["skeletonize_simple", "classify", "build_graph", "export"]
    assert [r["task_id"] for r in runs] == task_ids
    assert task_ids[0] in queued_task_ids(broker)["cpu"]
    assert (data_dir / "diagrams" / segmented / "pipe_mask.png").is_file()


def test_a_mask_may_come_as_a_multipart_file(
    client: httpx.Client, segmented: str, data_dir: Path
) -> None:
    response = client.put(
        f"{API}/diagrams/{segmented}/pipe_mask", files={"file": ("m.png", mask_bytes(96, 64))}
    )

    assert response.status_code == 202, response.text
    stored = data_dir / "diagrams" / segmented / "pipe_mask.png"
    first = stored.read_bytes()
    # Its run is queued now, so a second correction must wait for it, and leaves the stored
    # mask as the first one left it.
    blank = np.zeros((64, 96), dtype=np.uint8)
    again = client.put(
        f"{API}/diagrams/{segmented}/pipe_mask", content=cv2.imencode(".png", blank)[1].tobytes()
    )
    assert_error(again, 409, "already running (skeletonize_simple")
    assert stored.read_bytes() == first


@pytest.mark.parametrize(
    ("request_args", "status", "phrase"),
    [
        ({"content": mask_bytes(95, 64)}, 400, "size 95x64 does not match the drawing's 96x64"),
        ({"content": b"not a png at all"}, 400, "not a readable PNG image"),
        ({"content": b""}, 400, "pipe mask: empty body"),
        ({"files": {"mask": ("m.png", mask_bytes(96, 64))}}, 400, "has no 'file' part"),
    ],
    ids=["wrong-size", "not-png", "empty", "multipart-without-file"],
)
def test_a_bad_mask_is_refused_and_changes_nothing(
    client: httpx.Client,
    segmented: str,
    nothing_changes: NothingChanges,
    request_args: dict[str, Any],
    status: int,
    phrase: str,
) -> None:
    with nothing_changes():
        response = client.put(f"{API}/diagrams/{segmented}/pipe_mask", **request_args)

    assert_error(response, status, phrase)


def test_a_mask_before_segment_is_refused(
    client: httpx.Client, diagram: str, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.put(f"{API}/diagrams/{diagram}/pipe_mask", content=mask_bytes(96, 64))

    assert_error(response, 400, "run segment first")


# ---- a person's graph ----------------------------------------------------------------------------


@pytest.fixture
def built(diagram: str, settings: Settings) -> str:
    """A diagram as build_graph leaves it at the graph gate."""
    store_artifacts(settings, diagram, {"graph.json": json.dumps(VALID_GRAPH).encode()})
    set_status(settings, diagram, DiagramStatus.graph_review)
    return diagram


def test_a_corrected_graph_continues_with_export(
    client: httpx.Client, built: str, data_dir: Path
) -> None:
    sent = json.dumps(VALID_GRAPH).encode()

    response = client.put(f"{API}/diagrams/{built}/graph", content=sent)

    assert response.status_code == 202, response.text
    runs = detail(client, built)["stage_runs"]
    assert [(r["stage"], r["task_id"]) for r in runs] == [
        ("export", response.json()["task_ids"][0])
    ]
    assert (data_dir / "diagrams" / built / "validated_graph.json").read_bytes() == sent


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b'{"nodes": [', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[]", "graph"),
        (
            json.dumps({"nodes": [{"id": "a", "kind": "pump"}], "edges": []}).encode(),
            "nodes[0].kind: expected one of symbol, junction, endpoint, got 'pump'",
        ),
        (
            json.dumps(VALID_GRAPH | {"edges": [{"source": "s0", "target": "x9"}]}).encode(),
            "edges[0]",
        ),
    ],
    ids=["malformed", "empty", "not-an-object", "bad-node-kind", "unknown-target"],
)
def test_a_graph_failing_the_schema_is_refused_and_changes_nothing(
    client: httpx.Client, built: str, nothing_changes: NothingChanges, body: bytes, phrase: str
) -> None:
    with nothing_changes():
        response = client.put(f"{API}/diagrams/{built}/graph", content=body)

    assert_error(response, 400, "graph", phrase)


def test_a_graph_for_a_diagram_without_one_is_refused_and_changes_nothing(
    client: httpx.Client, diagram: str, nothing_changes: NothingChanges
) -> None:
    # export also needs the built graph.json, which an uploaded diagram does not have yet.
    with nothing_changes():
        response = client.put(
            f"{API}/diagrams/{diagram}/graph", content=json.dumps(VALID_GRAPH).encode()
        )

    assert_error(response, 400, "stage export needs graph.json")


def test_a_graph_body_over_the_limit_is_cut_off(
    base_url: str, built: str, nothing_changes: NothingChanges
) -> None:
    head = request_head(
        "PUT",
        f"{API}/diagrams/{built}/graph",
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    body = b'{"nodes": [' + b" " * MAX_UPLOAD_BYTES

    with nothing_changes():
        response = raw_exchange(base_url, head, chunked(body, 32 * 1024))

    assert response.status == 413
    assert "more than the limit" in response.json()["detail"]


# ---- review gates --------------------------------------------------------------------------------


def test_accepting_a_mask_review_continues_with_classify(
    client: httpx.Client, segmented: str, settings: Settings
) -> None:
    store_artifacts(settings, segmented, {"skeleton.png": mask_bytes(96, 64)})

    response = client.post(f"{API}/diagrams/{segmented}/review/accept")

    assert response.status_code == 202, response.text
    runs = detail(client, segmented)["stage_runs"]
    assert [r["stage"] for r in runs] == ["classify", "build_graph", "export"]
    assert [r["task_id"] for r in runs] == response.json()["task_ids"]


def test_accepting_without_a_pending_review_conflicts(
    client: httpx.Client, diagram: str, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post(f"{API}/diagrams/{diagram}/review/accept")

    assert_error(response, 409, "is not waiting for a review (uploaded)")


# ---- tasks ---------------------------------------------------------------------------------------


@pytest.fixture
def stored_results() -> Iterator[dict[str, str]]:
    """Task ids with results stored in the result backend the API reads: a success with a
    mapping, a failure. The results are removed afterwards."""
    from pid.tasks.app import app as celery_app

    ids = {"success": str(uuid.uuid4()), "failure": str(uuid.uuid4())}
    backend = celery_app.backend
    backend.store_result(ids["success"], {"nodes": 3}, "SUCCESS")
    backend.store_result(ids["failure"], ValueError("no weights"), "FAILURE")
    yield ids
    for task_id in ids.values():
        backend.forget(task_id)


def test_a_task_reports_its_state_and_info(
    client: httpx.Client, stored_results: dict[str, str]
) -> None:
    success = client.get(f"{API}/tasks/{stored_results['success']}").json()
    failure = client.get(f"{API}/tasks/{stored_results['failure']}").json()

    assert success == {
        "task_id": stored_results["success"],
        "state": "SUCCESS",
        "ready": True,
        "info": {"nodes": 3},
        "error": None,
    }
    assert (failure["state"], failure["ready"], failure["info"]) == ("FAILURE", True, None)
    assert failure["error"] == "no weights"


def test_an_unknown_task_is_pending(client: httpx.Client) -> None:
    task_id = str(uuid.uuid4())

    response = client.get(f"{API}/tasks/{task_id}")

    assert response.status_code == 200
    assert response.json() == {
        "task_id": task_id,
        "state": "PENDING",
        "ready": False,
        "info": None,
        "error": None,
    }


def test_an_overlong_task_id_is_a_validation_error(client: httpx.Client) -> None:
    assert_error(client.get(f"{API}/tasks/{'x' * 300}"), 422, "path.task_id")


def test_a_run_while_the_broker_is_down_is_unavailable(settings: Settings, diagram: str) -> None:
    dead_broker = Celery(
        "pid-api-tests-dead-broker",
        broker=f"redis://127.0.0.1:{closed_port()}/0",
        set_as_current=False,
    )
    with serve(app_with_test_broker(create_app(settings), dead_broker)) as url:
        response = httpx.post(f"{url}{API}/diagrams/{diagram}/run", timeout=30.0)
    dead_broker.close()

    assert_error(response, 503, "the task broker is unavailable; try again later")


def test_a_cancel_while_the_broker_is_down_still_cancels(
    settings: Settings, client: httpx.Client, diagram: str
) -> None:
    """The cancel is recorded before anything is revoked; a broker that is down only means
    its queued messages reach a worker, which finds the diagram cancelled."""
    assert client.post(f"{API}/diagrams/{diagram}/run").status_code == 202
    dead_broker = Celery(
        "pid-api-tests-dead-broker",
        broker=f"redis://127.0.0.1:{closed_port()}/0",
        set_as_current=False,
    )
    with serve(app_with_test_broker(create_app(settings), dead_broker)) as url:
        response = httpx.post(f"{url}{API}/diagrams/{diagram}/cancel", timeout=60.0)
    dead_broker.close()

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    detail = client.get(f"{API}/diagrams/{diagram}").json()
    assert detail["status"] == "cancelled"
    assert {run["state"] for run in detail["stage_runs"]} == {"failed"}


def test_an_upload_with_auto_run_while_the_broker_is_down_keeps_the_drawing(
    settings: Settings, data_dir: Path
) -> None:
    dead_broker = Celery(
        "pid-api-tests-dead-broker",
        broker=f"redis://127.0.0.1:{closed_port()}/0",
        set_as_current=False,
    )
    with serve(app_with_test_broker(create_app(settings), dead_broker)) as url:
        response = httpx.post(
            f"{url}{API}/diagrams",
            files={"file": ("sheet.png", png_bytes())},
            data={"auto_run": "true"},
            timeout=30.0,
        )
        # Stored, so the answer says so: a failed upload would be sent again as a duplicate.
        assert response.status_code == 201, response.text
        [diagram] = response.json()["diagrams"]
        assert (diagram["status"], diagram["error_message"]) == (
            "error", "the task broker was unavailable",
        )  # fmt: skip
        runs = httpx.get(f"{url}{API}/diagrams/{diagram['uid']}", timeout=10.0).json()
    dead_broker.close()

    assert (data_dir / "diagrams" / diagram["uid"] / "original.png").is_file()
    assert {r["state"] for r in runs["stage_runs"]} == {"failed"}  # none left queued
