"""The first history schema: checks, their variants and their findings.

Outside text (tags, tree ids, repository names) is TEXT: PostgreSQL refuses over-long
VARCHARs where SQLite does not, and recording must not fail on a long tag.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_key", sa.String(64), nullable=False, unique=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("line", sa.Text, nullable=True),
        sa.Column("glibc_tag", sa.Text, nullable=True),
        sa.Column("linux_series", sa.Text, nullable=True),
        sa.Column("glibc_series", sa.Text, nullable=True),
        sa.Column("tree_id", sa.Text, nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("attribution", sa.String(32), nullable=False),
        sa.Column("attribution_text", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("syscall_ratio", sa.Float, nullable=True),
        sa.Column("accel", sa.String(16), nullable=True),
        sa.Column("duration", sa.Float, nullable=True),
        sa.Column("from_cache", sa.Boolean, nullable=False),
        sa.Column("out_dir", sa.Text, nullable=True),
        sa.Column("logs", sa.Text, nullable=False),
        sa.Column("repo", sa.Text, nullable=True),
        sa.Column("pr", sa.Integer, nullable=True),
        sa.Column("head_sha", sa.Text, nullable=True),
        sa.Column("report_md", sa.Text, nullable=False),
    )
    op.create_index("ix_checks_recorded_at", "checks", ["recorded_at"])
    op.create_index("ix_checks_tag", "checks", ["tag"])
    op.create_table(
        "check_variants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("check_id", sa.Integer, sa.ForeignKey("checks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("failed_step", sa.String(16), nullable=True),
        sa.Column("config_status", sa.String(16), nullable=False),
        sa.Column("build_status", sa.String(16), nullable=False),
        sa.Column("build_duration", sa.Float, nullable=True),
        sa.Column("image_size", sa.Integer, nullable=True),
        sa.Column("boot_status", sa.String(16), nullable=False),
        sa.Column("flaky", sa.Boolean, nullable=False),
        sa.Column("time_to_marker", sa.Float, nullable=True),
        sa.Column("ns_per_call", sa.Float, nullable=True),
    )
    op.create_index("ix_check_variants_check_id", "check_variants", ["check_id"])
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("check_id", sa.Integer, sa.ForeignKey("checks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_index("ix_findings_check_id", "findings", ["check_id"])
    op.create_index("ix_findings_fingerprint", "findings", ["fingerprint"])


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("check_variants")
    op.drop_table("checks")
