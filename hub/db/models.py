"""SQLAlchemy 2 models: every table the hub has. Migrations in ``hub/db/migrations`` must agree
(a test compares them).

No table holds a direct identifier or free text: records hold transformed values only, tokens
are keyed HMACs, and keys live outside the database (invariants 1 and 7).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(at: dt.datetime) -> dt.datetime:
    """``at`` in UTC. Timestamps are stored in UTC; SQLite gives them back without their time
    zone, PostgreSQL in the session's."""
    return at.astimezone(dt.UTC) if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


class Party(Base):
    """An agency (or the office itself), by its agreement party id, e.g. ``org:police``."""

    __tablename__ = "parties"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    party_id: Mapped[str | None] = mapped_column(ForeignKey("parties.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """An API token, stored only as its SHA-256 digest."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AgreementRecord(Base):
    __tablename__ = "agreements"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgreementVersion(Base):
    """One immutable version of an agreement: the canonical spec and its SHA-256."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("agreement_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column()
    effective_date: Mapped[dt.date] = mapped_column()
    expiry_date: Mapped[dt.date] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DatasetRegistration(Base):
    """Which agreement version currently governs a dataset id, and who provides it."""

    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    agreement_version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"))
    provider_party_id: Mapped[str] = mapped_column(ForeignKey("parties.id"))


class Upload(Base):
    """The receipt of an accepted upload. Rejected uploads store nothing at all."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("dataset_id", "file_sha256"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    agreement_version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"))
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.id"))
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_bytes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    rows_received: Mapped[int] = mapped_column(Integer)
    rows_accepted: Mapped[int] = mapped_column(Integer)
    rows_dropped: Mapped[int] = mapped_column(Integer)
    rows_added: Mapped[int] = mapped_column(Integer, default=0)
    rows_replaced: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Record(Base):
    """A pseudonymized record: transformed values only, keyed by the HMAC of its record key."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("dataset_id", "record_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign keys on purpose: PostgreSQL checks one per row at about 15 µs each here, which
    # alone would cost 15 s per million rows and foreign key. Records are written only by
    # hub.ingest.store after their upload row, in the same transaction, and deleted by record;
    # tests check that no record is ever without its upload.
    dataset_id: Mapped[str] = mapped_column(String(100))
    upload_id: Mapped[str] = mapped_column(String(32), index=True)
    agreement_version_id: Mapped[int] = mapped_column(Integer)
    record_key: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    # Plain JSON, not JSONB, on PostgreSQL: it is written by the million and read whole, and
    # JSONB costs about 60% more to load (measured with COPY).
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    aggregate_only: Mapped[bool] = mapped_column(Boolean, default=False)
    no_linkage: Mapped[bool] = mapped_column(Boolean, default=False)
    # Keyed 64-bit linkage tokens (hub.pseudonymize.TOKEN_COLUMNS); null when absent.
    t_fn: Mapped[int | None] = mapped_column(BigInteger)
    t_fn2: Mapped[int | None] = mapped_column(BigInteger)
    t_fi: Mapped[int | None] = mapped_column(BigInteger)
    t_fsx: Mapped[int | None] = mapped_column(BigInteger)
    t_mn: Mapped[int | None] = mapped_column(BigInteger)
    t_ln: Mapped[int | None] = mapped_column(BigInteger)
    t_ln2: Mapped[int | None] = mapped_column(BigInteger)
    t_ln3: Mapped[int | None] = mapped_column(BigInteger)
    t_lsx: Mapped[int | None] = mapped_column(BigInteger)
    t_dob: Mapped[int | None] = mapped_column(BigInteger)
    t_dob2: Mapped[int | None] = mapped_column(BigInteger)
    t_by: Mapped[int | None] = mapped_column(BigInteger)
    t_md: Mapped[int | None] = mapped_column(BigInteger)
    t_md2: Mapped[int | None] = mapped_column(BigInteger)
    t_sex: Mapped[int | None] = mapped_column(BigInteger)
    t_zip3: Mapped[int | None] = mapped_column(BigInteger)
    t_sw: Mapped[int | None] = mapped_column(BigInteger)
    t_zip: Mapped[int | None] = mapped_column(BigInteger)
    t_pid: Mapped[int | None] = mapped_column(BigInteger)
    t_st: Mapped[int | None] = mapped_column(BigInteger)
    t_stn: Mapped[int | None] = mapped_column(BigInteger)
    t_loc: Mapped[int | None] = mapped_column(BigInteger)
    t_hn: Mapped[int | None] = mapped_column(BigInteger)
    t_ay: Mapped[int | None] = mapped_column(BigInteger)
    t_ay2: Mapped[int | None] = mapped_column(BigInteger)
    t_ym: Mapped[int | None] = mapped_column(BigInteger)
    t_ca: Mapped[int | None] = mapped_column(BigInteger)
    t_az1: Mapped[int | None] = mapped_column(BigInteger)
    t_az2: Mapped[int | None] = mapped_column(BigInteger)
    t_az3: Mapped[int | None] = mapped_column(BigInteger)
    t_fh1: Mapped[int | None] = mapped_column(BigInteger)
    t_fh2: Mapped[int | None] = mapped_column(BigInteger)
    t_lh1: Mapped[int | None] = mapped_column(BigInteger)
    t_lh2: Mapped[int | None] = mapped_column(BigInteger)


class LinkageRun(Base):
    __tablename__ = "linkage_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(50))
    params: Mapped[dict[str, Any]] = mapped_column()
    records: Mapped[int] = mapped_column(Integer, default=0)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    links: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PersonLink(Base):
    """The pseudonymous person a record belongs to, as decided by a linkage run."""

    __tablename__ = "person_links"
    # No foreign keys, as on ``records`` (migration 0007): PostgreSQL's per-row checks took 3.9
    # of the 5.4 s a 400,000-link COPY took. Links are written only by the linkage run, under
    # its datasets' shared lock and only for records still there, and deleted with their
    # record (hub.db.records.delete_records); tests check that no link outlives its record.
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(32))  # no index: nothing looks one up
    run_id: Mapped[int] = mapped_column(Integer)


class LinkageChange(Base):
    """A person id a linkage run merged into another, or split off from one.

    ``merge``: the records of ``other_person_id`` now carry ``person_id``. ``split``: ``records``
    records that carried ``person_id`` now carry the new ``other_person_id``."""

    __tablename__ = "linkage_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("linkage_runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    other_person_id: Mapped[str] = mapped_column(String(32), index=True)
    records: Mapped[int] = mapped_column(Integer)


class BudgetAccount(Base):
    """Privacy budget of one agreement for one period (``2026-11``) or its lifetime."""

    __tablename__ = "budget_accounts"
    __table_args__ = (UniqueConstraint("agreement_id", "period_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    period_key: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(10))
    cap: Mapped[float] = mapped_column(Float)
    spent: Mapped[float] = mapped_column(Float, default=0.0)


class Release(Base):
    __tablename__ = "releases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), unique=True)
    aggregate_id: Mapped[str] = mapped_column(String(100), index=True)
    recipient: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    privacy_model: Mapped[str] = mapped_column(String(10))
    privacy_loss: Mapped[float] = mapped_column(Float)
    manifest: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BudgetDebit(Base):
    __tablename__ = "budget_debits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("budget_accounts.id"))
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"))
    amount: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReleaseSource(Base):
    """Traces a release to the agreement versions and uploads whose data it used."""

    __tablename__ = "release_sources"
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"), primary_key=True)
    agreement_version_id: Mapped[int] = mapped_column(
        ForeignKey("agreement_versions.id"), primary_key=True
    )
    upload_ids: Mapped[list[Any]] = mapped_column()


class AuditEvent(Base):
    """Hash-chained audit log: ``hash = sha256(prev_hash + payload)``; payload is canonical JSON."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Signer(Base):
    """A party's signatory and their Ed25519 public key (the private key never reaches the hub)."""

    __tablename__ = "signers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.id"))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")
    public_key: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(48), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AgreementSignature(Base):
    """A signature over one version's signing form, by one signer on behalf of one party."""

    __tablename__ = "agreement_signatures"
    __table_args__ = (UniqueConstraint("agreement_version_id", "signer_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"))
    signer_id: Mapped[int] = mapped_column(ForeignKey("signers.id"))
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.id"))
    signed_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgreementApproval(Base):
    """A governance body's recorded decision on one version."""

    __tablename__ = "agreement_approvals"
    __table_args__ = (UniqueConstraint("agreement_version_id", "body"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"))
    body: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(200), default="")
    recorded_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgreementTransition(Base):
    """One lifecycle step of a version (draft → under_review → active → ...)."""

    __tablename__ = "agreement_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_version_id: Mapped[int] = mapped_column(
        ForeignKey("agreement_versions.id"), index=True
    )
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DestructionOrder(Base):
    """Data of a terminated agreement due for destruction, as its retention section says."""

    __tablename__ = "destruction_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    agreement_version_id: Mapped[int] = mapped_column(ForeignKey("agreement_versions.id"))
    datasets: Mapped[list[Any]] = mapped_column()
    method: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[dt.date] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    records_destroyed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class UploadJobRow(Base):
    """An upload job (:mod:`hub.ingest.jobs`): who sent what, its status and progress, and at
    the end its result (the receipt, the rejection, or ``{error, detail}``). Kept in the
    database so every server process sees every job and a restart forgets none. ``owner`` names
    the process running it (``host:pid:boot.token``) and ``heartbeat_at`` when that process last
    said it was alive, in database time; ``spool_path`` is the job's encrypted spool file where
    it has a name (it has none where the platform unlinks it at once). No row holds a value or
    a header name from the file: a rejection's report is stored redacted
    (:func:`hub.ingest.attempts.redacted_report`)."""

    __tablename__ = "upload_jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(100))
    dataset_id: Mapped[str] = mapped_column(String(100))
    party_id: Mapped[str | None] = mapped_column(String(64))
    uploader: Mapped[str] = mapped_column(String(100))
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), index=True)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    owner: Mapped[str] = mapped_column(String(200))
    spool_path: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    result: Mapped[dict[str, Any] | None] = mapped_column()
