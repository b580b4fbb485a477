"""Every setting of the service and of `pid run`, read once from the environment (prefix PID_).

One object, documented field by field in README.md ("Configuration"). Settings with impossible
values are refused when the object is built, with a message naming the field.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pid.core.errors import PidInputError

StorageBackend = Literal["local", "s3"]
DetectMethod = Literal["yolo_sahi"]
SegmentMethod = Literal["classical"]
SkeletonizeMethod = Literal["classical"]
ClassifyMethod = Literal["rules"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PID_", env_file=".env", extra="ignore")

    # --- services -------------------------------------------------------------------------
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker (Redis).")
    result_backend: str = Field(
        "redis://127.0.0.1:6379/1", description="Celery result backend (Redis)."
    )
    database_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/pid",
        description="PostgreSQL through asyncpg.",
    )

    # --- storage --------------------------------------------------------------------------
    storage_backend: StorageBackend = Field("local", description="Where artifacts live.")
    data_dir: Path = Field(Path("var/data"), description="Root of the local storage backend.")
    s3_bucket: str = Field("pid", description="Bucket of the S3 backend.")
    s3_endpoint_url: str | None = Field(
        None, description="Any S3-compatible server; unset means AWS."
    )
    s3_region: str = Field("us-east-1", description="Region of the S3 backend.")
    s3_access_key_id: str | None = Field(None, description="Unset: boto's default chain.")
    s3_secret_access_key: SecretStr | None = Field(None, description="Unset: default chain.")
    tmp_dir: Path = Field(Path("var/tmp"), description="Scratch folders of workers.")

    # --- methods and models ---------------------------------------------------------------
    detect_method: DetectMethod = Field("yolo_sahi", description="Symbol detector.")
    segment_method: SegmentMethod = Field("classical", description="Pipe segmentation.")
    skeletonize_method: SkeletonizeMethod = Field("classical", description="Skeleton cleanup.")
    classify_method: ClassifyMethod = Field("rules", description="Junction/bridge classifier.")
    detect_weights: Path | None = Field(
        None, description="YOLO weights file (.pt) for detect; required unless symbols are given."
    )
    detect_confidence: float = Field(0.25, ge=0.0, le=1.0, description="Lowest box score kept.")
    sahi_slice_size: int = Field(640, ge=64, le=4096, description="SAHI slice side, pixels.")
    sahi_overlap: float = Field(0.2, ge=0.0, lt=1.0, description="SAHI slice overlap ratio.")
    device: str = Field("auto", description="torch device: auto (CUDA when present), cpu, cuda:N.")

    # --- review gates ---------------------------------------------------------------------
    gate_cvat: bool = Field(False, description="Pause for a person to check boxes in CVAT.")
    gate_mask: bool = Field(False, description="Pause in mask_review after skeletonize.")
    gate_graph: bool = Field(False, description="Pause in graph_review after build_graph.")

    # --- input limits ---------------------------------------------------------------------
    max_upload_bytes: int = Field(200 * 2**20, gt=0, description="Largest upload body, bytes.")
    max_pixels: int = Field(300_000_000, gt=0, description="Most pixels of one page.")
    max_pages: int = Field(50, gt=0, description="Most pages of one PDF or TIFF upload.")
    pdf_dpi: float = Field(200.0, gt=0, le=1200, description="PDF rasterisation resolution.")
    default_dpi: float = Field(
        200.0, gt=0, le=4800, description="DPI for DEXPI millimetres when the image has none."
    )

    # --- workers --------------------------------------------------------------------------
    gpu_soft_time_limit: int = Field(900, gt=0, description="Soft limit of a gpu task, s.")
    gpu_time_limit: int = Field(960, gt=0, description="Hard limit of a gpu task, s.")
    cpu_soft_time_limit: int = Field(600, gt=0, description="Soft limit of a cpu task, s.")
    cpu_time_limit: int = Field(660, gt=0, description="Hard limit of a cpu task, s.")
    io_timeout: float = Field(120.0, gt=0, description="asyncio.timeout of an io hand-off, s.")
    cpu_concurrency: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="cpu pool processes."
    )
    io_concurrency: int = Field(20, gt=0, description="io pool threads.")
    cpu_max_tasks_per_child: int = Field(50, gt=0, description="Recycle cpu children after N.")
    task_max_retries: int = Field(5, ge=0, description="Retries of a transient error.")
    stage_max_attempts: int = Field(3, gt=0, description="Deliveries of one stage run at most.")
    result_expires: int = Field(86400, gt=0, description="Celery results kept, s.")

    # --- maintenance and monitoring -------------------------------------------------------
    reaper_interval: float = Field(
        60.0, gt=0, description="Seconds between reaper runs (lost stages, broken chains)."
    )
    reaper_grace: float = Field(
        120.0,
        ge=0,
        description="Seconds past its pool's hard time limit before a running stage is lost.",
    )
    orphan_after: float = Field(
        60.0,
        gt=0,
        description="Seconds a stage run may have no message in the broker before the reaper "
        "sends it again (covers the moment between a commit and its message).",
    )
    purge_interval: float = Field(
        300.0, gt=0, description="Seconds between purges of deleted diagrams."
    )
    retention_days: float | None = Field(
        None,
        gt=0,
        description="Intermediate artifacts older than this many days are removed (the "
        "original and the outputs are kept); unset keeps everything.",
    )
    retention_interval: float = Field(3600.0, gt=0, description="Seconds between retention runs.")
    tmp_max_age_hours: float = Field(
        24.0, gt=0, description="Worker scratch folders older than this are removed, hours."
    )
    tmp_cleanup_interval: float = Field(
        3600.0, gt=0, description="Seconds between cleanups of worker scratch folders."
    )
    stale_review_hours: float = Field(
        72.0,
        gt=0,
        description="A diagram waiting at a review gate longer than this is reported, hours.",
    )
    stale_review_interval: float = Field(
        3600.0, gt=0, description="Seconds between reports of stale reviews."
    )
    maintenance_lock_ttl: int = Field(
        600, gt=0, description="Redis lock TTL of a maintenance run, s."
    )
    flower_port: int = Field(5555, gt=0, lt=65536, description="Port `make flower` binds.")
    flower_user: str = Field("pid", description="Flower basic-auth user.")
    flower_password: SecretStr | None = Field(
        None, description="Flower basic-auth password; required by `make flower`."
    )

    # --- API ------------------------------------------------------------------------------
    api_key: SecretStr | None = Field(None, description="When set, required in X-API-Key.")
    api_host: str = Field("127.0.0.1", description="Address `make api` binds.")
    api_port: int = Field(8000, gt=0, lt=65536, description="Port `make api` binds.")
    log_dir: Path = Field(Path("var/log"), description="Worker and API logs.")

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> Self:
        for pool in ("gpu", "cpu"):
            soft = getattr(self, f"{pool}_soft_time_limit")
            hard = getattr(self, f"{pool}_time_limit")
            if soft >= hard:
                raise ValueError(
                    f"{pool}_soft_time_limit ({soft}) must be below {pool}_time_limit ({hard})"
                )
        if self.gate_cvat:
            raise ValueError(
                "gate_cvat: the CVAT review gate is not available in this version; "
                "leave it false (boxes go on unreviewed)"
            )
        self._maintenance_outlasts_stages()
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("s3_bucket must be set when storage_backend is s3")
        return self

    def _maintenance_outlasts_stages(self) -> None:
        """Cleanups must never reach what a stage still in its time limit may be using."""
        longest = self.longest_time_limit
        if self.retention_days is not None and self.retention_days * 86400 <= longest:
            raise ValueError(
                f"retention_days ({self.retention_days}) must be longer than the longest stage "
                f"time limit ({longest} s)"
            )
        if self.tmp_max_age_hours * 3600 <= longest:
            raise ValueError(
                f"tmp_max_age_hours ({self.tmp_max_age_hours}) must be longer than the longest "
                f"stage time limit ({longest} s)"
            )

    @property
    def visibility_timeout(self) -> int:
        """Broker redelivery delay: above the longest task limit, so no live task is resent."""
        return self.longest_time_limit * 2 + 300

    @property
    def longest_time_limit(self) -> int:
        return max(self.gpu_time_limit, self.cpu_time_limit, int(self.io_timeout))


class SettingsError(PidInputError):
    """The environment holds a setting with an impossible value."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once; SettingsError names the first field refused."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(settings_message(exc)) from None


def settings_or_exit() -> Settings:
    """`get_settings` for a process starting up (worker, beat, Flower, the API): a refused
    setting ends it with one line naming the field, not a traceback."""
    try:
        return get_settings()
    except SettingsError as exc:
        raise SystemExit(f"pid: {exc}") from None


def settings_message(exc: ValidationError) -> str:
    """One line naming the refused field, as its environment variable, and why."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    reason = error["msg"].removeprefix("Value error, ")
    if not field:  # a check across fields names them in its own message
        return f"invalid settings: {reason}"
    return f"invalid setting PID_{field.upper()} ({field}): {reason}"
