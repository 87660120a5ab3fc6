"""Documents API: declare uploads (presigned S3 POST), read, search, change, delete.

Bytes never pass through this function: uploads go straight to S3 and are checked by
`document_ingest`; downloads are presigned GETs. Object-level access lives in the service.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.db import session_scope
from lotabots.documents import repository, service
from lotabots.documents.models import DocumentStatus
from lotabots.documents.schemas import (
    DocumentCreate,
    DocumentCreated,
    DocumentList,
    DocumentOut,
    DocumentPatch,
    NewVersion,
)
from lotabots.embeddings.routes import router as similarity_router
from lotabots.http import create_resolver, current_principal, http_handler
from lotabots.openapi import route_responses
from lotabots.timestamps import UtcDateTime

app = create_resolver()

DocumentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
IfMatch = Annotated[
    str | None,
    Header(alias="if-match", description="ETag from a previous read; 412 if the document changed since"),
]


_ERRORS = {
    400: "malformed JSON, a bad cursor or a bad metadata filter",
    401: "not signed in",
    403: "your role may not call this route",
    404: "no such document, or not yours, or deleted",
    412: "If-Match does not name the current revision (ETag)",
    413: "declared size over the limit, or request body over 1 MiB",
    415: "content type not accepted",
    422: "the request failed validation (details name the fields)",
}


def responses(status: int, model: type[BaseModel] | None, *errors: int) -> dict[int, OpenAPIResponse]:
    """A route's success and the errors it can give (bad input, not signed in, and `errors`)."""
    return route_responses(status, model, _ERRORS, 400, 401, 422, *errors)


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers or {}
    )


@app.post(
    "/documents",
    summary="Declare a document and get its upload form (presigned S3 POST)",
    tags=["documents"],
    status_code=201,
    responses=responses(201, DocumentCreated, 403, 413, 415),
)
def create_document(body: DocumentCreate) -> Response[DocumentCreated]:
    principal = current_principal(app)
    with session_scope() as session:
        created = service.create_document(session, principal, body)
    document = created.document
    return _json(201, created, {"ETag": f'"{document.revision}"', "Location": f"/documents/{document.id}"})


@app.get(
    "/documents",
    summary="List and search documents (own; admin and auditor: all)",
    tags=["documents"],
    responses=responses(200, DocumentList),
)
def list_documents(
    status: Annotated[DocumentStatus | None, Query()] = None,
    content_type: Annotated[str | None, Query(max_length=100)] = None,
    metadata: Annotated[list[str] | None, Query(description="key:value; repeat to require several")] = None,
    created_after: Annotated[UtcDateTime | None, Query()] = None,
    created_before: Annotated[UtcDateTime | None, Query()] = None,
    owner_id: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Full-text search (web-search syntax)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DocumentList:
    principal = current_principal(app)
    filters = repository.ListFilter(
        owner_id=owner_id,
        status=status.value if status else None,
        content_type=content_type.strip().lower() if content_type else None,
        metadata=service.parse_metadata_filters(metadata),
        created_after=service.as_filter_time(created_after),
        created_before=service.as_filter_time(created_before),
        query=q.strip() if q and q.strip() else None,
    )
    with session_scope() as session:
        return service.list_documents(session, principal, filters, limit=limit, cursor=cursor)


@app.get(
    "/documents/<document_id>",
    summary="A document, with a short-lived download URL when ready",
    tags=["documents"],
    responses=responses(200, DocumentOut, 404),
)
def get_document(document_id: DocumentId) -> Response[DocumentOut]:
    principal = current_principal(app)
    with session_scope() as session:
        document = service.get_document(session, principal, document_id)
    return _json(200, document, {"ETag": f'"{document.revision}"'})


@app.patch(
    "/documents/<document_id>",
    summary="Change title and/or metadata (If-Match for optimistic concurrency)",
    tags=["documents"],
    responses=responses(200, DocumentOut, 403, 404, 412),
)
def update_document(
    document_id: DocumentId, body: DocumentPatch, if_match: IfMatch = None
) -> Response[DocumentOut]:
    principal = current_principal(app)
    with session_scope() as session:
        document = service.update_document(session, principal, document_id, body, if_match)
    return _json(200, document, {"ETag": f'"{document.revision}"'})


@app.delete(
    "/documents/<document_id>",
    summary="Delete a document and its stored files",
    tags=["documents"],
    status_code=204,
    responses=responses(204, None, 403, 404, 412),
)
def delete_document(document_id: DocumentId, if_match: IfMatch = None) -> Response[None]:
    principal = current_principal(app)
    with session_scope() as session:
        service.delete_document(session, principal, document_id, if_match)
    return Response(status_code=204, body=None)


@app.post(
    "/documents/<document_id>/versions",
    summary="Upload a new version: get a new upload form",
    tags=["documents"],
    status_code=201,
    responses=responses(201, DocumentCreated, 403, 404, 412, 413, 415),
)
def new_version(
    document_id: DocumentId, body: NewVersion, if_match: IfMatch = None
) -> Response[DocumentCreated]:
    principal = current_principal(app)
    with session_scope() as session:
        created = service.new_version(session, principal, document_id, body, if_match)
    return _json(201, created, {"ETag": f'"{created.document.revision}"'})


# GET /documents/{document_id}/similar lives with the embeddings it searches.
app.include_router(similarity_router)

lambda_handler = http_handler(app)

gc.freeze()  # loaded: see the top of the module
gc.enable()
