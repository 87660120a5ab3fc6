"""Imports every domain's models so Base.metadata is complete (Alembic, tests)."""

from lotabots.aiops import models as aiops_models  # noqa: F401
from lotabots.alerts import models as alerts_models  # noqa: F401
from lotabots.attestation import models as attestation_models  # noqa: F401
from lotabots.audit import models as audit_models  # noqa: F401
from lotabots.auth import models as auth_models  # noqa: F401
from lotabots.documents import models as documents_models  # noqa: F401
from lotabots.embeddings import models as embeddings_models  # noqa: F401
from lotabots.jobs import models as jobs_models  # noqa: F401
