"""publish.py offline: moto for STS/S3, botocore's Stubber (validated against the real API model)
for Service Catalog, whose expected calls are strict and ordered."""

import argparse
import hashlib
import json
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber
from moto import mock_aws
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

import publish

ACCOUNT = "123456789012"  # moto's account
VERSION = "v1.2.0"
PORTFOLIO_NAME = "Grand Challenge"
PRODUCT_NAME = "Grand Challenge components runtime"
ROLE = "GrandChallengeComponentsLaunch"
PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:role/Researchers"
PORTFOLIO_ID = "port-abcdefghijklm"
PRODUCT_ID = "prod-abcdefghijklm"
T0 = datetime(2025, 1, 1, tzinfo=UTC)

SETTINGS = {
    "regions": {  # build.py's format: target region -> zone ids
        "eu-central-1": ["euc1-az1", "euc1-az2"],
        "us-east-1": ["use1-az1", "use1-az2"],
    },
    "publish": {
        "artifact_bucket_prefix": "gc-test-templates",
        "portfolio": {
            "name": PORTFOLIO_NAME,
            "provider": "Grand Challenge platform operators",
            "description": "Infrastructure for Grand Challenge components.",
        },
        "product": {
            "name": PRODUCT_NAME,
            "owner": "Grand Challenge platform operators",
            "distributor": "Grand Challenge",
            "description": "SageMaker training jobs in a locked-down VPC.",
            "support_url": "https://github.com/comic/grand-challenge.org",
            "support_email": "",
            "support_description": "Open an issue in the Grand Challenge repository.",
        },
        "launch_role_name": ROLE,
        "principals": [PRINCIPAL],
        "keep_active_versions": 3,
    },
}

SC_WRITE = re.compile(
    r"^(Create|Update|Delete|Associate|Disassociate|Copy|Import|Provision|Terminate|Execute)"
)
S3_WRITE = re.compile(r"^(Create|Put|Delete|Copy|Upload|Complete|Restore|Abort)")


# ------------------------------------------------------------------------------------ fixtures


def template_bytes(region, revision="1"):
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Grand Challenge components runtime ({region}, r{revision})",
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
    return json.dumps(template, sort_keys=True, separators=(",", ":")).encode()


def sha(body):
    return hashlib.sha256(body).hexdigest()


@pytest.fixture
def dist(tmp_path):
    directory = tmp_path / "dist"
    directory.mkdir()
    for region in SETTINGS["regions"]:
        (directory / f"{region}.json").write_bytes(template_bytes(region))
    return directory


def _tls_aware(original):
    """moto 5.2.5 ignores a `Bool` condition, so a bucket policy denying non-TLS requests
    denies every request.  Evaluate aws:SecureTransport (true unless a caller says otherwise:
    boto3 talks HTTPS) and leave everything else to moto."""

    def is_action_permitted(
        self, action, resource="*", principal=None, incoming_condition_values=None
    ):
        secure = (incoming_condition_values or {}).get("aws:SecureTransport", "true")
        wanted = self._statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
        if wanted is not None and str(wanted).lower() != secure:
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    return is_action_permitted


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setattr(
        IAMPolicyStatement,
        "is_action_permitted",
        _tls_aware(IAMPolicyStatement.is_action_permitted),
    )
    with mock_aws():
        yield


class Recorder:
    """Operation names of every call a client makes (registered before the Stubber, and on an
    event every handler sees, so unexpected calls are recorded too)."""

    def __init__(self, client):
        self.calls = []
        client.meta.events.register("before-parameter-build", self._record)

    def _record(self, model, **_):
        self.calls.append(model.name)

    def writes(self, pattern):
        return [name for name in self.calls if pattern.match(name)]


@dataclass
class FakeRegion:
    region: str
    clients: publish.Clients
    stub: Stubber
    s3_calls: Recorder
    sc_calls: Recorder

    @property
    def bucket(self):
        return f"gc-test-templates-{ACCOUNT}-{self.region}"

    def url(self, body):
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/templates/{sha(body)}.json"

    def sc_writes(self):
        return self.sc_calls.writes(SC_WRITE)

    def s3_writes(self):
        return self.s3_calls.writes(S3_WRITE)


def fake_region(region):
    """Clients for one region: moto behind S3/STS (needs an active mock), a Stubber behind
    Service Catalog."""
    s3 = boto3.client("s3", region_name=region)
    sts = boto3.client("sts", region_name=region)
    sc = boto3.client("servicecatalog", region_name=region)
    s3_calls, sc_calls = Recorder(s3), Recorder(sc)
    stub = Stubber(sc)
    stub.activate()
    return FakeRegion(region, publish.Clients(s3, sts, sc), stub, s3_calls, sc_calls)


