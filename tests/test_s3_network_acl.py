"""s3_network_acl: custom-resource and scheduled events in; the ACL's entries and the response out.

Runs against moto's EC2, which ships the AWS-managed ``com.amazonaws.<region>.s3`` prefix list.
"""

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends

from templates.functions import s3_network_acl
from tests.conftest import FakeContext, answer_of

REGION = "eu-central-1"
S3_LIST = f"com.amazonaws.{REGION}.s3"
MOTO_S3_CIDRS = ["3.5.0.0/19", "52.216.0.0/15", "54.231.0.0/16"]  # moto's list, sorted
UNKNOWN_ACL = "acl-0000000000000dead"
INBOUND = (1024, 65535)
HTTPS = (443, 443)
DENY_ALL = [
    (False, 32767, "-1", "deny", "0.0.0.0/0", None),
    (True, 32767, "-1", "deny", "0.0.0.0/0", None),
]
WRITES = ("CreateNetworkAclEntry", "ReplaceNetworkAclEntry", "DeleteNetworkAclEntry")


@pytest.fixture(scope="module")
def ec2():
    """One in-process moto EC2 for the module; every test builds its own ACL in it."""
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture(autouse=True)
def lambda_region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", REGION)  # set by Lambda; the handler reads it


@pytest.fixture(scope="module")
def code_session():
    """The boto3 session the code under test gets from ``boto3.client`` (one per module: loading
    the EC2 model is slow), recording (operation, parameters) of every call it makes."""
    session = boto3.Session()
    session.calls = []
    session.events.register(
        "before-parameter-build",
        lambda params, model, **_: session.calls.append((model.name, params)),
    )
    return session


@pytest.fixture
def aws_calls(ec2, code_session, monkeypatch):
    """AWS calls made by the code under test; the tests' own ``ec2`` client is not recorded."""
    code_session.calls.clear()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", code_session)
    return code_session.calls


@pytest.fixture
def s3_list(ec2):
    """moto's S3 prefix list object, restored after the test.

    moto's ModifyManagedPrefixList fails on AWS-managed lists (they have no version), so
    tests change the entries in moto's backend; the handler still reads them through the API.
    """
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    found = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [S3_LIST]}]
    )["PrefixLists"]
    assert len(found) == 1
    prefix_list = backend.managed_prefix_lists[found[0]["PrefixListId"]]
    saved = dict(prefix_list.entries)
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=prefix_list.id)["Entries"]
    assert sorted(entry["Cidr"] for entry in entries) == MOTO_S3_CIDRS
    yield prefix_list
    prefix_list.entries = saved
    backend.managed_prefix_lists[prefix_list.id] = prefix_list


def set_s3_cidrs(prefix_list, cidrs):
    prefix_list.entries = {None: [{"Cidr": cidr, "Description": "test"} for cidr in cidrs]}


def remove_s3_list(prefix_list):
    del ec2_backends[DEFAULT_ACCOUNT_ID][REGION].managed_prefix_lists[prefix_list.id]


@pytest.fixture
def acl(ec2):
    """A fresh custom ACL as AWS makes it: only the final deny-all rule 32767 each way."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    acl_id = ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]
    for egress in (False, True):
        add_entry(ec2, acl_id, egress, 32767, "0.0.0.0/0", None, protocol="-1", action="deny")
    return acl_id


def add_entry(ec2, acl_id, egress, rule_number, cidr, ports, protocol="6", action="allow"):
    ec2.create_network_acl_entry(
        NetworkAclId=acl_id,
        Egress=egress,
        RuleNumber=rule_number,
        Protocol=protocol,
        RuleAction=action,
        CidrBlock=cidr,
        **({"PortRange": {"From": ports[0], "To": ports[1]}} if ports else {}),
    )


def entries(ec2, acl_id):
    """The ACL's entries as sorted (egress, rule, protocol, action, cidr, (from, to) or None)."""
    acl = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    return sorted(
        (
            entry["Egress"],
            entry["RuleNumber"],
            entry["Protocol"],
            entry["RuleAction"],
            entry["CidrBlock"],
            (entry["PortRange"]["From"], entry["PortRange"]["To"])
            if "PortRange" in entry
            else None,
        )
        for entry in acl["Entries"]
    )


