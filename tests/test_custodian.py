"""custodian: the one custom-resource function routes each event to its handler.

Every behaviour runs twice: through the package modules and through the inlined source the
template ships as ``Code.ZipFile`` (exec'd into a fresh namespace, which is what Lambda runs).
"""

import ast

import boto3
import pytest
from moto import mock_aws

from templates.functions import custodian, ecr_repository, s3_network_acl, zone_plan
from templates.inline import inline_source
from tests.conftest import FakeContext, make_event

REGION = "eu-central-1"
S3_CIDRS = ["3.5.0.0/19", "52.216.0.0/15", "54.231.0.0/16"]  # moto's S3 prefix list, sorted
WRITES = {"CreateNetworkAclEntry", "ReplaceNetworkAclEntry", "DeleteNetworkAclEntry"}


@pytest.fixture(scope="module")
def ec2():
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture(scope="module")
def code_session():
    """The boto3 session behind ``boto3.client`` in the code under test, recording its calls."""
    session = boto3.Session()
    session.calls = []
    session.events.register(
        "before-parameter-build", lambda model, **_: session.calls.append(model.name)
    )
    return session


@pytest.fixture
def aws_calls(ec2, code_session, monkeypatch):
    """AWS calls of the code under test, all answered by moto (``ec2`` keeps it running)."""
    monkeypatch.setenv("AWS_REGION", REGION)
    code_session.calls.clear()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", code_session)
    return code_session.calls


@pytest.fixture(scope="module")
def inlined_source():
    return inline_source("custodian")


@pytest.fixture(params=["package", "inlined"])
def handler(request, inlined_source, monkeypatch):
    """The custodian's entry point, as a package function or from the inlined program."""
    if request.param == "package":
        return custodian.handler
    namespace = {"__name__": "index"}
    exec(compile(inlined_source, "index.py", "exec"), namespace)

    def package_code_used(*args, **kwargs):
        raise AssertionError("the inlined program called the package's module")

    for name in ("handler", "apply", "sync", "s3_prefix_list"):
        monkeypatch.setattr(s3_network_acl, name, package_code_used)
    monkeypatch.setitem(custodian.HANDLERS, "Custom::S3NetworkAclEntries", package_code_used)
    assert namespace["handler"].__globals__ is namespace
    return namespace["handler"]


@pytest.fixture
def acl(ec2):
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]


def s3_entries(ec2, acl_id):
    """(egress, rule number, CIDR, from port) of every entry, sorted."""
    acl = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    return sorted(
        (entry["Egress"], entry["RuleNumber"], entry["CidrBlock"], entry["PortRange"]["From"])
        for entry in acl["Entries"]
    )


SYNCED = sorted(
    (egress, number, cidr, 443 if egress else 1024)
    for number, cidr in enumerate(S3_CIDRS, start=100)
    for egress in (False, True)
)


def test_routes_s3_network_acl_entries_events(handler, ec2, acl, aws_calls, cfn_responses):
    create = make_event(
        "Create",
        cfn_responses.url,
        {"NetworkAclId": acl},
        ResourceType="Custom::S3NetworkAclEntries",
    )
    assert handler(create, FakeContext()) is None

    body = cfn_responses.only_body()
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == acl
    assert body["Data"]["Cidrs"] == ",".join(S3_CIDRS)
    assert body["Data"]["PrefixListId"].startswith("pl-")
    assert s3_entries(ec2, acl) == SYNCED
    assert sum(name in WRITES for name in aws_calls) == 6

    aws_calls.clear()
    delete = make_event(
        "Delete",
        cfn_responses.url,
        {"NetworkAclId": acl},
        ResourceType="Custom::S3NetworkAclEntries",
        PhysicalResourceId=acl,
    )
    assert handler(delete, FakeContext()) is None
    assert cfn_responses.bodies[-1]["Status"] == "SUCCESS"
    assert aws_calls == []
    assert s3_entries(ec2, acl) == SYNCED


def test_routes_the_daily_schedule_without_answering(handler, ec2, acl, aws_calls, cfn_responses):
    assert handler({"NetworkAclId": acl}, FakeContext()) is None
    assert s3_entries(ec2, acl) == SYNCED
    assert cfn_responses.requests == []


def test_s3_network_acl_failure_is_answered(handler, ec2, acl, aws_calls, cfn_responses):
    event = make_event("Create", cfn_responses.url, {}, ResourceType="Custom::S3NetworkAclEntries")
    assert handler(event, FakeContext()) is None
    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED"
    assert "NetworkAclId" in body["Reason"]
    assert aws_calls == []


