"""The multi-account flow against Stubber: the management account publishes, shares the
portfolio with an OU and deploys the launch role there with a service-managed StackSet; a
member account then sees the product and the role.  A second run writes nothing."""

import shutil
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

import publish
from tests.publish_fixtures import (
    MEMBER_ACCOUNT,
    OU_ID,
    PORTFOLIO_ID,
    PRODUCT_NAME,
    REGION,
    ROLE,
    VERSION,
    portfolio_detail,
    product_summary,
    settings_with,
    template_bytes,
    write_dist,
)
from tests.publish_stubs import (
    CF_WRITE,
    S3_WRITE,
    SC_WRITE,
    Recorder,
    stub_first_publish,
    stub_reads,
)
from tests.test_publish_cli import description, moto_world, parse

ROOT = Path(__file__).resolve().parent.parent
STACK_SET = "gc-components-launch-role"
ORG_SETTINGS = {
    **settings_with(
        sharing={"organization_nodes": [OU_ID], "share_principals": True},
        launch_role_stack_set={"name": STACK_SET, "region": REGION, "deployment_targets": [OU_ID]},
    ),
    "regions": [REGION],
}


@pytest.fixture
def dist(tmp_path):
    directory = write_dist(tmp_path / "dist")
    shutil.copy(ROOT / "dist" / "launch-role.json", directory / "launch-role.json")
    return directory


def with_cloudformation(base):
    cfn = boto3.client("cloudformation", region_name=REGION)
    base.cfn_stub = Stubber(cfn)
    base.cfn_stub.activate()
    base.cfn_calls = Recorder(cfn)
    base.clients = publish.Clients(base.s3, base.clients.sts, base.sc, base.iam, cfn)
    return base


def stack_set_definition(body):
    parameters = [
        {"ParameterKey": "ArtifactBucketPrefix", "ParameterValue": "gc-test-templates"},
        {"ParameterKey": "RoleName", "ParameterValue": ROLE},
    ]
    return {
        "StackSetName": STACK_SET,
        "TemplateBody": body,
        "Parameters": parameters,
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
        "CallAs": "SELF",
    }


def stub_stack_set_created(stub, body):
    stub.add_response("describe_organizations_access", {"Status": "ENABLED"}, {"CallAs": "SELF"})
    stub.add_client_error(
        "describe_stack_set",
        "StackSetNotFoundException",
        expected_params={"StackSetName": STACK_SET, "CallAs": "SELF"},
    )
    create = {
        **stack_set_definition(body),
        "Description": "Grand Challenge components runtime: the Service Catalog launch role",
        "PermissionModel": "SERVICE_MANAGED",
        "ManagedExecution": {"Active": True},
    }
    stub.add_response("create_stack_set", {"StackSetId": f"{STACK_SET}:1a2b3c"}, create)
    instances = {
        "StackSetName": STACK_SET,
        "DeploymentTargets": {"OrganizationalUnitIds": [OU_ID]},
        "Regions": [REGION],
        "OperationPreferences": {
            "RegionConcurrencyType": "PARALLEL",
            "FailureTolerancePercentage": 0,
            "MaxConcurrentPercentage": 100,
        },
        "CallAs": "SELF",
    }
    stub.add_response("create_stack_instances", {"OperationId": "op-1"}, instances)
    stub.add_response(
        "describe_stack_set_operation",
        {
            "StackSetOperation": {
                "OperationId": "op-1",
                "StackSetId": f"{STACK_SET}:1a2b3c",
                "Action": "CREATE",
                "Status": "SUCCEEDED",
            }
        },
        {"StackSetName": STACK_SET, "OperationId": "op-1", "CallAs": "SELF"},
    )


def stub_stack_set_current(stub, body):
    stub.add_response("describe_organizations_access", {"Status": "ENABLED"})
    definition = stack_set_definition(body)
    stack_set = {
        "StackSetName": STACK_SET,
        "StackSetId": f"{STACK_SET}:1a2b3c",
        "Status": "ACTIVE",
        "TemplateBody": body,
        "Parameters": definition["Parameters"],
        "Capabilities": definition["Capabilities"],
        "AutoDeployment": definition["AutoDeployment"],
        "PermissionModel": "SERVICE_MANAGED",
        "OrganizationalUnitIds": [OU_ID],
        "Regions": [REGION],
    }
    stub.add_response("describe_stack_set", {"StackSet": stack_set})