def s3_rules(cidrs, first_rule=100):
    """What the ACL must hold for ``cidrs`` (already sorted): rule pairs, then deny-all."""
    rules = []
    for number, cidr in enumerate(cidrs, start=first_rule):
        rules.append((False, number, "6", "allow", cidr, INBOUND))
        rules.append((True, number, "6", "allow", cidr, HTTPS))
    return sorted(rules + DENY_ALL)


def writes(calls):
    """The ACL writes made, in order, as (operation, egress, rule number)."""
    return [
        (name, params["Egress"], params["RuleNumber"]) for name, params in calls if name in WRITES
    ]


def invoke(cfn_responses, request_type, properties, **overrides):
    """Send one custom-resource event; returns the single response it produced."""
    return answer_of(
        s3_network_acl.handler,
        cfn_responses,
        request_type,
        properties,
        ResourceType="Custom::S3NetworkAclEntries",
        **overrides,
    )


def test_create_writes_one_rule_pair_per_s3_cidr(ec2, acl, s3_list, aws_calls, cfn_responses):
    body = invoke(cfn_responses, "Create", {"NetworkAclId": acl})

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == acl
    assert body["Data"] == {
        "PrefixListId": s3_list.id,
        "Cidrs": "3.5.0.0/19,52.216.0.0/15,54.231.0.0/16",
    }
    assert entries(ec2, acl) == [
        (False, 100, "6", "allow", "3.5.0.0/19", (1024, 65535)),
        (False, 101, "6", "allow", "52.216.0.0/15", (1024, 65535)),
        (False, 102, "6", "allow", "54.231.0.0/16", (1024, 65535)),
        (False, 32767, "-1", "deny", "0.0.0.0/0", None),
        (True, 100, "6", "allow", "3.5.0.0/19", (443, 443)),
        (True, 101, "6", "allow", "52.216.0.0/15", (443, 443)),
        (True, 102, "6", "allow", "54.231.0.0/16", (443, 443)),
        (True, 32767, "-1", "deny", "0.0.0.0/0", None),
    ]
    assert sorted(writes(aws_calls)) == sorted(
        ("CreateNetworkAclEntry", egress, number)
        for egress in (False, True)
        for number in (100, 101, 102)
    )
    assert all(params.get("NetworkAclId", acl) == acl for _, params in aws_calls)


@pytest.mark.parametrize("again", ["Create", "Update"])
def test_repeating_a_synced_request_writes_nothing(
    again, ec2, acl, s3_list, aws_calls, cfn_responses
):
    first = invoke(cfn_responses, "Create", {"NetworkAclId": acl})
    aws_calls.clear()

    overrides = {"PhysicalResourceId": acl} if again == "Update" else {}
    second = invoke(cfn_responses, again, {"NetworkAclId": acl}, **overrides)

    assert second["Status"] == "SUCCESS", second["Reason"]
    assert (second["PhysicalResourceId"], second["Data"]) == (acl, first["Data"])
    assert writes(aws_calls) == []
    assert "DescribeNetworkAcls" in [name for name, _ in aws_calls]  # it did look
    assert entries(ec2, acl) == s3_rules(MOTO_S3_CIDRS)


def layout(inbound, outbound):
    """What the ACL must hold: S3 rules by number ({rule number: cidr} each way), then deny-all."""
    rules = [(False, n, "6", "allow", cidr, INBOUND) for n, cidr in inbound.items()]
    rules += [(True, n, "6", "allow", cidr, HTTPS) for n, cidr in outbound.items()]
    return sorted(rules + DENY_ALL)


