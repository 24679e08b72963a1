"""Decisions about product versions: reuse published bytes, create, and retire old ones."""

from __future__ import annotations

import json
import re

from templates.preview import Change, TemplateError, replacements

from .actions import Action, Plan, Ref
from .config import PublishConfig, Target, product_fields
from .state import Artifact, CatalogState, Context, PreviousTemplate

#: Warn this many versions before the per-product quota.
QUOTA_HEADROOM = 20
QUOTA_HELP = (
    "delete inactive versions (aws servicecatalog delete-provisioning-artifact) or ask for a "
    "higher 'versions per product' quota in Service Quotas (service code servicecatalog) and "
    "set publish.version_quota"
)


def artifact_parameters(target: Target, context: Context) -> dict:
    return {
        "Name": target.version,
        "Description": target.description,
        "Info": {"LoadTemplateFromURL": context.url},
        "Type": "CLOUD_FORMATION_TEMPLATE",
        "DisableTemplateValidation": False,
    }


def published_as(artifacts: tuple[Artifact, ...], target: Target) -> Artifact | None:
    """The version already holding the target's bytes: the same name first, else the newest."""
    same = [a for a in artifacts if a.sha256 == target.sha256]
    same.sort(key=lambda a: (a.name == target.version, a.active, a.created), reverse=True)
    return same[0] if same else None


def conflicting(artifacts: tuple[Artifact, ...], target: Target) -> list[Artifact]:
    """Versions named like the target that hold other bytes (versions are never changed)."""
    return [a for a in artifacts if a.name == target.version and a.sha256 != target.sha256]


def upgrade_from(artifacts: tuple[Artifact, ...], target: Target) -> Artifact | None:
    """The version whose template the upgrade preview compares the target with: the newest
    active one, when the target becomes a new version (None otherwise: nothing to read)."""
    if conflicting(artifacts, target) or published_as(artifacts, target) is not None:
        return None
    return max((a for a in artifacts if a.active), key=lambda a: (a.created, a.id), default=None)


def plan_version(
    config: PublishConfig, target: Target, context: Context, state: CatalogState
) -> Plan:
    plan = Plan()
    named = conflicting(state.artifacts, target)
    if named:
        plan.blockers.append(
            f"version {target.version!r} is already published ({named[0].id}) with another "
            f"template; published versions are never changed: release a new version"
        )
        return plan
    existing = published_as(state.artifacts, target)
    if existing is not None:
        _reuse(plan, existing, target, state)
        plan.extend(retire(config, state, existing.id))
        return plan
    if not _within_quota(plan, config, len(state.artifacts)):
        return plan
    plan.creates_version, plan.version = True, target.version
    plan.extend(plan_upgrade_check(config, target, state.previous))
    if state.product is None:
        plan.creates_product = True
        plan.add(_create_product(config, target, context))
    else:
        params = {
            "ProductId": state.product["ProductId"],
            "Parameters": artifact_parameters(target, context),
        }
        summary = f"create version {target.version!r} from {context.url}, wait until AVAILABLE"
        outputs = {"artifact_id": ("ProvisioningArtifactDetail", "Id")}
        plan.add(
            Action(
                "servicecatalog",
                "CreateProvisioningArtifact",
                params,
                summary,
                outputs,
                ("version",),
            )
        )
    plan.extend(retire(config, state, None))
    return plan


def plan_upgrade_check(
    config: PublishConfig, target: Target, previous: PreviousTemplate | None
) -> Plan:
    """Refuse (or, with --allow-replacement, warn about) a new version that stacks on the
    previous one cannot be updated to without replacing or removing a stateful resource."""
    plan = Plan()
    if previous is None:
        return plan
    upgrade = (
        f"updating stacks from version {previous.version!r} ({previous.id}) to {target.version!r}"
    )
    problem, destructive, new = previous.problem, [], None
    if problem is None:
        try:
            new = json.loads(target.body)
            destructive = replacements(previous.template, new, None, target.region).destructive
        except TemplateError as exc:
            problem = f"the preview cannot read the templates: {exc}"
    if problem is not None:
        finding = f"cannot tell whether {upgrade} replaces a stateful resource: {problem}"
    elif destructive:
        finding = (
            f"{upgrade} would {', '.join(_describe(change) for change in destructive)}; "
            f"inspect it with `{_inspect_command(previous, target)}`"
        )
        if from_per_region_template(previous.template, new):
            finding += f"; {per_region_switch_advice(previous.version)}"
    else:
        plan.notes.append(f"{upgrade} replaces or removes no stateful resource")
        return plan
    if config.allow_replacement:
        plan.warnings.append(f"{finding}; publishing anyway (--allow-replacement)")
    else:
        plan.blockers.append(f"{finding}; pass --allow-replacement to publish anyway")
    return plan


def _inspect_command(previous: PreviousTemplate, target: Target) -> str:
    """The preview of the same update at the command line, on the exact bytes stacks run on
    (a git revision may not be named like the version, nor hold the same dist/ files)."""
    return (
        f"aws s3 cp {previous.location} previous.json && python build.py diff previous.json "
        f"{target.template} --region {target.region}"
    )


#: The parameters of a template built for one region: one per zone id (ZoneEuc1Az1).
PER_REGION_ZONE_PARAMETER = re.compile(r"^Zone[A-Z][a-z]+[0-9]+Az[0-9]+$")


