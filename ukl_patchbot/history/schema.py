"""The history's tables (SQLAlchemy Core). Alembic migrations create and change them.

One row in ``checks`` per recorded check, one in ``check_variants`` per
variant of it, one in ``findings`` per boot finding. ``run_key`` is unique:
a retried job or a repeated check of the same inputs replaces its row.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

checks = Table(
    "checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_key", String(64), nullable=False, unique=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, index=True),
    Column("source", String(16), nullable=False),  # cli | worker | track
    Column("component", String(32), nullable=False),
    Column("tag", Text, nullable=False, index=True),
    Column("line", Text, nullable=True),  # "6.1" for v6.1.192
    Column("glibc_tag", Text, nullable=True),
    Column("linux_series", Text, nullable=True),  # series digests
    Column("glibc_series", Text, nullable=True),
    Column("tree_id", Text, nullable=True),
    Column("verdict", String(16), nullable=False),  # pass | fail | flaky | error
    Column("attribution", String(32), nullable=False),
    Column("attribution_text", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("syscall_ratio", Float, nullable=True),
    Column("accel", String(16), nullable=True),
    Column("duration", Float, nullable=True),
    Column("from_cache", Boolean, nullable=False),
    Column("out_dir", Text, nullable=True),
    Column("logs", Text, nullable=False),  # JSON list of [label, path]
    Column("repo", Text, nullable=True),
    Column("pr", Integer, nullable=True),
    Column("head_sha", Text, nullable=True),
    Column("report_md", Text, nullable=False),
)

check_variants = Table(
    "check_variants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", Integer, ForeignKey("checks.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("variant", String(32), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("failed_step", String(16), nullable=True),
    Column("config_status", String(16), nullable=False),
    Column("build_status", String(16), nullable=False),
    Column("build_duration", Float, nullable=True),
    Column("image_size", Integer, nullable=True),
    Column("boot_status", String(16), nullable=False),
    Column("flaky", Boolean, nullable=False),
    Column("time_to_marker", Float, nullable=True),
    Column("ns_per_call", Float, nullable=True),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", Integer, ForeignKey("checks.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("variant", String(32), nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("summary", Text, nullable=False),
)