def test_stale_entries_are_corrected_and_nothing_else_touched(
    ec2, acl, s3_list, aws_calls, cfn_responses
):
    add_entry(ec2, acl, False, 100, "3.5.0.0/19", INBOUND)  # right
    add_entry(ec2, acl, True, 100, "3.5.0.0/19", HTTPS)  # right
    add_entry(ec2, acl, False, 101, "52.216.0.0/15", (80, 80))  # wrong port
    add_entry(ec2, acl, True, 101, "52.216.0.0/15", HTTPS)  # right
    add_entry(ec2, acl, False, 102, "198.51.100.0/24", INBOUND)  # CIDR not in the list
    add_entry(ec2, acl, True, 102, "54.231.0.0/16", HTTPS, action="deny")  # wrong action
    add_entry(ec2, acl, False, 103, "203.0.113.0/24", INBOUND)  # no longer wanted
    add_entry(ec2, acl, True, 103, "203.0.113.0/24", HTTPS)  # no longer wanted
    add_entry(ec2, acl, True, 90, "0.0.0.0/0", HTTPS)  # someone's extra rule

    body = invoke(cfn_responses, "Update", {"NetworkAclId": acl}, PhysicalResourceId=acl)

    assert body["Status"] == "SUCCESS", body["Reason"]
    # Right rules stay where they are; a missing one goes to its CIDR's next free slot
    # (index + 100, + 200, ...), never over an existing entry.
    assert entries(ec2, acl) == layout(
        {100: "3.5.0.0/19", 201: "52.216.0.0/15", 202: "54.231.0.0/16"},
        {100: "3.5.0.0/19", 101: "52.216.0.0/15", 202: "54.231.0.0/16"},
    )
    # Every missing rule is written first, then the rest goes, one re-read before each delete.
    assert writes(aws_calls) == [
        ("CreateNetworkAclEntry", False, 201),
        ("CreateNetworkAclEntry", False, 202),
        ("CreateNetworkAclEntry", True, 202),
    ] + [("DeleteNetworkAclEntry", False, number) for number in (101, 102, 103)] + [
        ("DeleteNetworkAclEntry", True, number) for number in (90, 102, 103)
    ]
    names = [name for name, _ in aws_calls]
    assert all(
        names[i - 1] == "DescribeNetworkAcls"
        for i, name in enumerate(names)
        if name == "DeleteNetworkAclEntry"
    )


def test_follows_the_prefix_list_as_it_changes(ec2, acl, s3_list, aws_calls, cfn_responses):
    invoke(cfn_responses, "Create", {"NetworkAclId": acl})
    grown = ["16.12.0.0/18", "18.34.0.0/19", "3.5.0.0/19", "54.231.0.0/16"]
    set_s3_cidrs(s3_list, ["54.231.0.0/16", "3.5.0.0/19", "18.34.0.0/19", "16.12.0.0/18"])

    body = invoke(cfn_responses, "Update", {"NetworkAclId": acl}, PhysicalResourceId=acl)

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"] == {"PrefixListId": s3_list.id, "Cidrs": ",".join(grown)}
    # Kept CIDRs keep their rules; new ones take slot index + 200 (index + 100 is taken).
    grown_layout = {100: "3.5.0.0/19", 102: "54.231.0.0/16", 200: grown[0], 201: grown[1]}
    assert entries(ec2, acl) == layout(grown_layout, grown_layout)

    set_s3_cidrs(s3_list, ["3.5.0.0/19"])
    aws_calls.clear()
    assert s3_network_acl.handler({"NetworkAclId": acl}, FakeContext()) is None

    assert entries(ec2, acl) == s3_rules(["3.5.0.0/19"])
    assert writes(aws_calls) == [
        ("DeleteNetworkAclEntry", egress, n) for egress in (False, True) for n in (102, 200, 201)
    ]
    assert len(cfn_responses.requests) == 2  # the scheduled run answered nobody


def test_delete_is_a_no_op(ec2, acl, s3_list, aws_calls, cfn_responses):
    invoke(cfn_responses, "Create", {"NetworkAclId": acl})
    aws_calls.clear()

    body = invoke(cfn_responses, "Delete", {"NetworkAclId": acl}, PhysicalResourceId=acl)

    assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", acl, {})
    assert aws_calls == []
    assert entries(ec2, acl) == s3_rules(MOTO_S3_CIDRS)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (remove_s3_list, f"LookupError: no prefix list {S3_LIST}"),
        (
            lambda prefix_list: set_s3_cidrs(prefix_list, []),
            f"prefix list {S3_LIST} has no entries",
        ),
    ],
    ids=["absent", "empty"],
)
def test_unusable_prefix_list_fails_without_writing(
    change, reason, ec2, acl, s3_list, aws_calls, cfn_responses
):
    change(s3_list)

    body = invoke(cfn_responses, "Create", {"NetworkAclId": acl})

    assert body["Status"] == "FAILED"
    assert reason in body["Reason"]
    assert body["PhysicalResourceId"].startswith("failed-create-")
    assert writes(aws_calls) == []
    assert entries(ec2, acl) == DENY_ALL


