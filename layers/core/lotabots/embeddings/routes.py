"""`GET /documents/{document_id}/similar?k=`: a Powertools Router the documents function includes
(`app.include_router(router)`). The caller only ever sees documents it may see."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from lotabots.db import session_scope
from lotabots.embeddings.schemas import SimilarDocuments
from lotabots.errors import Unauthorized
from lotabots.http import principal_from_event

router = Router()


@router.get(
    "/documents/<document_id>/similar",
    summary="Documents most similar to this one",
    description="Nearest documents by embedding (all-MiniLM-L6-v2), among those the caller may see.",
    tags=["documents"],
)
def get_similar_documents(
    document_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    k: Annotated[int, Query(ge=1, le=50, description="How many documents to return")] = 10,
) -> SimilarDocuments:
    from lotabots.embeddings import service

    principal = principal_from_event(router.current_event.raw_event)
    if principal is None:
        raise Unauthorized()
    with session_scope() as session:
        return service.similar_documents(session, principal, document_id, k)
