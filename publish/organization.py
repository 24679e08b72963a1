"""The launch role in member accounts: a service-managed CloudFormation StackSet deploying
dist/launch-role.json to organizational units, with auto-deployment to new accounts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .actions import Action, Plan
from .aws import get_or_none
from .config import PublishConfig, StackSetConfig

AUTO_DEPLOYMENT = {"Enabled": True, "RetainStacksOnAccountRemoval": False}
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
OPERATION_PREFERENCES = {
    "RegionConcurrencyType": "PARALLEL",
    "FailureTolerancePercentage": 0,
    "MaxConcurrentPercentage": 100,
}
DESCRIPTION = "Grand Challenge components runtime: the Service Catalog launch role"


@dataclass(frozen=True)
class StackSetState:
    exists: bool
    trusted_access: str = "ENABLED"  # CloudFormation's access to AWS Organizations
    template: dict[str, Any] | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    capabilities: frozenset[str] = frozenset()
    auto_deployment: dict[str, Any] | None = None
    targets: frozenset[str] = frozenset()  # OU / root ids with instances
    regions: frozenset[str] = frozenset()


def read_stack_set(cfn: Any, config: StackSetConfig) -> StackSetState:
    access = cfn.describe_organizations_access(CallAs=config.call_as).get("Status", "DISABLED")
    response = get_or_none(
        cfn.describe_stack_set,
        {"StackSetNotFoundException"},
        StackSetName=config.name,
        CallAs=config.call_as,
    )
    stack_set = (response or {}).get("StackSet")
    if not stack_set or stack_set.get("Status") == "DELETED":
        return StackSetState(exists=False, trusted_access=access)
    return StackSetState(
        exists=True,
        trusted_access=access,
        template=json.loads(stack_set.get("TemplateBody") or "null"),
        parameters=tuple(
            sorted(
                (p["ParameterKey"], p.get("ParameterValue", ""))
                for p in stack_set.get("Parameters", [])
            )
        ),
        capabilities=frozenset(stack_set.get("Capabilities", [])),
        auto_deployment=stack_set.get("AutoDeployment"),
        targets=frozenset(stack_set.get("OrganizationalUnitIds", [])),
        regions=frozenset(stack_set.get("Regions", [])),
    )


def stack_set_parameters(template: dict[str, Any], config: PublishConfig) -> list[dict[str, str]]:
    """The role name and bucket prefix from the settings, for the parameters the template has;
    every other parameter keeps the template's default."""
    values = {"RoleName": config.launch_role_name, "ArtifactBucketPrefix": config.bucket_prefix}
    declared = template.get("Parameters", {})
    return [
        {"ParameterKey": key, "ParameterValue": value}
        for key, value in sorted(values.items())
        if key in declared and value
    ]


def plan_stack_set(config: PublishConfig, body: bytes, state: StackSetState) -> Plan:
    plan = Plan()
    stack_set = config.stack_set
    call_as = {"CallAs": stack_set.call_as}
    template = json.loads(body)
    parameters = stack_set_parameters(template, config)
    if state.trusted_access != "ENABLED" and stack_set.call_as == "DELEGATED_ADMIN":
        plan.blockers.append(
            "CloudFormation StackSets have no trusted access to AWS Organizations: activate it "
            "from the management account (aws cloudformation activate-organizations-access)"
        )
    elif state.trusted_access != "ENABLED":
        summary = "activate CloudFormation StackSets' trusted access to AWS Organizations"
        plan.add(Action("cloudformation", "ActivateOrganizationsAccess", {}, summary))
    definition = {
        "StackSetName": stack_set.name,
        "TemplateBody": body.decode(),
        "Parameters": parameters,
        "Capabilities": CAPABILITIES,
        "AutoDeployment": AUTO_DEPLOYMENT,
        **call_as,
    }
    if not state.exists:
        create = {**definition, "Description": DESCRIPTION, "PermissionModel": "SERVICE_MANAGED"}
        create["ManagedExecution"] = {"Active": True}
        plan.add(
            Action("cloudformation", "CreateStackSet", create, f"create StackSet {stack_set.name}")
        )
    elif _differs(state, template, parameters):
        update = {**definition, "OperationPreferences": OPERATION_PREFERENCES}
        summary = f"update StackSet {stack_set.name} and its instances"
        plan.add(_operation("UpdateStackSet", update, summary))
    else:
        plan.notes.append(f"StackSet {stack_set.name} deploys the current launch-role template")
    plan.extend(_plan_instances(stack_set, state))
    return plan


def _differs(state: StackSetState, template: dict, parameters: list[dict[str, str]]) -> bool:
    wanted = tuple(sorted((p["ParameterKey"], p["ParameterValue"]) for p in parameters))
    current = tuple(p for p in state.parameters if p[0] in {key for key, _ in wanted})
    return (
        state.template != template
        or current != wanted
        or not set(CAPABILITIES) <= state.capabilities
        or (state.auto_deployment or {}) != AUTO_DEPLOYMENT
    )


def _plan_instances(stack_set: StackSetConfig, state: StackSetState) -> Plan:
    plan = Plan()
    wanted = set(stack_set.deployment_targets)
    region_deployed = stack_set.region in state.regions
    missing = sorted(wanted - state.targets) if region_deployed else sorted(wanted)
    if missing:
        params = {
            "StackSetName": stack_set.name,
            "DeploymentTargets": {"OrganizationalUnitIds": missing},
            "Regions": [stack_set.region],
            "OperationPreferences": OPERATION_PREFERENCES,
            "CallAs": stack_set.call_as,
        }
        summary = f"deploy the launch role to {', '.join(missing)} in {stack_set.region}"
        plan.add(_operation("CreateStackInstances", params, summary))
    else:
        plan.notes.append(f"launch role instances cover {', '.join(sorted(wanted))}")
    for extra in sorted(state.targets - wanted):
        plan.warnings.append(
            f"StackSet {stack_set.name} still deploys to {extra}, which the settings no longer "
            "name; remove it deliberately: aws cloudformation delete-stack-instances "
            f"--stack-set-name {stack_set.name} --deployment-targets OrganizationalUnitIds={extra} "
            f"--regions {stack_set.region} --no-retain-stacks"
        )
    return plan


def _operation(operation: str, params: dict[str, Any], summary: str) -> Action:
    outputs = {"operation_id": ("OperationId",)}
    return Action("cloudformation", operation, params, summary, outputs, ("stack_set_operation",))
