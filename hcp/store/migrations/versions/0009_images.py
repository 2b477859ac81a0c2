"""images: blocks, DAG membership, pins, job leases, Docker image metadata

Revision ID: 0009_images
Revises: 0001_fleet
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_images"
down_revision = "0001_fleet"
branch_labels = None
depends_on = None

_KEY = sa.String(80)
_CID = sa.String(128)
_WHO = sa.String(128)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "img_blocks",
        sa.Column("key", _KEY, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("refs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_used", _TS, nullable=False),
        sa.CheckConstraint("refs >= 0 AND size >= 0", name="ck_img_blocks_nonneg"),
    )
    op.create_index("ix_img_blocks_evictable", "img_blocks", ["refs", "last_used"])
    op.create_table(
        "img_dags",
        sa.Column("root", _CID, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("tsize", sa.BigInteger, nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.Column("blocks", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used", _TS, nullable=False),
    )
    op.create_table(
        "img_dag_blocks",
        sa.Column("root", _CID, sa.ForeignKey("img_dags.root", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", _KEY, primary_key=True),
    )
    op.create_index("ix_img_dag_blocks_key", "img_dag_blocks", ["key"])
    op.create_table(
        "img_pins",
        sa.Column("root", _CID, sa.ForeignKey("img_dags.root"), primary_key=True),
        sa.Column("pinned_at", _TS, nullable=False),
        sa.Column("pinned_by", _WHO, nullable=True),
    )
    op.create_table(
        "img_leases",
        sa.Column("job_id", sa.String(128), primary_key=True),
        sa.Column("root", _CID, sa.ForeignKey("img_dags.root"), primary_key=True),
        sa.Column("acquired_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
    )
    op.create_index("ix_img_leases_root", "img_leases", ["root"])
    op.create_table(
        "img_images",
        sa.Column("cid", _CID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("layers", sa.JSON, nullable=False),
        sa.Column("config_digest", sa.String(80), nullable=False),
        sa.Column("uploader", _WHO, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("uses", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_used", _TS, nullable=True),
    )
    op.create_index("ix_img_images_name", "img_images", ["name"])
    op.create_index("ix_img_images_uploader", "img_images", ["uploader"])
    op.create_index("ix_img_images_popularity", "img_images", ["uses", "cid"])


def downgrade() -> None:
    for table in ("img_images", "img_leases", "img_pins", "img_dag_blocks", "img_dags", "img_blocks"):
        op.drop_table(table)