def stub_share(stub):
    node = {"Type": "ORGANIZATIONAL_UNIT", "Value": OU_ID}
    stub.add_response(
        "create_portfolio_share",
        {"PortfolioShareToken": "share-abcdefghijklm"},
        {"PortfolioId": PORTFOLIO_ID, "OrganizationNode": node, "SharePrincipals": True},
    )
    stub.add_response(
        "describe_portfolio_share_status",
        {
            "PortfolioShareToken": "share-abcdefghijklm",
            "PortfolioId": PORTFOLIO_ID,
            "OrganizationNodeValue": OU_ID,
            "Status": "COMPLETED",
        },
    )


@pytest.fixture
def org_world(monkeypatch):
    with moto_world(monkeypatch) as base:
        yield with_cloudformation(base)


def run(clients, dist, *argv, version=VERSION):
    args = parse("--regions", REGION, "--version", version, *argv)
    return publish.main(
        args, ORG_SETTINGS, dist, client_factory=lambda region: clients, sleep=lambda s: None
    )


def member_clients():
    sc = boto3.client("servicecatalog", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    sc_stub, iam_stub = Stubber(sc), Stubber(iam)
    sc_stub.activate()
    iam_stub.activate()
    sc_stub.add_response(
        "list_accepted_portfolio_shares",
        {"PortfolioDetails": [portfolio_detail()]},
        {"PortfolioShareType": "AWS_ORGANIZATIONS"},
    )
    sc_stub.add_response(
        "search_products",
        {"ProductViewSummaries": [product_summary()]},
        {"Filters": {"FullTextSearch": [PRODUCT_NAME]}},
    )
    role = {
        "Path": "/",
        "RoleName": ROLE,
        "RoleId": "AROAEXAMPLEEXAMPLE123",
        "Arn": f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{ROLE}",
        "CreateDate": "2025-01-01T00:00:00Z",
    }
    iam_stub.add_response("get_role", {"Role": role}, {"RoleName": ROLE})
    return publish.Clients(None, None, sc, iam), (sc_stub, iam_stub)


def test_management_account_shares_and_deploys_the_launch_role_then_a_member_sees_the_product(
    org_world, dist, capsys
):
    world = org_world
    world.create_launch_role()
    body = template_bytes()
    launch_role = (dist / "launch-role.json").read_text()

    stub_reads(world.stub, exists=False, org_access="ENABLED")
    stub_first_publish(world.stub, description=description(body), name=VERSION)
    stub_share(world.stub)
    stub_stack_set_created(world.cfn_stub, launch_role)
    assert run(world.clients, dist) == 0, capsys.readouterr()
    world.stub.assert_no_pending_responses()
    world.cfn_stub.assert_no_pending_responses()
    out = capsys.readouterr().out
    assert f"StackSet {STACK_SET} ({REGION})" in out

    # unchanged: the next commit's run reads everything and writes nothing anywhere
    for recorder in (world.s3_calls, world.sc_calls, world.cfn_calls):
        recorder.calls.clear()
    published = {"Id": "pa-0000000000001", "Name": VERSION, "Description": description(body)}
    share = {
        "PrincipalId": OU_ID,
        "Type": "ORGANIZATIONAL_UNIT",
        "Accepted": True,
        "ShareTagOptions": False,
        "SharePrincipals": True,
    }
    stub_reads(
        world.stub,
        exists=True,
        artifacts=[published],
        matching=[published],
        shares=[share],
        org_access="ENABLED",
    )
    stub_stack_set_current(world.cfn_stub, launch_role)
    assert run(world.clients, dist, version="v1.2.0-2-gdef5678") == 0, capsys.readouterr()
    assert world.sc_calls.writes(SC_WRITE) == []
    assert world.s3_calls.writes(S3_WRITE) == []
    assert world.cfn_calls.writes(CF_WRITE) == []
    capsys.readouterr()

    assert_a_member_sees_the_product(dist, capsys)


def assert_a_member_sees_the_product(dist, capsys):
    """The member account, with its own credentials, sees the shared product and the role."""
    clients, stubs = member_clients()
    assert (
        publish.main(
            parse("--regions", REGION, "--version", VERSION, "--check-member"),
            ORG_SETTINGS,
            dist,
            client_factory=lambda region: clients,
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        f"ok: portfolio {PORTFOLIO_ID} is shared with this account through AWS Organizations" in out
    )
    assert "ok: product prod-abcdefghijklm can be launched by this identity" in out
    assert f"ok: launch role '{ROLE}' exists" in out
    for stub in stubs:
        stub.assert_no_pending_responses()
