"""Authentication and user management.

Kept import-free on purpose: the authorizer imports `lotabots.auth.tokens` on its cold-start
path and must not pull in SQLAlchemy, pydantic-settings or boto3 through this package.
"""