def parse(*argv):
    parser = argparse.ArgumentParser(prog="build.py")
    commands = parser.add_subparsers(dest="command", required=True)
    publish.add_arguments(commands.add_parser("publish"))
    return parser.parse_args(["publish", *argv])


def run(fakes, dist, *argv, settings=SETTINGS, sleeps=None):
    clients = {fake.region: fake.clients for fake in fakes}
    regions = ",".join(fake.region for fake in fakes)
    args = parse("--regions", regions, "--version", VERSION, *argv)
    sleep = sleeps.append if sleeps is not None else (lambda seconds: None)
    return publish.main(args, settings, dist, client_factory=clients.__getitem__, sleep=sleep)


def table_row(out, region):
    rows = [line for line in out.splitlines() if line.startswith(f"{region} ")]
    assert len(rows) == 1, out
    return rows[0]


# ----------------------------------------------------------------------- Service Catalog stubs


def portfolio_detail(region, portfolio_id=PORTFOLIO_ID, name=PORTFOLIO_NAME, **overrides):
    folio = SETTINGS["publish"]["portfolio"]
    detail = {
        "Id": portfolio_id,
        "ARN": f"arn:aws:catalog:{region}:{ACCOUNT}:portfolio/{portfolio_id}",
        "DisplayName": name,
        "Description": folio["description"],
        "CreatedTime": T0,
        "ProviderName": folio["provider"],
    }
    detail.update(overrides)
    return detail


def product_view(region, product_id=PRODUCT_ID, name=PRODUCT_NAME, **overrides):
    product = SETTINGS["publish"]["product"]
    summary = {
        "Id": f"prodview-{product_id[5:]}",
        "ProductId": product_id,
        "Name": name,
        "Owner": product["owner"],
        "ShortDescription": product["description"],
        "Type": "CLOUD_FORMATION_TEMPLATE",
        "Distributor": product["distributor"],
        "HasDefaultPath": False,
        "SupportDescription": product["support_description"],
        "SupportUrl": product["support_url"],
    }
    summary.update(overrides)
    return {
        "ProductViewSummary": summary,
        "Status": "AVAILABLE",
        "ProductARN": f"arn:aws:catalog:{region}:{ACCOUNT}:product/{product_id}",
        "CreatedTime": T0,
    }


def artifact(artifact_id, name, body_sha, days, active=True, guidance="DEFAULT"):
    return {
        "Id": artifact_id,
        "Name": name,
        "Description": f"Release {name}, template sha256:{body_sha}",
        "Type": "CLOUD_FORMATION_TEMPLATE",
        "CreatedTime": T0 + timedelta(days=days),
        "Active": active,
        "Guidance": guidance,
    }


def token(region, *parts):
    return publish.idempotency_token(ACCOUNT, region, *parts)


def expect_search(fake, *pages):
    """list_portfolios / search_products_as_admin are expected by the caller; this one pages
    the product search."""
    for number, page in enumerate(pages):
        params = {"Filters": {"FullTextSearch": [PRODUCT_NAME]}, "ProductSource": "ACCOUNT"}
        if number:
            params["PageToken"] = f"search-{number}"
        response = {"ProductViewDetails": page}
        if number < len(pages) - 1:
            response["NextPageToken"] = f"search-{number + 1}"
        fake.stub.add_response("search_products_as_admin", response, params)


