"""The launch role's permissions boundary (templates/launch_role.py), and the role's key
allows and denies proven with @cloud-copilot/iam-simulate (tests/iam_simulate.mjs, the same
harness as the product's, run once per module with node; `make test` installs it with `npm ci`)."""

import json
from unittest.mock import ANY

import pytest

from tests.helpers import rendered, violations
from tests.iam_simulator import simulate
from tests.test_launch_role import (
    ACCOUNT,
    BOUNDARY,
    SAMPLE,
    STACK,
    VIA_CLOUDFORMATION,
    _list,
    boundary_policy,
    granting_action,
    resolve,
    role_policies,
    template,
)

# --- The permissions boundary -------------------------------------------------------------


def attached_actions(resources, role_id):
    """Every action the policies in ``resources`` give the role ``role_id``."""
    actions = set()
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        if {"Ref": role_id} not in properties.get("Roles", []):
            continue
        for statement in properties["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Deny" or "Action" in statement, "NotAction allow"
            actions.update(_list(statement.get("Action", [])))
    return actions


def boundary_allows(action):
    return any(
        statement["Effect"] == "Allow"
        and granting_action({"Action": _list(statement["Action"])}, action)
        for statement in boundary_policy()["Statement"]
    )


def test_the_boundary_allows_everything_the_product_roles_do():
    resources = rendered()["Resources"]
    roles = [lid for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) >= 2
    for role in roles:
        assert resources[role]["Properties"].get("ManagedPolicyArns") is None, role
        missing = sorted(a for a in attached_actions(resources, role) if not boundary_allows(a))
        assert missing == [], f"{role}: add {missing} to BOUNDARY_* in launch_role_actions.py"
    assert not boundary_allows("iam:PassRole")


def test_the_boundary_denies_everything_outside_the_product_services():
    deny = [s for s in boundary_policy()["Statement"] if s["Effect"] == "Deny"]
    assert [s["Resource"] for s in deny] == [["*"]]
    kept = {action.split(":")[0] for action in deny[0]["NotAction"]}
    assert kept == {"cloudwatch", "ec2", "ecr", "lambda", "logs", "s3", "sqs"}
    assert "PermissionsBoundary" not in json.dumps(template()["Resources"]["LaunchRole"])
    outputs = template()["Outputs"]
    assert outputs["PermissionsBoundaryArn"]["Value"] == {"Ref": "PermissionsBoundary"}
    boundary = template()["Resources"]["PermissionsBoundary"]["Properties"]
    assert resolve(boundary["ManagedPolicyName"]) == BOUNDARY.rsplit("/", 1)[1]
    assert "Roles" not in boundary, "a boundary, not a policy of the launch role"


# --- Key decisions, proven with @cloud-copilot/iam-simulate ------------------------------

LAUNCH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{SAMPLE['RoleName']}"
PRODUCT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-CustodianRole-A1B2C3D4E5F6"
OTHER_ACCOUNT = "210987654321"
ALLOWED, EXPLICIT, IMPLICIT = "Allowed", "ExplicitlyDenied", "ImplicitlyDenied"
ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def launch_case(action, resource, expected, context=None, account=ACCOUNT, **extra):
    """A request the launch role makes through CloudFormation (context: what it adds)."""
    return {
        "principal": LAUNCH_ROLE, "action": action, "resource": resource, "accountId": account,
        "context": {**VIA_CLOUDFORMATION, **(context or {})},
        "identityPolicies": role_policies(), "expected": expected, **extra,
    }  # fmt: skip


def product_role_case(action, resource, expected, context=None, account=ACCOUNT):
    """A request a product role with the boundary makes, even if its own policy allowed all."""
    return {
        "principal": PRODUCT_ROLE, "action": action, "resource": resource, "accountId": account,
        "context": context or {}, "identityPolicies": [ADMIN], "boundaries": [boundary_policy()],
        "expected": expected,
    }  # fmt: skip


def key_cases():
    bounded = {"iam:PermissionsBoundary": BOUNDARY}
    other_boundary = {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/Open"}
    other_product_role = f"arn:aws:iam::{ACCOUNT}:role/SC-123-pp-abc-SomethingElse-XYZ"
    published = f"arn:aws:s3:::{SAMPLE['ArtifactBucketPrefix']}-{ACCOUNT}-eu-west-1/v1.json"
    open_bucket = {
        "Version": "2012-10-17",
        "Statement": [  # lets anyone read: identity decides
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": published}
        ],
    }
    boundary_arn = BOUNDARY
    return {
        "create role with the boundary": launch_case(
            "iam:CreateRole", PRODUCT_ROLE, ALLOWED, bounded),
        "create role without a boundary": launch_case("iam:CreateRole", PRODUCT_ROLE, EXPLICIT),
        "create role with another boundary": launch_case(
            "iam:CreateRole", PRODUCT_ROLE, EXPLICIT, other_boundary),
        "create role of a foreign name": launch_case(
            "iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/Admin", IMPLICIT, bounded),
        "inline policy on the custodian role": launch_case(
            "iam:PutRolePolicy", PRODUCT_ROLE, ALLOWED, bounded),
        "inline policy on another product's role": launch_case(
            "iam:PutRolePolicy", other_product_role, IMPLICIT, bounded),
        "drop a boundary": launch_case(
            "iam:DeleteRolePermissionsBoundary", PRODUCT_ROLE, EXPLICIT, bounded),
        "swap the boundary": launch_case(
            "iam:PutRolePermissionsBoundary", PRODUCT_ROLE, EXPLICIT, other_boundary),
        "rewrite the boundary": launch_case("iam:CreatePolicyVersion", boundary_arn, EXPLICIT),
        "direct call, not through CloudFormation": {
            **launch_case("iam:CreateRole", PRODUCT_ROLE, IMPLICIT), "context": bounded},
        "read a published template": launch_case(
            "s3:GetObject", published, ALLOWED, {"s3:ResourceAccount": ACCOUNT},
            resourcePolicy=open_bucket),
        "read a template from another account's bucket": launch_case(
            "s3:GetObject", published, IMPLICIT, {"s3:ResourceAccount": OTHER_ACCOUNT},
            account=OTHER_ACCOUNT, resourcePolicy=open_bucket),
        "bounded role: create a role": product_role_case(
            "iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/x", EXPLICIT),
        "bounded role: pass a role": product_role_case("iam:PassRole", PRODUCT_ROLE, EXPLICIT),
        "bounded role: assume a role": product_role_case(
            "sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/Admin", EXPLICIT),
        "bounded role: leave the organization": product_role_case(
            "organizations:LeaveOrganization", "*", EXPLICIT),
        "bounded role: its own objects": product_role_case(
            "s3:DeleteObject", "arn:aws:s3:::gc-prod-inputs/x", ALLOWED,
            {"s3:ResourceAccount": ACCOUNT}),
        "bounded role: objects of another account": product_role_case(
            "s3:PutObject", "arn:aws:s3:::exfiltrate/x", IMPLICIT,
            {"s3:ResourceAccount": OTHER_ACCOUNT}, account=OTHER_ACCOUNT),
        "bounded role: the region's zones (the zone plan)": product_role_case(
            "ec2:DescribeAvailabilityZones", "*", ALLOWED),
        "bounded role: the account's instances": product_role_case(
            "ec2:DescribeInstances", "*", IMPLICIT),
        "check the picked zones, with or without CloudFormation": {
            **launch_case("ec2:DescribeAvailabilityZones", "*", ALLOWED), "context": {}},
        "bounded role: a network interface here": product_role_case(
            "ec2:DeleteNetworkInterface",
            f"arn:aws:ec2:eu-west-1:{ACCOUNT}:network-interface/eni-0123456789abcdef0", ALLOWED),
    }  # fmt: skip


@pytest.fixture(scope="module")
def simulated():
    cases = {
        name: {k: v for k, v in case.items() if k != "expected"}
        for name, case in key_cases().items()
    }
    return simulate(cases)


@pytest.mark.parametrize("name", list(key_cases()))
def test_key_decisions_with_iam_simulate(simulated, name):
    assert simulated[name] == key_cases()[name]["expected"]


def test_every_product_role_can_carry_the_boundary():
    """Under Service Catalog the launch role creates no role without the boundary; stand-alone
    (`aws cloudformation deploy`) the parameter stays empty and roles have none."""
    product = rendered()
    parameter = product["Parameters"]["PermissionsBoundaryArn"]
    assert parameter["Default"] == "" and violations(parameter, "") == []
    assert violations(parameter, BOUNDARY) == []
    assert violations(parameter, "arn:aws:iam::aws:policy/AdministratorAccess")
    expected = {"Fn::If": [ANY, {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]}
    for logical_id, resource in product["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            assert resource["Properties"].get("PermissionsBoundary") == expected, logical_id
