"""`make demo`: one generated drawing through the running service, scored against its truth.

The Makefile has already started PostgreSQL, Redis, the four pools and beat. This starts the API
(unless one answers already), generates a scan-style sheet, uploads it with its boxes as
symbols (no detector weights ship yet), waits for `completed`, downloads the outputs and prints
`pid eval`'s scores against the sheet's ground truth.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pid.settings import get_settings

VAR = Path("var")
DEMO = VAR / "demo"
SHEET = "sheet_00000"
OUTPUTS = (
    "graph.json",
    "junctions.json",
    "overlay.png",
    "output.fxml",
    "output.dexpi.xml",
    "graph.graphml",
    "pipe_mask.png",
    "regions.json",
    "detections.json",
)


def api_up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_api(base: str) -> None:
    if api_up(base):
        return
    (VAR / "log").mkdir(parents=True, exist_ok=True)
    (VAR / "run").mkdir(parents=True, exist_ok=True)
    log = (VAR / "log" / "api.log").open("a")
    server = subprocess.Popen(
        [sys.executable, "-m", "pid.api"], stdout=log, stderr=subprocess.STDOUT
    )
    (VAR / "run" / "api.pid").write_text(str(server.pid))
    for _ in range(120):
        if api_up(base):
            print(f"API started at {base} (log: var/log/api.log, stop: make api-stop)")
            return
        time.sleep(0.5)
    sys.exit("error: the API did not start; see var/log/api.log")


def main() -> None:
    settings = get_settings()
    base = f"http://{settings.api_host}:{settings.api_port}"
    headers = {"X-API-Key": settings.api_key.get_secret_value()} if settings.api_key else {}
    start_api(base)
    truth = DEMO / "truth"
    subprocess.run(
        [sys.executable, "-m", "pid.cli", "synth", "--count", "1", "--out", str(truth),
         "--seed", "7", "--size", "3000x2100", "--style", "scan"],
        check=True,
    )  # fmt: skip
    sheet = truth / SHEET
    with (sheet / "original.png").open("rb") as image, (sheet / "symbols.coco.json").open(
        "rb"
    ) as symbols:
        answer = httpx.post(
            f"{base}/api/v1/diagrams",
            files={"file": ("original.png", image, "image/png"),
                   "symbols": ("symbols.json", symbols, "application/json")},
            data={"auto_run": "true"},
            headers=headers,
            timeout=120.0,
        )  # fmt: skip
    answer.raise_for_status()
    uid = answer.json()["uids"][0]
    print(f"uploaded as diagram {uid}; waiting for the pipeline")
    detail = wait(base, uid, headers)
    if detail["status"] != "completed":
        sys.exit(f"error: diagram {uid} ended {detail['status']}: {detail.get('error_message')}")
    for run in detail["stage_runs"]:
        print(f"  {run['stage']:<20} {run['state']:<10} task {run['task_id']}")
    pred = DEMO / "pred" / SHEET
    pred.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        got = httpx.get(f"{base}/api/v1/diagrams/{uid}/artifacts/{name}", headers=headers)
        got.raise_for_status()
        (pred / name).write_bytes(got.content)
    print(f"outputs of diagram {uid} downloaded to {pred}")
    subprocess.run(
        [sys.executable, "-m", "pid.cli", "eval", "--pred", str(DEMO / "pred"), "--truth",
         str(truth), "--json", str(DEMO / "scores.json")],
        check=True,
    )  # fmt: skip
    print(f"the service keeps running: {base}/docs; stop with make celery-stop api-stop")


def wait(base: str, uid: str, headers: dict[str, str]) -> dict[str, object]:
    deadline = time.monotonic() + float(os.environ.get("PID_DEMO_TIMEOUT", "600"))
    while time.monotonic() < deadline:
        detail = httpx.get(f"{base}/api/v1/diagrams/{uid}", headers=headers).json()
        if detail["status"] in ("completed", "error", "cancelled"):
            return dict(detail)
        time.sleep(1.0)
    sys.exit(f"error: diagram {uid} did not finish in time (make celery-status shows the pools)")


if __name__ == "__main__":
    main()
