"""One scope (a region's catalog, or the launch-role StackSet): read, decide, apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .actions import Plan
from .apply import Executor
from .aws import Clients, describe_error
from .config import (
    LAUNCH_ROLE_TEMPLATE,
    PublishConfig,
    PublishError,
    Target,
    partition_for_region,
    read_template,
    template_url,
)
from .decide import plan_region
from .organization import plan_stack_set, read_stack_set
from .state import Context, read_bucket, read_catalog, read_previous_template
from .versions import upgrade_from

BUCKET_NAME_LIMIT = 63


@dataclass
class ScopeResult:
    scope: str
    target: Target | None = None
    context: Context | None = None
    plan: Plan | None = None
    error: str | None = None
    applied: bool = False
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.plan and self.plan.blockers)


def region_context(target: Target, identity: dict[str, Any], config: PublishConfig) -> Context:
    """Where ``target`` is published: the caller's account and the region's partition."""
    region, account = target.region, identity["Account"]
    partition, _ = partition_for_region(region)
    if identity["Arn"].split(":")[1] != partition:
        raise PublishError(f"the credentials are not for partition {partition} of {region}")
    bucket = f"{config.bucket_prefix}-{account}-{region}"
    if len(bucket) > BUCKET_NAME_LIMIT:
        raise PublishError(f"bucket name {bucket!r} is longer than 63 characters")
    return Context(region, account, partition, bucket, template_url(bucket, region, target.key))


def plan_catalog_region(
    clients: Clients, config: PublishConfig, target: Target, identity: dict[str, Any]
) -> tuple[Context, Plan]:
    """Read the region's state (read calls only) and decide."""
    context = region_context(target, identity, config)
    bucket = read_bucket(clients.s3, context, target.key)
    catalog = read_catalog(clients.servicecatalog, clients.iam, config, target)
    previous = upgrade_from(catalog.artifacts, target)
    if previous is not None:  # a new version: read what stacks would update from
        catalog = replace(catalog, previous=read_previous_template(clients.s3, context, previous))
    return context, plan_region(config, target, context, bucket, catalog)


def plan_launch_role_stack_set(
    clients: Clients, config: PublishConfig, dist_dir: Path
) -> tuple[None, Plan]:
    body = read_template(Path(dist_dir) / LAUNCH_ROLE_TEMPLATE)
    state = read_stack_set(clients.cloudformation, config.stack_set)
    return None, plan_stack_set(config, body, state)


def run_scope(
    result: ScopeResult,
    planner: Callable[[], tuple[Context | None, Plan]],
    executor: Executor,
    *,
    dry_run: bool,
    report: Callable[[str], None],
) -> ScopeResult:
    try:
        report("reading remote state")
        result.context, result.plan = planner()
        count = len(result.plan.actions)
        if result.plan.blockers:
            report(f"blocked: {result.plan.blockers[0]}")
            return result
        if dry_run:
            report(f"planned {count} call(s), dry run: nothing written")
            return result
        if count:
            result.ids = executor.apply(result.plan)
            result.applied = True
        report(f"done ({count} call(s))")
    except Exception as exc:  # noqa: BLE001 - one scope's failure must not hide the others
        result.error = describe_error(exc)
        report(f"failed: {result.error}")
    return result
