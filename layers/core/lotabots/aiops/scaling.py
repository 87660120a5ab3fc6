"""Predictive scaling: a forecast turned into a plan, applied only when enabled (dry-run by default).

- Provisioned concurrency of each latency-critical function's `live` alias: concurrency
  needed in an hour ≈ invocations per second x average duration (Little's law), plus 20%
  headroom, capped at `AIOPS_PROVISIONED_MAX`. One Application Auto Scaling scheduled action
  per change of level (`at(...)`, MinCapacity = MaxCapacity = level) on the alias's scalable
  target (registered first; registering again only updates it).
- AWS Batch: the GPU compute environment's desired vCPUs for the coming hour = forecast jobs
  x `AIOPS_BATCH_VCPUS_PER_JOB`, capped at `AIOPS_BATCH_MAX_VCPUS` (the hourly run sets the
  next hour's value; Batch scales down by itself when the queue empties).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from lotabots import aws
from lotabots.config import AIOpsSettings

HEADROOM = 1.2
LIVE_ALIAS = "live"
DIMENSION = "lambda:function:ProvisionedConcurrency"


class ScheduledAction(BaseModel):
    function: str
    resource_id: str = Field(description="function:<name>:live")
    at: datetime
    provisioned_concurrency: int


class BatchPlan(BaseModel):
    compute_environment: str | None
    desired_vcpus: int
    forecast_jobs_next_hour: float


class ScalingPlan(BaseModel):
    mode: str = Field(description="`dry-run` (AIOPS_SCALING_APPLY=false) or `apply`")
    actions: list[ScheduledAction]
    batch: BatchPlan
    applied: bool = False
    errors: list[str] = Field(default_factory=list)


def provisioned_levels(hourly_invocations: list[float], avg_duration_ms: float, maximum: int) -> list[int]:
    levels = []
    for per_hour in hourly_invocations:
        concurrency = max(per_hour, 0.0) / 3600 * max(avg_duration_ms, 0.0) / 1000
        levels.append(min(maximum, math.ceil(concurrency * HEADROOM)) if per_hour > 0 else 0)
    return levels


def plan(
    settings: AIOpsSettings,
    *,
    hours: list[float],
    functions: dict[str, tuple[str, list[float], float]],
    jobs_forecast: list[float],
) -> ScalingPlan:
    """`functions`: topology name → (physical name, hourly forecast, average duration ms)."""
    actions: list[ScheduledAction] = []
    for name in settings.latency_critical_functions:
        if name not in functions:
            continue
        physical, forecast, duration = functions[name]
        levels = provisioned_levels(forecast, duration, settings.provisioned_max)
        if not any(levels):
            continue  # no traffic expected: the alias is left as it is
        previous: int | None = None
        for at, level in zip(hours, levels, strict=False):
            if level != previous:
                actions.append(
                    ScheduledAction(
                        function=name,
                        resource_id=f"function:{physical}:{LIVE_ALIAS}",
                        at=datetime.fromtimestamp(at, UTC),
                        provisioned_concurrency=level,
                    )
                )
                previous = level
    next_hour = max(jobs_forecast[0], 0.0) if jobs_forecast else 0.0
    vcpus = min(settings.batch_max_vcpus, math.ceil(next_hour) * settings.batch_vcpus_per_job)
    return ScalingPlan(
        mode="apply" if settings.scaling_apply else "dry-run",
        actions=actions,
        batch=BatchPlan(
            compute_environment=settings.batch_compute_environment,
            desired_vcpus=vcpus,
            forecast_jobs_next_hour=round(next_hour, 3),
        ),
    )


def apply(scaling: ScalingPlan, settings: AIOpsSettings) -> ScalingPlan:
    """Carry the plan out (only when enabled); failures are recorded on the plan, not raised."""
    if not settings.scaling_apply:
        return scaling
    from botocore.exceptions import BotoCoreError, ClientError

    errors: list[str] = []
    autoscaling = aws.client("application-autoscaling")
    for resource_id in sorted({a.resource_id for a in scaling.actions}):
        try:
            autoscaling.register_scalable_target(
                ServiceNamespace="lambda",
                ResourceId=resource_id,
                ScalableDimension=DIMENSION,
                MinCapacity=0,
                MaxCapacity=max(settings.provisioned_max, 1),
            )
        except (ClientError, BotoCoreError) as exc:
            errors.append(f"register {resource_id}: {exc}"[:300])
    for action in scaling.actions:
        try:
            autoscaling.put_scheduled_action(
                ServiceNamespace="lambda",
                ScalableDimension=DIMENSION,
                ResourceId=action.resource_id,
                ScheduledActionName=f"aiops-{action.at:%Y%m%dT%H%M}",
                Schedule=f"at({action.at:%Y-%m-%dT%H:%M:%S})",
                ScalableTargetAction=_capacity(action.provisioned_concurrency),
            )
        except (ClientError, BotoCoreError) as exc:
            errors.append(f"schedule {action.resource_id} at {action.at:%H:%M}: {exc}"[:300])
    if scaling.batch.compute_environment:
        try:
            aws.client("batch").update_compute_environment(
                computeEnvironment=scaling.batch.compute_environment,
                computeResources={"desiredvCpus": scaling.batch.desired_vcpus},
            )
        except (ClientError, BotoCoreError) as exc:
            errors.append(f"batch {scaling.batch.compute_environment}: {exc}"[:300])
    return scaling.model_copy(update={"applied": not errors, "errors": errors})


def _capacity(level: int) -> dict[str, Any]:
    return {"MinCapacity": level, "MaxCapacity": level}
