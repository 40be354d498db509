"""One settings object for the whole hub, read from ``HUB_*`` environment variables.

``HUB_DATABASE_URL``   SQLAlchemy URL; default: SQLite file ``<data_dir>/hub.db``.
``HUB_DATA_DIR``       where the hub writes (database, releases, dashboard); default ``var``.
``HUB_KEY_FILE``       the secret key file (never in the database);
                       default ``<data_dir>/keys/hub.key``.
``HUB_ENVIRONMENT``    ``development`` (creates a key file if none) or ``production`` (refuses to
                       start without one).
``HUB_LINKAGE_MEMORY_LIMIT``   the linkage engine's memory cap (DuckDB spills to disk beyond it).
``HUB_LINKAGE_CHUNK_RECORDS``  linkage scores pairs in chunks of this many records a side.
``HUB_UPLOAD_JOB_SWEEP_SECONDS``  how often a served app fails upload jobs whose process is gone
                       (``hub.ingest.jobs``); 0 sweeps only at start-up.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses to start without a key file"
    )
    data_dir: Path = Field(default=Path("var"), description="Directory the hub writes to")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/hub.db"
    )
    key_file: Path | None = Field(
        default=None, description="Secret key file; default <data_dir>/keys/hub.key"
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3, description="Uploads larger than this are refused before reading"
    )

    linkage_memory_limit: str = Field(
        default="5GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$", description="Linkage memory cap"
    )
    linkage_chunk_records: int = Field(
        default=1_000_000, ge=1_000, description="Records a side per linkage scoring chunk"
    )

    upload_job_sweep_seconds: float = Field(
        default=30.0, ge=0, description="Seconds between two upload-job recovery sweeps"
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hub.db'}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys" / "hub.key"


@lru_cache
def get_settings() -> Settings:
    return Settings()
