"""Flower over the real fleet: basic auth from settings, every pool by node name, stages by name."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleet_support import Fleet, upload, wait_idle

from pid.core.statuses import DiagramStatus
from pid.synth.sheet import generate_sheet, write_sheet

USER, PASSWORD = "ops", "flower-secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def flower_process(fleet: Fleet) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    env = fleet.env | {
        "PID_FLOWER_USER": USER,
        "PID_FLOWER_PASSWORD": PASSWORD,
        "PID_FLOWER_PORT": str(port),
    }
    log = (fleet.log_dir / "flower.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pid.tasks.flower"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_answering(url, process)
        yield process, url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def flower(flower_process: tuple[subprocess.Popen[bytes], str]) -> str:
    return flower_process[1]


def _wait_answering(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"flower exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError("flower did not answer within 60 s")


def _get(url: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{url}{path}", auth=(USER, PASSWORD), timeout=30, **kwargs)


def test_flower_needs_the_settings_basic_auth(flower: str) -> None:
    assert httpx.get(f"{flower}/workers", timeout=10).status_code == 401
    assert httpx.get(f"{flower}/workers", auth=(USER, "wrong"), timeout=10).status_code == 401
    assert _get(flower, "/workers").status_code == 200


def test_flower_keeps_the_password_off_its_command_line(
    flower_process: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = flower_process
    # pid.tasks.flower execs Flower in place: the process started is Flower itself.
    command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ")
    assert b"flower" in command_line
    assert PASSWORD.encode() not in command_line
    assert _get(url, "/workers").status_code == 200


def test_flower_shows_every_pool_and_each_stage_by_name_and_state(
    flower: str, fleet: Fleet, tmp_path: Path
) -> None:
    workers = _get(flower, "/api/workers", params={"refresh": "true"}).json()
    assert {name.split("@")[0] for name in workers} >= {"gpu", "cpu", "io"}

    generated = generate_sheet(233, 0, width=1000, height=700)
    generated.name = "sheet"
    uid = upload(fleet, write_sheet(generated, tmp_path), auto_run=True)
    assert wait_idle(fleet, uid).diagram.status == DiagramStatus.completed

    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "pid.tasks.cpu.export" not in seen:
        tasks = _get(flower, "/api/tasks").json()
        seen = {t["name"]: t["state"] for t in tasks.values() if str(uid) in str(t.get("args"))}
        time.sleep(0.5)
    assert seen["pid.tasks.gpu.segment"] == "SUCCESS"
    assert seen["pid.tasks.cpu.skeletonize"] == "SUCCESS"
    assert seen["pid.tasks.io.cvat_fetch"] == "SUCCESS"
    assert seen["pid.tasks.cpu.export"] == "SUCCESS"
