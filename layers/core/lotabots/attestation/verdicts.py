"""Claims and verdicts: the vocabulary every appraisal speaks, mapped onto IETF RATS EAR.

A claim is one check with its outcome. Outcomes map onto the AR4SI trustworthiness tiers EAR
uses (2 affirming, 32 warning, 96 contraindicated, 0 no claim); the verdict's status is the
worst claim's tier. Each claim names the trustworthiness-vector entry it feeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lotabots.attestation.policies import assurance_rank

Outcome = Literal["pass", "warn", "fail", "skip"]
EarStatus = Literal["affirming", "warning", "contraindicated", "none"]
TIER: dict[str, int] = {"pass": 2, "warn": 32, "fail": 96, "skip": 0}
VECTOR_KEYS = (
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
)


@dataclass(frozen=True)
class Claim:
    name: str
    outcome: Outcome
    detail: str
    vector: str  # the trustworthiness-vector key this check feeds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verdict:
    claims: list[Claim] = field(default_factory=list)
    assurance: str = "none"
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, outcome: Outcome, detail: str, vector: str) -> None:
        self.claims.append(Claim(name, outcome, detail, vector))

    @property
    def failed(self) -> list[Claim]:
        return [c for c in self.claims if c.outcome == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def ear_status(self) -> EarStatus:
        if not self.claims:
            return "none"
        if self.failed:
            return "contraindicated"
        if any(c.outcome == "warn" for c in self.claims):
            return "warning"
        return "affirming"

    def trustworthiness_vector(self) -> dict[str, int]:
        vector: dict[str, int] = {}
        for claim in self.claims:
            if claim.outcome == "skip":
                continue
            vector[claim.vector] = max(vector.get(claim.vector, 0), TIER[claim.outcome])
        return vector

    def require_assurance(self, minimum: str) -> None:
        """Fail the verdict when the level reached is below what the policy asks."""
        if self.failed:
            self.assurance = "none"
            return
        if assurance_rank(self.assurance) < assurance_rank(minimum):
            self.add(
                "assurance",
                "fail",
                f"reached {self.assurance}; the policy requires at least {minimum}",
                "hardware",
            )
            self.assurance = "none"
        else:
            self.add(
                "assurance", "pass", f"reached {self.assurance} (policy: at least {minimum})", "hardware"
            )

    def reasons(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failed)[:2000]
