"""The launch-role StackSet decisions, from plain state: create, update, extend, leave alone."""

import json
from pathlib import Path

from publish.organization import (
    AUTO_DEPLOYMENT,
    StackSetState,
    plan_stack_set,
    stack_set_parameters,
)
from tests.publish_fixtures import OU_ID, REGION, ROLE, config_with

LAUNCH_ROLE = (Path(__file__).resolve().parent.parent / "dist" / "launch-role.json").read_bytes()
OTHER_OU = "ou-abcd-87654321"


def config(*targets, call_as="SELF"):
    stack_set = {
        "region": REGION,
        "deployment_targets": list(targets or [OU_ID]),
        "call_as": call_as,
    }
    return config_with(launch_role_stack_set=stack_set)


def deployed(body=LAUNCH_ROLE, targets=(OU_ID,), **overrides):
    parameters = tuple(
        sorted(
            (p["ParameterKey"], p["ParameterValue"])
            for p in stack_set_parameters(json.loads(body), config())
        )
    )
    state = {
        "exists": True,
        "template": json.loads(body),
        "parameters": parameters,
        "capabilities": frozenset({"CAPABILITY_NAMED_IAM"}),
        "auto_deployment": AUTO_DEPLOYMENT,
        "targets": frozenset(targets),
        "regions": frozenset({REGION}),
    }
    return StackSetState(**{**state, **overrides})


def operations(plan):
    return [action.operation for action in plan.actions]


def test_a_current_stack_set_plans_nothing():
    plan = plan_stack_set(config(), LAUNCH_ROLE, deployed())
    assert plan.actions == [] and plan.blockers == []


def test_a_missing_stack_set_is_created_service_managed_with_auto_deployment():
    plan = plan_stack_set(config(), LAUNCH_ROLE, StackSetState(exists=False))
    assert operations(plan) == ["CreateStackSet", "CreateStackInstances"]
    create, instances = (action.params for action in plan.actions)
    assert create["PermissionModel"] == "SERVICE_MANAGED"
    assert create["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert create["TemplateBody"] == LAUNCH_ROLE.decode()
    assert instances["DeploymentTargets"] == {"OrganizationalUnitIds": [OU_ID]}
    assert instances["Regions"] == [REGION]  # IAM is global: one region per account
    assert plan.actions[1].waits == ("stack_set_operation",)


def test_a_changed_template_or_role_name_updates_every_instance():
    changed = json.loads(LAUNCH_ROLE)
    changed["Description"] = "older"
    plan = plan_stack_set(config(), LAUNCH_ROLE, deployed(body=json.dumps(changed).encode()))
    assert operations(plan) == ["UpdateStackSet"]
    assert "DeploymentTargets" not in plan.actions[0].params  # all existing instances
    renamed = deployed(
        parameters=(("ArtifactBucketPrefix", "gc-test-templates"), ("RoleName", "Old"))
    )
    assert operations(plan_stack_set(config(), LAUNCH_ROLE, renamed)) == ["UpdateStackSet"]


def test_a_new_ou_gets_instances_and_a_dropped_one_is_only_warned_about():
    plan = plan_stack_set(
        config(OU_ID, OTHER_OU), LAUNCH_ROLE, deployed(targets=(OU_ID, "ou-abcd-00000000"))
    )
    assert operations(plan) == ["CreateStackInstances"]
    assert plan.actions[0].params["DeploymentTargets"] == {"OrganizationalUnitIds": [OTHER_OU]}
    assert "delete-stack-instances" in plan.warnings[0] and "ou-abcd-00000000" in plan.warnings[0]


def test_trusted_access_is_activated_by_the_management_account_only():
    plan = plan_stack_set(config(), LAUNCH_ROLE, deployed(trusted_access="DISABLED"))
    assert operations(plan) == ["ActivateOrganizationsAccess"]
    delegated = plan_stack_set(
        config(call_as="DELEGATED_ADMIN"), LAUNCH_ROLE, deployed(trusted_access="DISABLED")
    )
    assert delegated.actions == [] and "from the management account" in delegated.blockers[0]


def test_only_parameters_the_template_declares_are_passed():
    template = json.loads(LAUNCH_ROLE)
    assert {
        p["ParameterKey"]: p["ParameterValue"] for p in stack_set_parameters(template, config())
    } == {
        "ArtifactBucketPrefix": "gc-test-templates",
        "RoleName": ROLE,
    }
    template["Parameters"].pop("ArtifactBucketPrefix")
    assert [p["ParameterKey"] for p in stack_set_parameters(template, config())] == ["RoleName"]