def test_scheduled_event_syncs_without_answering(ec2, acl, s3_list, aws_calls, cfn_responses):
    assert s3_network_acl.handler({"NetworkAclId": acl}, FakeContext()) is None
    assert entries(ec2, acl) == s3_rules(MOTO_S3_CIDRS)
    assert len(writes(aws_calls)) == 6

    aws_calls.clear()
    assert s3_network_acl.handler({"NetworkAclId": acl}, FakeContext()) is None
    assert writes(aws_calls) == []
    assert cfn_responses.requests == []


def test_scheduled_event_failure_is_raised_for_lambda_to_record(
    ec2, acl, s3_list, aws_calls, cfn_responses
):
    remove_s3_list(s3_list)
    with pytest.raises(LookupError, match=S3_LIST):
        s3_network_acl.handler({"NetworkAclId": acl}, FakeContext())
    assert writes(aws_calls) == []
    assert cfn_responses.requests == []


# request type, properties, extra event keys, status, reason fragment, physical id
# ("ACL" stands for the test's ACL id, "FAILED-CREATE" for failed-create-<RequestId>)
EVENT_TABLE = {
    "create without NetworkAclId": ("Create", {}, {}, "FAILED", "NetworkAclId", "FAILED-CREATE"),
    "update without NetworkAclId": (
        "Update",
        {},
        {"PhysicalResourceId": "ACL"},
        "FAILED",
        "KeyError: 'NetworkAclId'",
        "ACL",
    ),
    "create for an unknown ACL": (
        "Create",
        {"NetworkAclId": UNKNOWN_ACL},
        {},
        "FAILED",
        "ClientError",
        "FAILED-CREATE",
    ),
    "delete": (
        "Delete",
        {"NetworkAclId": "ACL"},
        {"PhysicalResourceId": "ACL"},
        "SUCCESS",
        "",
        "ACL",
    ),
    "delete of an unknown ACL": (
        "Delete",
        {"NetworkAclId": UNKNOWN_ACL},
        {"PhysicalResourceId": UNKNOWN_ACL},
        "SUCCESS",
        "",
        UNKNOWN_ACL,
    ),
    "delete after a failed create": (
        "Delete",
        {},
        {"PhysicalResourceId": "failed-create-1"},
        "SUCCESS",
        "Nothing was created",
        "failed-create-1",
    ),
    "unknown request type": (
        "Rollback",
        {"NetworkAclId": "ACL"},
        {},
        "FAILED",
        "Malformed event",
        "FAILED-CREATE",
    ),
}


@pytest.mark.parametrize(
    ("request_type", "properties", "extra", "status", "reason", "physical_id"),
    EVENT_TABLE.values(),
    ids=EVENT_TABLE.keys(),
)
def test_event_table(
    request_type,
    properties,
    extra,
    status,
    reason,
    physical_id,
    ec2,
    acl,
    s3_list,
    aws_calls,
    cfn_responses,
):
    def resolve(value):
        return acl if value == "ACL" else value

    body = invoke(
        cfn_responses,
        request_type,
        {key: resolve(value) for key, value in properties.items()},
        **{key: resolve(value) for key, value in extra.items()},
    )

    assert body["Status"] == status
    assert reason in body["Reason"]
    if physical_id == "FAILED-CREATE":
        assert body["PhysicalResourceId"] == f"failed-create-{body['RequestId']}"
    else:
        assert body["PhysicalResourceId"] == resolve(physical_id)
    assert writes(aws_calls) == []
    if request_type == "Delete":
        assert aws_calls == []
    assert entries(ec2, acl) == DENY_ALL


def many_cidrs(count, third_octet=0):
    return sorted(f"10.{third_octet}.{n}.0/24" for n in range(count))


@pytest.fixture
def aws_answers(code_session):
    """``aws_answers[operation] = [error codes]``: the next such calls get AWS's error instead."""
    answers = {}

    def before_call(model, **_):
        if answers.get(model.name):
            code = answers[model.name].pop(0)
            response = AWSResponse(f"https://ec2.{REGION}.amazonaws.com/", 400, {}, None)
            return response, {"Error": {"Code": code, "Message": "simulated"}}
        return None

    code_session.events.register("before-call.ec2.*", before_call)
    yield answers
    code_session.events.unregister("before-call.ec2.*", before_call)


