"""Documents: presigned uploads, S3-triggered ingest, object-level access and full-text search.

Bytes never pass through Lambda: the API hands out presigned S3 POSTs and GETs, and the
ingest worker streams each uploaded object once to check, hash and extract it.
"""