def from_per_region_template(old: object, new: object) -> bool:
    """Whether the update moves stacks from a per-region template (zones switched by id) to
    the one template (zones picked by name): a one-time move with its own procedure."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return False
    old_parameters, new_parameters = old.get("Parameters") or {}, new.get("Parameters") or {}
    return "AvailabilityZones" in new_parameters and any(
        PER_REGION_ZONE_PARAMETER.match(name) for name in old_parameters
    )


def per_region_switch_advice(previous_version: str) -> str:
    return (
        f"this is the one-time move from the per-region templates to the one template: a stack "
        f"on {previous_version!r} cannot update in one step (the new subnets need the CIDRs its "
        "subnets hold: the update fails and rolls back, nothing is lost); it moves by resource "
        "import with `python build.py migrate --from-stack`, which re-creates nothing, then its "
        "provisioned product is updated to this version (README: Upgrading a stack made from a "
        f"per-region template); {previous_version!r} stays usable meanwhile (deprecated, never "
        "deactivated while products run on it)"
    )


def _describe(change: Change) -> str:
    maybe = "" if change.certain else "possibly "
    return f"{maybe}{change.action} {change.logical_id} ({change.resource_type}; {change.stateful})"


def _reuse(plan: Plan, existing: Artifact, target: Target, state: CatalogState) -> None:
    plan.known["artifact_id"] = existing.id
    plan.version = existing.name
    product_id = state.product["ProductId"]
    if existing.name == target.version:
        plan.notes.append(f"version {existing.name!r} is published as {existing.id}")
    else:
        plan.notes.append(
            f"template sha256:{target.sha256[:12]}… is already published as version "
            f"{existing.name!r} ({existing.id}): no new version for {target.version!r}"
        )
    if existing.status == "FAILED":
        plan.blockers.append(
            f"version {existing.name!r} ({existing.id}) is FAILED; delete it and publish again"
        )
    elif existing.status == "CREATING":
        params = {"ProductId": product_id, "ProvisioningArtifactId": existing.id}
        summary = f"wait for version {existing.name!r} to become AVAILABLE"
        plan.add(
            Action(
                "servicecatalog",
                "DescribeProvisioningArtifact",
                params,
                summary,
                waits=("version",),
            )
        )
    if not existing.active:
        params = {
            "ProductId": product_id,
            "ProvisioningArtifactId": existing.id,
            "Active": True,
            "Guidance": "DEFAULT",
        }
        summary = f"reactivate version {existing.name!r} ({existing.id})"
        plan.add(Action("servicecatalog", "UpdateProvisioningArtifact", params, summary))


def _within_quota(plan: Plan, config: PublishConfig, count: int) -> bool:
    after = count + 1
    if after > config.version_quota:
        plan.blockers.append(
            f"the product holds {count} versions, its quota is {config.version_quota}: {QUOTA_HELP}"
        )
        return False
    if after > config.version_quota - QUOTA_HEADROOM:
        plan.warnings.append(
            f"the product will hold {after} of at most {config.version_quota} versions: {QUOTA_HELP}"
        )
    return True


def _create_product(config: PublishConfig, target: Target, context: Context) -> Action:
    params = {
        "Name": config.product["name"],
        "ProductType": "CLOUD_FORMATION_TEMPLATE",
        "ProvisioningArtifactParameters": artifact_parameters(target, context),
        **{param: value for param, _, value in product_fields(config) if value},
    }
    return Action(
        "servicecatalog",
        "CreateProduct",
        params,
        f"create product {config.product['name']!r} with version {target.version!r}, wait until "
        "it is AVAILABLE and searchable",
        outputs={
            "product_id": ("ProductViewDetail", "ProductViewSummary", "ProductId"),
            "artifact_id": ("ProvisioningArtifactDetail", "Id"),
        },
        waits=("version", "product_searchable"),
    )


def lifecycle_changes(
    artifacts: tuple[Artifact, ...], target_id: str | None, keep_active: int, in_use: frozenset[str]
) -> list[tuple[Artifact, dict]]:
    """Updates so versions older than the target are DEPRECATED and at most ``keep_active``
    versions (the target included) stay active.  The target and versions provisioned products
    run on are never deactivated.  ``target_id`` None: a version about to be created."""
    target = next((a for a in artifacts if a.id == target_id), None)
    others = [a for a in artifacts if a.id != target_id]
    older = {a.id for a in others if target is None or a.created < target.created}
    ranked = sorted((a for a in others if a.active), key=lambda a: (a.created, a.id), reverse=True)
    keep_ids = {a.id for a in ranked[: keep_active - 1]} | {target_id} | set(in_use)
    if target is not None and target.created < max(
        (a.created for a in others), default=target.created
    ):
        keep_ids |= {a.id for a in others if a.created > target.created}  # newer stay as they are
    changes = []
    for artifact in sorted(others, key=lambda a: (a.created, a.id)):
        update: dict = {}
        if artifact.id in older and artifact.guidance != "DEPRECATED":
            update["Guidance"] = "DEPRECATED"
        if artifact.active and artifact.id not in keep_ids:
            update["Active"] = False
        if update:
            changes.append((artifact, update))
    return changes


def retire(config: PublishConfig, state: CatalogState, target_id: str | None) -> Plan:
    plan = Plan()
    product_id = state.product["ProductId"] if state.product else Ref("product_id")
    for artifact, update in lifecycle_changes(
        state.artifacts, target_id, config.keep_active_versions, state.in_use
    ):
        words = [
            w
            for w, on in (("deprecate", "Guidance" in update), ("deactivate", "Active" in update))
            if on
        ]
        params = {"ProductId": product_id, "ProvisioningArtifactId": artifact.id, **update}
        summary = f"{' and '.join(words)} version {artifact.name!r} ({artifact.id})"
        plan.add(Action("servicecatalog", "UpdateProvisioningArtifact", params, summary))
    kept = sorted(a.name for a in state.artifacts if a.id in state.in_use and a.id != target_id)
    if kept:
        plan.notes.append(f"provisioned products run on {', '.join(kept)}: never deactivated")
    return plan