def test_fresh_acl_fills_the_default_quota_exactly(ec2, acl, s3_list, aws_calls, cfn_responses):
    set_s3_cidrs(s3_list, many_cidrs(19))  # 19 rules + deny-all = 20 per direction

    body = invoke(cfn_responses, "Create", {"NetworkAclId": acl})

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert entries(ec2, acl) == s3_rules(many_cidrs(19))


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_swap_past_the_quota_fails_naming_it_and_writes_nothing(
    request_type, ec2, acl, s3_list, aws_calls, cfn_responses
):
    for number, cidr in enumerate(many_cidrs(10), start=100):
        add_entry(ec2, acl, False, number, cidr, INBOUND)
        add_entry(ec2, acl, True, number, cidr, HTTPS)
    before = entries(ec2, acl)
    set_s3_cidrs(s3_list, many_cidrs(10, third_octet=1))  # 10 old + 10 new + deny-all = 21

    overrides = {"PhysicalResourceId": acl} if request_type == "Update" else {}
    body = invoke(cfn_responses, request_type, {"NetworkAclId": acl}, **overrides)

    assert body["Status"] == "FAILED"
    assert f"QuotaError: {acl} needs 21 inbound rules" in body["Reason"]
    assert "'network ACL rules per ACL' (20 per direction)" in body["Reason"]
    assert "L-2AEEBF1A" in body["Reason"] and "NetworkAclRuleQuota" in body["Reason"]
    assert writes(aws_calls) == []
    assert entries(ec2, acl) == before

    raised = invoke(
        cfn_responses, request_type, {"NetworkAclId": acl, "NetworkAclRuleQuota": "21"}, **overrides
    )

    assert raised["Status"] == "SUCCESS", raised["Reason"]
    assert entries(ec2, acl) == s3_rules(many_cidrs(10, third_octet=1), first_rule=200)


def test_scheduled_sync_takes_the_raised_quota_too(ec2, acl, s3_list, aws_calls, cfn_responses):
    set_s3_cidrs(s3_list, many_cidrs(25))

    with pytest.raises(s3_network_acl.QuotaError, match="needs 26 inbound rules"):
        s3_network_acl.handler({"NetworkAclId": acl}, FakeContext())
    assert writes(aws_calls) == []

    s3_network_acl.handler({"NetworkAclId": acl, "NetworkAclRuleQuota": 40}, FakeContext())
    assert entries(ec2, acl) == s3_rules(many_cidrs(25))


@pytest.mark.parametrize("quota", ["19", "41", "twenty", "", None, "20.5"])
def test_bad_rule_quota_fails_in_one_line(quota, ec2, acl, s3_list, aws_calls, cfn_responses):
    body = invoke(cfn_responses, "Create", {"NetworkAclId": acl, "NetworkAclRuleQuota": quota})

    assert body["Status"] == "FAILED"
    assert body["Reason"] == f"ValueError: NetworkAclRuleQuota must be 20 to 40: {quota!r}"
    assert writes(aws_calls) == []


def test_quota_refused_by_aws_fails_naming_it(
    ec2, acl, s3_list, aws_calls, aws_answers, cfn_responses
):
    # The quota was lowered, or a concurrent writer filled the ACL after our read.
    aws_answers["CreateNetworkAclEntry"] = ["NetworkAclEntryLimitExceeded"]

    body = invoke(cfn_responses, "Create", {"NetworkAclId": acl})

    assert body["Status"] == "FAILED"
    assert f"QuotaError: {acl} is full:" in body["Reason"]
    assert "(NetworkAclEntryLimitExceeded per direction) is too low" in body["Reason"]
    assert "L-2AEEBF1A" in body["Reason"]


def test_writes_another_sync_made_first_are_taken_as_done(
    ec2, acl, s3_list, aws_calls, aws_answers, cfn_responses
):
    add_entry(ec2, acl, False, 150, "198.51.100.0/24", INBOUND)  # an old CIDR's pair
    add_entry(ec2, acl, True, 150, "198.51.100.0/24", HTTPS)
    aws_answers["CreateNetworkAclEntry"] = ["NetworkAclEntryAlreadyExists"]
    aws_answers["DeleteNetworkAclEntry"] = ["InvalidNetworkAclEntry.NotFound"]

    body = invoke(cfn_responses, "Create", {"NetworkAclId": acl})

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert entries(ec2, acl) == s3_rules(MOTO_S3_CIDRS)
    made = writes(aws_calls)
    # The refused create is planned again after a fresh read, the "gone" delete too.
    assert made.count(("CreateNetworkAclEntry", False, 100)) == 2
    assert made.count(("DeleteNetworkAclEntry", False, 150)) == 2
