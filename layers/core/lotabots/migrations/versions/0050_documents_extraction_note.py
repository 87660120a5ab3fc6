"""Documents: `extraction_note`, why a ready document's text is partial.

Set when an extraction budget (pages, decompressed bytes, time, memory) stopped the reading of
a PDF, or some of its pages could not be read; the document is still `ready` with what was read.

Revision ID: 0050_documents_extraction_note
Revises: 0003_documents
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050_documents_extraction_note"
down_revision: str | Sequence[str] | None = "0003_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("extraction_note", sa.String(500), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "extraction_note")