def test_routes_repository_on_delete_events(handler, ec2, aws_calls, cfn_responses, monkeypatch):
    if handler is not custodian.handler:  # the inlined program must use its own copy
        monkeypatch.setattr(ecr_repository, "delete_repository", None)
    name = "gc/routed/image"
    stack_id = make_event("Delete", "")["StackId"]
    tag = {"Key": ecr_repository.OPT_IN_TAG_KEY, "Value": stack_id}
    ecr = boto3.Session().client("ecr", region_name=REGION)  # not recorded in aws_calls
    ecr.create_repository(repositoryName=name, tags=[tag])
    delete = make_event(
        "Delete",
        cfn_responses.url,
        {"RepositoryName": name, "KeepImages": "false"},
        ResourceType="Custom::RepositoryOnDelete",
        PhysicalResourceId=f"repository:{name}",
    )
    assert handler(delete, FakeContext()) is None
    body = cfn_responses.only_body()
    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", f"repository:{name}")
    assert aws_calls == ["ListTagsForResource", "DeleteRepository"]
    assert ecr.describe_repositories()["repositories"] == []


def test_routes_zone_plan_events(handler, ec2, aws_calls, cfn_responses, monkeypatch):
    if handler is not custodian.handler:  # the inlined program must use its own copy
        monkeypatch.setattr(zone_plan, "place", None)
        monkeypatch.setattr(zone_plan, "plan", None)
    properties = {"Zones": ["eu-central-1c", "eu-central-1a"], "VpcCidr": "10.0.0.0/16"}
    create = make_event("Create", cfn_responses.url, properties, ResourceType="Custom::ZonePlan")
    assert handler(create, FakeContext()) is None
    body = cfn_responses.only_body()
    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", f"{REGION}-zone-plan")
    assert body["Data"] == {"CidrA": "10.0.0.0/20", "CidrC": "10.0.32.0/20"}  # az1, az3
    assert aws_calls == ["DescribeAvailabilityZones"]


@pytest.mark.parametrize("request_type", ["Create", "Update"])
@pytest.mark.parametrize("resource_type", ["Custom::Nope", None])
def test_unknown_resource_type_fails(
    handler, request_type, resource_type, aws_calls, cfn_responses
):
    event = make_event(
        request_type,
        cfn_responses.url,
        {"NetworkAclId": "acl-0123456789abcdef0"},
        ResourceType=resource_type,
    )
    if resource_type is None:
        del event["ResourceType"]
    assert handler(event, FakeContext()) is None

    body = cfn_responses.only_body()
    assert body["Status"] == "FAILED"
    assert body["Reason"] == f"No handler for {resource_type!r}"
    assert body["RequestId"] == event["RequestId"]
    assert body["LogicalResourceId"] == event["LogicalResourceId"]
    assert body["PhysicalResourceId"] == f"failed-create-{event['RequestId']}"
    assert aws_calls == []


@pytest.mark.parametrize("resource_type", ["Custom::Nope", None])
def test_unknown_resource_type_delete_succeeds_so_the_stack_can_go(
    handler, resource_type, aws_calls, cfn_responses
):
    event = make_event(
        "Delete", cfn_responses.url, {}, ResourceType=resource_type, PhysicalResourceId="old-id"
    )
    assert handler(event, FakeContext()) is None
    body = cfn_responses.only_body()
    assert (body["Status"], body["PhysicalResourceId"]) == ("SUCCESS", "old-id")
    assert aws_calls == []


def test_unknown_resource_type_without_response_url_is_dropped(handler, aws_calls, cfn_responses):
    event = make_event("Create", "", ResourceType="Custom::Nope")
    del event["ResponseURL"]
    assert handler(event, FakeContext()) is None
    assert cfn_responses.requests == []
    assert aws_calls == []


@pytest.mark.parametrize(
    "event", [None, "Create", 42, ["NetworkAclId"], [{"NetworkAclId": "acl-1"}]]
)
def test_ignores_events_that_are_not_objects(handler, event, aws_calls, cfn_responses, capsys):
    assert handler(event, FakeContext()) is None
    assert "ignored event that is not an object" in capsys.readouterr().out
    assert cfn_responses.requests == []
    assert aws_calls == []


def test_inlined_program_is_self_contained_and_wired(inlined_source):
    tree = ast.parse(inlined_source)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    modules = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in imports
        for alias in node.names
    }
    assert all(getattr(node, "level", 0) == 0 for node in imports)
    assert not any(module.startswith("templates") for module in modules)

    namespace = {"__name__": "index"}
    exec(compile(inlined_source, "index.py", "exec"), namespace)
    route = namespace["HANDLERS"]["Custom::S3NetworkAclEntries"]
    assert route is namespace["s3_network_acl_handler"]
    assert (
        namespace["HANDLERS"]["Custom::RepositoryOnDelete"] is namespace["ecr_repository_handler"]
    )
    assert namespace["HANDLERS"]["Custom::ZonePlan"] is namespace["zone_plan_handler"]
    assert route.__globals__ is namespace
    assert namespace["handler"].__code__.co_filename == "index.py"