def expect_existing(fake, artifacts, *, status="AVAILABLE", same_name=True):
    """The reads of a region where portfolio, product, association, launch constraint and
    principal all exist.  ``same_name``: one of ``artifacts`` is named VERSION."""
    region, stub = fake.region, fake.stub
    stub.add_response("list_portfolios", {"PortfolioDetails": [portfolio_detail(region)]}, {})
    expect_search(fake, [product_view(region)])
    stub.add_response(
        "describe_product_as_admin", {"ProductViewDetail": product_view(region)}, {"Id": PRODUCT_ID}
    )
    stub.add_response(
        "list_provisioning_artifacts",
        {"ProvisioningArtifactDetails": artifacts},
        {"ProductId": PRODUCT_ID},
    )
    if same_name:
        current = next(a for a in artifacts if a["Name"] == VERSION)
        stub.add_response(
            "describe_provisioning_artifact",
            {"ProvisioningArtifactDetail": current, "Status": status},
            {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": current["Id"]},
        )
    expect_association_reads(fake)


def expect_association_reads(fake):
    stub = fake.stub
    stub.add_response(
        "list_portfolios_for_product",
        {"PortfolioDetails": [portfolio_detail(fake.region)]},
        {"ProductId": PRODUCT_ID},
    )
    stub.add_response(
        "list_constraints_for_portfolio",
        {
            "ConstraintDetails": [
                {"ConstraintId": "cons-abc", "Type": "LAUNCH", "Owner": ACCOUNT},
            ]
        },
        {"PortfolioId": PORTFOLIO_ID, "ProductId": PRODUCT_ID},
    )
    stub.add_response(
        "describe_constraint",
        {
            "ConstraintDetail": {"ConstraintId": "cons-abc", "Type": "LAUNCH"},
            "ConstraintParameters": json.dumps({"LocalRoleName": ROLE}),
            "Status": "AVAILABLE",
        },
        {"Id": "cons-abc"},
    )
    stub.add_response(
        "list_principals_for_portfolio",
        {"Principals": [{"PrincipalARN": PRINCIPAL, "PrincipalType": "IAM"}]},
        {"PortfolioId": PORTFOLIO_ID},
    )


def expect_first_publish(fake, body, *, fail_portfolio=False):
    """Nothing exists in Service Catalog: the reads, then every create."""
    region, stub = fake.region, fake.stub
    other = portfolio_detail(region, portfolio_id="port-other000000", name="Grand Challenge old")
    stub.add_response("list_portfolios", {"PortfolioDetails": [other]}, {})
    expect_search(fake, [])
    folio = SETTINGS["publish"]["portfolio"]
    create_portfolio = {
        "DisplayName": PORTFOLIO_NAME,
        "ProviderName": folio["provider"],
        "Description": folio["description"],
        "IdempotencyToken": token(region, "portfolio", PORTFOLIO_NAME),
    }
    if fail_portfolio:
        stub.add_client_error(
            "create_portfolio",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform servicecatalog:CreatePortfolio",
            http_status_code=400,
            expected_params=create_portfolio,
        )
        return
    stub.add_response(
        "create_portfolio", {"PortfolioDetail": portfolio_detail(region)}, create_portfolio
    )
    product = SETTINGS["publish"]["product"]
    new = artifact("pa-new000000001", VERSION, sha(body), days=0)
    stub.add_response(
        "create_product",
        {"ProductViewDetail": product_view(region), "ProvisioningArtifactDetail": new},
        {
            "Name": PRODUCT_NAME,
            "Owner": product["owner"],
            "Description": product["description"],
            "Distributor": product["distributor"],
            "SupportDescription": product["support_description"],
            "SupportUrl": product["support_url"],
            "ProductType": "CLOUD_FORMATION_TEMPLATE",
            "ProvisioningArtifactParameters": {
                "Name": VERSION,
                "Description": f"Release {VERSION}, template sha256:{sha(body)}",
                "Info": {"LoadTemplateFromURL": fake.url(body)},
                "Type": "CLOUD_FORMATION_TEMPLATE",
                "DisableTemplateValidation": False,
            },
            "IdempotencyToken": token(region, "product", PRODUCT_NAME, VERSION, sha(body)),
        },
    )
    wait = {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": new["Id"]}
    stub.add_response(
        "describe_provisioning_artifact",
        {"ProvisioningArtifactDetail": new, "Status": "CREATING"},
        wait,
    )
    stub.add_response(
        "describe_provisioning_artifact",
        {"ProvisioningArtifactDetail": new, "Status": "AVAILABLE"},
        wait,
    )
    stub.add_response(
        "associate_product_with_portfolio",
        {},
        {"ProductId": PRODUCT_ID, "PortfolioId": PORTFOLIO_ID},
    )
    stub.add_response(
        "create_constraint",
        {"ConstraintDetail": {"ConstraintId": "cons-abc", "Type": "LAUNCH"}, "Status": "CREATING"},
        {
            "PortfolioId": PORTFOLIO_ID,
            "ProductId": PRODUCT_ID,
            "Type": "LAUNCH",
            "Parameters": json.dumps({"LocalRoleName": ROLE}),
            "Description": f"Launch as the local IAM role {ROLE}",
            "IdempotencyToken": token(region, "launch", PORTFOLIO_ID, PRODUCT_ID, ROLE),
        },
    )
    stub.add_response(
        "associate_principal_with_portfolio",
        {},
        {"PortfolioId": PORTFOLIO_ID, "PrincipalARN": PRINCIPAL, "PrincipalType": "IAM"},
    )
    return new


FIRST_PUBLISH_SC_CALLS = [
    "ListPortfolios",
    "SearchProductsAsAdmin",
    "CreatePortfolio",
    "CreateProduct",
    "DescribeProvisioningArtifact",
    "DescribeProvisioningArtifact",
    "AssociateProductWithPortfolio",
    "CreateConstraint",
    "AssociatePrincipalWithPortfolio",
]


# ------------------------------------------------------------------------------------- tests


def test_first_publish_creates_everything(aws, dist, capsys):
    fake = fake_region("eu-central-1")
    body = (dist / "eu-central-1.json").read_bytes()
    expect_first_publish(fake, body)
    sleeps = []

    assert run([fake], dist, sleeps=sleeps) == 0

    fake.stub.assert_no_pending_responses()
    assert fake.sc_calls.calls == FIRST_PUBLISH_SC_CALLS
    assert sleeps == [publish.POLL_INTERVAL_SECONDS]  # polled CREATING once, then AVAILABLE
    out = capsys.readouterr().out
    assert re.search(
        rf"^eu-central-1\s+{PRODUCT_ID}\s+pa-new000000001\s+created product and version {VERSION}$",
        out,
        re.M,
    ), out

    s3 = fake.clients.s3
    key = f"templates/{sha(body)}.json"
    assert s3.get_object(Bucket=fake.bucket, Key=key)["Body"].read() == body
    assert s3.get_bucket_versioning(Bucket=fake.bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=fake.bucket)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=fake.bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"], True
    )
    policy = json.loads(s3.get_bucket_policy(Bucket=fake.bucket)["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert f"arn:aws:s3:::{fake.bucket}/*" in statement["Resource"]
    location = s3.get_bucket_location(Bucket=fake.bucket)["LocationConstraint"]
    assert location == "eu-central-1"
    evaluator = IAMPolicy(json.dumps(policy))
    for resource in (f"arn:aws:s3:::{fake.bucket}", f"arn:aws:s3:::{fake.bucket}/{key}"):
        plain = evaluator.is_action_permitted(
            "s3:GetObject", resource, None, {"aws:SecureTransport": "false"}
        )
        assert plain == PermissionResult.DENIED
        assert evaluator.is_action_permitted("s3:GetObject", resource) == PermissionResult.NEUTRAL


def test_republish_unchanged_makes_no_write_call(aws, dist, capsys):
    first = fake_region("eu-central-1")
    body = (dist / "eu-central-1.json").read_bytes()
    published = expect_first_publish(first, body)
    assert run([first], dist) == 0
    assert first.s3_writes()  # the first run did write: the counter works
    capsys.readouterr()

    again = fake_region("eu-central-1")
    expect_existing(again, [published])

    assert run([again], dist) == 0

    again.stub.assert_no_pending_responses()
    assert again.sc_writes() == []
    assert again.s3_writes() == []
    assert "PutObject" not in again.s3_calls.calls
    assert "HeadObject" in again.s3_calls.calls
    out = capsys.readouterr().out
    assert "nothing to do" in out
    row = table_row(out, "eu-central-1")
    assert row.split()[1:3] == [PRODUCT_ID, published["Id"]]
    assert row.endswith(f"unchanged; version {VERSION} already published")


def test_new_version_deprecates_older_and_deactivates_beyond_retention(aws, dist, capsys):
    fake = fake_region("eu-central-1")
    body = (dist / "eu-central-1.json").read_bytes()
    old = [
        artifact("pa-v0", "v0.9.0", "0" * 64, days=0, active=False, guidance="DEPRECATED"),
        artifact("pa-v1", "v1.0.0", "1" * 64, days=1, guidance="DEPRECATED"),
        artifact("pa-v2", "v1.1.0", "2" * 64, days=2),
        artifact("pa-v3", "v1.1.1", "3" * 64, days=3),
    ]
    expect_existing(fake, old, same_name=False)
    new = artifact("pa-v4", VERSION, sha(body), days=4)
    fake.stub.add_response(
        "create_provisioning_artifact",
        {"ProvisioningArtifactDetail": new, "Status": "CREATING"},
        {
            "ProductId": PRODUCT_ID,
            "Parameters": {
                "Name": VERSION,
                "Description": f"Release {VERSION}, template sha256:{sha(body)}",
                "Info": {"LoadTemplateFromURL": fake.url(body)},
                "Type": "CLOUD_FORMATION_TEMPLATE",
                "DisableTemplateValidation": False,
            },
            "IdempotencyToken": token("eu-central-1", "version", PRODUCT_ID, VERSION, sha(body)),
        },
    )
    fake.stub.add_response(
        "describe_provisioning_artifact",
        {"ProvisioningArtifactDetail": new, "Status": "AVAILABLE"},
        {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": "pa-v4"},
    )
    # keep_active_versions = 3: v1.2.0 (new), v1.1.1, v1.1.0 stay active; v1.0.0 goes.
    for artifact_id, update in [
        ("pa-v1", {"Active": False}),
        ("pa-v2", {"Guidance": "DEPRECATED"}),
        ("pa-v3", {"Guidance": "DEPRECATED"}),
    ]:
        fake.stub.add_response(
            "update_provisioning_artifact",
            {},
            {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": artifact_id, **update},
        )

    assert run([fake], dist) == 0

    fake.stub.assert_no_pending_responses()
    assert fake.sc_writes() == ["CreateProvisioningArtifact"] + ["UpdateProvisioningArtifact"] * 3
    out = capsys.readouterr().out
    assert table_row(out, "eu-central-1").endswith(f"created version {VERSION}")
    key = f"templates/{sha(body)}.json"
    assert fake.clients.s3.head_object(Bucket=fake.bucket, Key=key)["ContentLength"] == len(body)


def test_same_version_with_other_template_is_an_error_without_writes(aws, dist, capsys):
    fake = fake_region("eu-central-1")
    stale = artifact("pa-v4", VERSION, "f" * 64, days=4)
    stub = fake.stub
    stub.add_response("list_portfolios", {"PortfolioDetails": [portfolio_detail("eu-central-1")]})
    expect_search(fake, [product_view("eu-central-1")])
    stub.add_response("describe_product_as_admin", {"ProductViewDetail": product_view("x")})
    stub.add_response("list_provisioning_artifacts", {"ProvisioningArtifactDetails": [stale]})

    assert run([fake], dist) == 1

    stub.assert_no_pending_responses()
    assert fake.sc_writes() == []
    assert fake.s3_writes() == []
    assert fake.clients.s3.list_buckets()["Buckets"] == []
    out = capsys.readouterr().out
    assert table_row(out, "eu-central-1").endswith("FAILED")
    (error,) = [line for line in out.splitlines() if "ERROR:" in line]
    assert f"version '{VERSION}' is already published (pa-v4, sha256:{'f' * 64})" in error
    assert f"different template (sha256:{sha(template_bytes('eu-central-1'))})" in error


def test_failed_artifact_is_reported_and_nothing_is_deprecated(aws, dist, capsys):
    fake = fake_region("eu-central-1")
    body = (dist / "eu-central-1.json").read_bytes()
    expect_existing(fake, [artifact("pa-v3", "v1.1.1", "3" * 64, days=3)], same_name=False)
    new = artifact("pa-v4", VERSION, sha(body), days=4)
    fake.stub.add_response(
        "create_provisioning_artifact", {"ProvisioningArtifactDetail": new, "Status": "CREATING"}
    )
    fake.stub.add_response(
        "describe_provisioning_artifact",
        {
            "ProvisioningArtifactDetail": new,
            "Status": "FAILED",
            "Info": {"Error": "Template format error: Unresolved resource dependencies [Vpc]"},
        },
    )

    assert run([fake], dist) == 1

    fake.stub.assert_no_pending_responses()
    assert "UpdateProvisioningArtifact" not in fake.sc_calls.calls
    out = capsys.readouterr().out
    assert table_row(out, "eu-central-1").endswith("FAILED")
    (error,) = [line for line in out.splitlines() if "ERROR:" in line]
    assert f"version '{VERSION}' (pa-v4) FAILED" in error
    assert "Unresolved resource dependencies [Vpc]" in error
    assert "x create version" in out  # the failed step is marked
    assert "- deprecate version 'v1.1.1' (pa-v3) (not done)" in out


def test_artifact_stuck_creating_times_out(aws, dist, capsys):
    fake = fake_region("eu-central-1")
    body = (dist / "eu-central-1.json").read_bytes()
    expect_existing(fake, [], same_name=False)
    new = artifact("pa-v4", VERSION, sha(body), days=4)
    fake.stub.add_response("create_provisioning_artifact", {"ProvisioningArtifactDetail": new})
    polls = int(publish.POLL_TIMEOUT_SECONDS / publish.POLL_INTERVAL_SECONDS) + 1
    for _ in range(polls):
        fake.stub.add_response(
            "describe_provisioning_artifact",
            {"ProvisioningArtifactDetail": new, "Status": "CREATING"},
        )
    sleeps = []

    assert run([fake], dist, sleeps=sleeps) == 1

    fake.stub.assert_no_pending_responses()
    assert sum(sleeps) == publish.POLL_TIMEOUT_SECONDS
    assert "is still CREATING after 900 s" in capsys.readouterr().out


def test_one_failing_region_does_not_hide_the_other(aws, dist, capsys):
    good, bad = fake_region("eu-central-1"), fake_region("us-east-1")
    expect_first_publish(good, (dist / "eu-central-1.json").read_bytes())
    expect_first_publish(bad, (dist / "us-east-1.json").read_bytes(), fail_portfolio=True)

    assert run([good, bad], dist) == 1

    good.stub.assert_no_pending_responses()
    bad.stub.assert_no_pending_responses()
    captured = capsys.readouterr()
    assert table_row(captured.out, "eu-central-1").endswith(
        f"created product and version {VERSION}"
    )
    assert table_row(captured.out, "us-east-1").endswith("FAILED")
    errors = [line for line in captured.out.splitlines() if "ERROR:" in line]
    assert len(errors) == 1
    assert "access denied calling CreatePortfolio" in errors[0]
    assert "servicecatalog:CreatePortfolio" in errors[0]
    assert "1 region(s) failed: us-east-1" in captured.err
    assert "[us-east-1] failed: " in captured.err
    # us-east-1's bucket is set up before the portfolio step fails (no LocationConstraint there).
    assert bad.clients.s3.get_bucket_location(Bucket=bad.bucket)["LocationConstraint"] is None


def test_dry_run_reads_but_never_writes(aws, dist, capsys):
    fake = fake_region("eu-central-1")
    expect_existing(fake, [artifact("pa-v3", "v1.1.1", "3" * 64, days=3)], same_name=False)

    assert run([fake], dist, "--dry-run") == 0

    fake.stub.assert_no_pending_responses()
    assert fake.sc_writes() == []
    assert fake.s3_writes() == []
    assert fake.clients.s3.list_buckets()["Buckets"] == []
    out = capsys.readouterr().out
    assert f"+ would create bucket {fake.bucket}" in out
    assert f"+ would create version '{VERSION}'" in out
    assert "+ would deprecate version 'v1.1.1' (pa-v3)" in out
    row = table_row(out, "eu-central-1")
    assert row.split()[1:3] == [PRODUCT_ID, "(new)"]
    assert row.endswith(f"would create version {VERSION}")


def test_product_and_portfolio_are_found_on_later_pages(aws, dist, capsys):
    first = fake_region("eu-central-1")
    body = (dist / "eu-central-1.json").read_bytes()
    published = expect_first_publish(first, body)
    assert run([first], dist) == 0
    capsys.readouterr()

    fake = fake_region("eu-central-1")
    region, stub = fake.region, fake.stub
    stub.add_response(
        "list_portfolios",
        {
            "PortfolioDetails": [portfolio_detail(region, "port-other00001", "Other")],
            "NextPageToken": "folio-2",
        },
        {},
    )
    stub.add_response(
        "list_portfolios",
        {"PortfolioDetails": [portfolio_detail(region)]},
        {"PageToken": "folio-2"},
    )
    lookalike = product_view(region, "prod-lookalike00", f"{PRODUCT_NAME} (legacy)")
    expect_search(fake, [lookalike], [product_view(region)])
    stub.add_response("describe_product_as_admin", {"ProductViewDetail": product_view(region)})
    stub.add_response("list_provisioning_artifacts", {"ProvisioningArtifactDetails": [published]})
    stub.add_response(
        "describe_provisioning_artifact",
        {"ProvisioningArtifactDetail": published, "Status": "AVAILABLE"},
    )
    expect_association_reads(fake)

    assert run([fake], dist) == 0

    stub.assert_no_pending_responses()
    assert fake.sc_calls.calls.count("SearchProductsAsAdmin") == 2
    assert fake.sc_writes() == []
    assert table_row(capsys.readouterr().out, region).split()[1] == PRODUCT_ID


def test_descriptive_fields_are_updated_only_when_they_differ(aws, dist, capsys):
    first = fake_region("eu-central-1")
    published = expect_first_publish(first, (dist / "eu-central-1.json").read_bytes())
    assert run([first], dist) == 0
    capsys.readouterr()

    fake = fake_region("eu-central-1")
    region, stub = fake.region, fake.stub
    stale_folio = portfolio_detail(region, ProviderName="Someone else")
    stub.add_response("list_portfolios", {"PortfolioDetails": [stale_folio]})
    expect_search(fake, [product_view(region)])
    stale_product = product_view(region, SupportUrl="https://example.org/old")
    stub.add_response("describe_product_as_admin", {"ProductViewDetail": stale_product})
    stub.add_response("list_provisioning_artifacts", {"ProvisioningArtifactDetails": [published]})
    stub.add_response(
        "describe_provisioning_artifact",
        {"ProvisioningArtifactDetail": published, "Status": "AVAILABLE"},
    )
    expect_association_reads(fake)
    provider = SETTINGS["publish"]["portfolio"]["provider"]
    stub.add_response("update_portfolio", {}, {"Id": PORTFOLIO_ID, "ProviderName": provider})
    support_url = SETTINGS["publish"]["product"]["support_url"]
    stub.add_response("update_product", {}, {"Id": PRODUCT_ID, "SupportUrl": support_url})

    assert run([fake], dist) == 0

    stub.assert_no_pending_responses()
    assert fake.sc_writes() == ["UpdatePortfolio", "UpdateProduct"]
    assert fake.s3_writes() == []
    out = capsys.readouterr().out
    assert table_row(out, region).endswith(
        f"applied 2 change(s); version {VERSION} already published"
    )


def test_missing_template_fails_only_that_region(aws, dist, capsys):
    (dist / "us-east-1.json").unlink()
    good, bad = fake_region("eu-central-1"), fake_region("us-east-1")
    expect_first_publish(good, (dist / "eu-central-1.json").read_bytes())

    assert run([good, bad], dist) == 1

    good.stub.assert_no_pending_responses()
    assert bad.sc_calls.calls == bad.s3_calls.calls == []
    out = capsys.readouterr().out
    assert "us-east-1.json does not exist; run `python build.py` first" in out
    assert table_row(out, "eu-central-1").endswith(f"created product and version {VERSION}")


@pytest.fixture
def no_credentials(monkeypatch):
    """No credentials anywhere, no instance metadata lookups, and a socket guard that fails the
    test should anything try to reach the network."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if not (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1")):
            raise AssertionError(f"network access attempted: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def test_dry_run_without_credentials_prints_the_local_plan(no_credentials, dist, capsys):
    args = parse("--version", VERSION, "--dry-run")

    assert publish.main(args, SETTINGS, dist) == 0

    captured = capsys.readouterr()
    for region in SETTINGS["regions"]:
        body = template_bytes(region)
        header = f"== {region}: {dist / f'{region}.json'} ({len(body)} bytes) sha256:{sha(body)}"
        assert f"{header} version {VERSION}" in captured.out
        assert f"templates/{sha(body)}.json" in captured.out
        assert table_row(captured.out, region).endswith("local plan only")
    everything = (captured.out + captured.err).splitlines()
    unreadable = [line for line in everything if "could not be read" in line]
    assert len(unreadable) == 1, everything
    assert "no usable AWS credentials" in unreadable[0]


def test_publish_without_credentials_fails_with_one_line_per_region(no_credentials, dist, capsys):
    assert publish.main(parse("--version", VERSION), SETTINGS, dist) == 1

    out = capsys.readouterr().out
    errors = [line.strip() for line in out.splitlines() if "ERROR:" in line]
    assert len(errors) == len(SETTINGS["regions"])
    assert all("no usable AWS credentials" in error for error in errors)


# ------------------------------------------------------------------------------- unit checks


@pytest.mark.parametrize(
    "version",
    [
        "1.2.3",
        "v1.2.3",
        "v1.2",
        "v1.2.3-rc.1",
        "v1.2.3-4-gabc1234",
        "v1.2.3-4-gabc1234-dirty",
        "abc1234",
    ],
)
def test_versions_accepted(version):
    assert publish.validate_version(version) == version


@pytest.mark.parametrize("version", ["", "latest", "1", "v1.2.3 ", "../v1", "v1.2.3;rm", "x" * 101])
def test_versions_rejected(version):
    if version == "v1.2.3 ":  # surrounding whitespace is trimmed, not an error
        assert publish.validate_version(version) == "v1.2.3"
        return
    with pytest.raises(publish.UsageError):
        publish.validate_version(version)


def test_default_version_comes_from_git_describe_and_dirty_trees_are_refused(
    monkeypatch, dist, capsys
):
    monkeypatch.setattr(publish, "git_describe", lambda: "v1.2.3-4-gabc1234-dirty")
    assert publish.main(parse(), SETTINGS, dist) == 2
    assert "uncommitted changes" in capsys.readouterr().err

    monkeypatch.setattr(publish, "git_describe", lambda: "not a version")
    assert publish.main(parse("--dry-run"), SETTINGS, dist) == 2
    assert "pass --version" in capsys.readouterr().err


def test_idempotency_tokens_fit_the_api_model():
    model = botocore.session.get_session().get_service_model("servicecatalog")
    for operation in (
        "CreatePortfolio",
        "CreateProduct",
        "CreateProvisioningArtifact",
        "CreateConstraint",
    ):
        shape = model.operation_model(operation).input_shape.members["IdempotencyToken"]
        value = publish.idempotency_token(ACCOUNT, "eu-central-1", "version", "prod-x", VERSION)
        assert shape.metadata["min"] <= len(value) <= shape.metadata["max"]
        assert re.fullmatch(shape.metadata["pattern"], value)
    same = publish.idempotency_token(ACCOUNT, "eu-central-1", "version", "prod-x", VERSION)
    assert same == value
    assert publish.idempotency_token(ACCOUNT, "eu-west-1", "version", "prod-x", VERSION) != value


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("eu-central-1", "https://b.s3.eu-central-1.amazonaws.com/templates/k.json"),
        ("cn-north-1", "https://b.s3.cn-north-1.amazonaws.com.cn/templates/k.json"),
        ("us-gov-west-1", "https://b.s3.us-gov-west-1.amazonaws.com/templates/k.json"),
    ],
)
def test_template_url_uses_the_partition_dns_suffix(region, url):
    assert publish.template_url("b", region, "templates/k.json") == url


def test_republishing_an_older_version_leaves_newer_ones_alone():
    artifacts = [
        artifact("pa-1", "v1", "1" * 64, days=1),
        artifact("pa-2", "v2", "2" * 64, days=2),
        artifact("pa-3", "v3", "3" * 64, days=3),
    ]
    changes = publish.lifecycle_changes(artifacts, "pa-2", keep_active=5)
    assert [(a["Id"], update) for a, update in changes] == [("pa-1", {"Guidance": "DEPRECATED"})]


def test_version_quota_blocks_publishing(aws, dist, capsys):
    fake = fake_region("eu-central-1")
    full = [
        artifact(f"pa-{n:03d}", f"v0.{n}.0", f"{n:064x}", days=n, active=False)
        for n in range(publish.VERSION_QUOTA)
    ]
    expect_existing(fake, full, same_name=False)

    assert run([fake], dist) == 1

    assert fake.sc_writes() == fake.s3_writes() == []
    assert "the Service Catalog quota is 100" in capsys.readouterr().out


def test_real_build_settings_are_accepted():
    settings = json.loads(
        (publish.Path(publish.__file__).parent / "params" / "build.json").read_text()
    )
    config = publish.PublishConfig.from_settings(settings, principals=[PRINCIPAL])
    assert config.principals == (PRINCIPAL,)
    assert config.keep_active_versions >= 1
    assert config.launch_role_name


def client_error(code, message, operation):
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def test_errors_are_one_clear_line():
    throttled = client_error("ThrottlingException", "Rate exceeded", "SearchProductsAsAdmin")
    denied = client_error("AccessDenied", "not authorized\nto do it", "CreateBucket")
    expired = client_error("ExpiredToken", "The security token has expired", "GetCallerIdentity")
    assert publish.describe_error(throttled) == (
        "throttled by AWS on SearchProductsAsAdmin even after retries: Rate exceeded"
    )
    assert (
        publish.describe_error(denied)
        == "access denied calling CreateBucket: not authorized to do it"
    )
    assert publish.describe_error(NoCredentialsError()).startswith("no usable AWS credentials")
    assert publish.describe_error(expired).startswith("no usable AWS credentials")
    assert publish.is_credential_error(expired) and not publish.is_credential_error(denied)


def test_clients_use_standard_retries_and_unknown_profiles_are_usage_errors(dist, capsys):
    clients = publish.session_client_factory(None)("eu-west-1")
    for client in (clients.s3, clients.sts, clients.servicecatalog):
        assert client.meta.config.retries["mode"] == "standard"
        assert client.meta.region_name == "eu-west-1"

    args = parse("--version", VERSION, "--profile", "no-such-profile", "--dry-run")
    assert publish.main(args, SETTINGS, dist) == 2
    assert "no-such-profile" in capsys.readouterr().err


def test_existing_bucket_policy_statements_are_kept():
    ours = publish.tls_only_statement("aws", "bucket")
    other = {"Sid": "Other", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}}
    merged = publish.RegionPublisher._merged_policy({"Statement": [other]}, ours)
    assert merged["Statement"] == [other, ours]
    assert publish.RegionPublisher._merged_policy(merged, ours) is None  # already there
    # Same meaning written differently (as S3 may hand it back) is recognised too.
    reordered = {**ours, "Principal": {"AWS": "*"}, "Resource": list(reversed(ours["Resource"]))}
    assert publish.RegionPublisher._merged_policy({"Statement": reordered}, ours) is None


def test_command_line_overrides_settings():
    args = parse(
        "--portfolio",
        "Other portfolio",
        "--principal",
        "arn:aws:iam:::role/gc-*",
        "--principal",
        PRINCIPAL,
        "--launch-role",
        f"arn:aws:iam::{ACCOUNT}:role/path/OtherLaunch",
    )
    config = publish.PublishConfig.from_settings(
        SETTINGS, portfolio=args.portfolio, principals=args.principal, launch_role=args.launch_role
    )
    assert config.portfolio_name == "Other portfolio"
    assert config.principals == ("arn:aws:iam:::role/gc-*", PRINCIPAL)
    assert config.launch_role_name == "OtherLaunch"
    with pytest.raises(publish.UsageError, match="not an IAM role/user/group ARN"):
        publish.PublishConfig.from_settings(SETTINGS, principals=["Researchers"])


def test_regions_come_from_the_settings_and_must_be_targets(dist, capsys):
    assert publish._regions(None, SETTINGS) == ["eu-central-1", "us-east-1"]
    assert publish._regions(None, {"regions": ["eu-west-1"]}) == ["eu-west-1"]
    assert publish._regions(" us-east-1,,us-east-1 ", SETTINGS) == ["us-east-1"]
    assert publish.main(parse("--regions", "eu-west-1", "--version", VERSION), SETTINGS, dist) == 2
    assert "'eu-west-1' is not a target region" in capsys.readouterr().err


def test_regions_given_before_the_subcommand_are_kept():
    top = argparse.ArgumentParser(prog="build.py")
    top.add_argument("--regions")
    publish.add_arguments(top.add_subparsers(dest="command").add_parser("publish"))
    assert top.parse_args(["--regions", "us-east-1", "publish"]).regions == "us-east-1"
    assert top.parse_args(["publish", "--regions", "eu-central-1"]).regions == "eu-central-1"
