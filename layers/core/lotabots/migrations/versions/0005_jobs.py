"""GPU jobs and document embeddings.

Revision ID: 0005_jobs
Revises: 0001_core
Create Date: 2026-11-25

Vectors are always stored as little-endian float32 blobs (portable: SQLite, PostgreSQL
without extensions). On PostgreSQL where `CREATE EXTENSION vector` succeeds, the document
table also gets a pgvector column with an HNSW cosine index, used for nearest-neighbour search.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_jobs"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMBEDDING_DIM = 384


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _try_pgvector() -> bool:
    """Create the pgvector extension if the server has it; never abort the migration."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("gpu", sa.String(32)),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("backend_handle", sa.String(256)),
        sa.Column("result", sa.JSON()),
        sa.Column("result_uri", sa.String(1024)),
        sa.Column("gpu_used", sa.JSON()),
        sa.Column("timings", sa.JSON()),
        sa.Column("error", sa.Text()),
        sa.Column("dedupe_key", sa.String(200)),
        sa.Column("requested_by", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_type", "jobs", ["type"])
    op.create_index("ix_jobs_backend_handle", "jobs", ["backend_handle"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])

    op.create_table(
        "document_embeddings",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(64)),
        sa.Column("version", sa.Integer()),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("document_id", name="pk_document_embeddings"),
    )
    op.create_index("ix_document_embeddings_owner_id", "document_embeddings", ["owner_id"])

    op.create_table(
        "embeddings",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer()),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("start_char", sa.Integer(), nullable=False),
        sa.Column("end_char", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("document_id", "chunk_index", name="pk_embeddings"),
    )

    if _try_pgvector():
        op.execute(f"ALTER TABLE document_embeddings ADD COLUMN embedding vector({EMBEDDING_DIM})")
        op.execute(
            "CREATE INDEX ix_document_embeddings_embedding ON document_embeddings "
            "USING hnsw (embedding vector_cosine_ops)"
        )


def downgrade() -> None:
    op.drop_table("embeddings")
    op.drop_table("document_embeddings")
    op.drop_index("ix_jobs_created_at", table_name="jobs")
    op.drop_index("ix_jobs_backend_handle", table_name="jobs")
    op.drop_index("ix_jobs_type", table_name="jobs")
    op.drop_index("ix_jobs_status", table_name="jobs")
    op.drop_table("jobs")
