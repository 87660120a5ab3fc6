"""Documents: metadata, extracted text and full-text search.

SQLite: an FTS5 external-content table over `document_texts`, kept in step by triggers.
PostgreSQL: a generated `tsvector` column over title + text with a GIN index.
Both index the title and the first SEARCH_INDEX_CHARS characters of the text.

Revision ID: 0003_documents
Revises: 0001_core
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_documents"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The SQL below indexes the first 100000 characters of the text: the same value as
# lotabots.documents.models.SEARCH_INDEX_CHARS (a migration never imports application code).

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE documents_fts USING fts5("
    "title, body, content='document_texts', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    """CREATE TRIGGER document_texts_ai AFTER INSERT ON document_texts BEGIN
        INSERT INTO documents_fts(rowid, title, body)
        VALUES (new.id, new.title, substr(new.body, 1, 100000));
    END""",
    """CREATE TRIGGER document_texts_ad AFTER DELETE ON document_texts BEGIN
        INSERT INTO documents_fts(documents_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, substr(old.body, 1, 100000));
    END""",
    """CREATE TRIGGER document_texts_au AFTER UPDATE ON document_texts BEGIN
        INSERT INTO documents_fts(documents_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, substr(old.body, 1, 100000));
        INSERT INTO documents_fts(rowid, title, body)
        VALUES (new.id, new.title, substr(new.body, 1, 100000));
    END""",
]

_POSTGRES_FTS = [
    "ALTER TABLE document_texts ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, left(coalesce(body, ''), 100000)), 'B')"
    ") STORED",
    "CREATE INDEX ix_document_texts_search_vector ON document_texts USING gin (search_vector)",
]


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(400), nullable=False),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True)),
        sa.Column("word_count", sa.Integer()),
        sa.Column("page_count", sa.Integer()),
        sa.Column("excerpt", sa.String(400)),
        sa.Column("text_truncated", sa.Boolean(), nullable=False),
        sa.Column("processing_etag", sa.String(100)),
        sa.Column("ingested_etag", sa.String(100)),
        sa.Column("published_etag", sa.String(100)),
        sa.Column("ingested_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
        sa.CheckConstraint(
            "status IN ('pending_upload', 'processing', 'ready', 'rejected')",
            name="ck_documents_status_valid",
        ),
        sa.CheckConstraint("size_bytes >= 0", name="ck_documents_size_non_negative"),
    )
    op.create_index("ix_documents_owner_created", "documents", ["owner_id", "created_at", "id"])
    op.create_index("ix_documents_created", "documents", ["created_at", "id"])

    op.create_table(
        "document_texts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_document_texts"),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_document_texts_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("document_id", name="uq_document_texts_document_id"),
    )

    dialect = op.get_bind().dialect.name
    statements = _SQLITE_FTS if dialect == "sqlite" else _POSTGRES_FTS if dialect == "postgresql" else []
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("document_texts_ai", "document_texts_ad", "document_texts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS documents_fts")
    op.drop_table("document_texts")
    op.drop_index("ix_documents_created", table_name="documents")
    op.drop_index("ix_documents_owner_created", table_name="documents")
    op.drop_table("documents")
