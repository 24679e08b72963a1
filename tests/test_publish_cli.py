"""`build.py publish` end to end: moto behind S3, STS and IAM, botocore's Stubber behind
Service Catalog (requests validated against the service model)."""

import argparse
import contextlib
import copy
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.iam.access_control import IAMPolicyStatement, PermissionResult

import publish
from publish.config import PRODUCT_TEMPLATE
from tests.publish_fixtures import (
    ACCOUNT,
    REGION,
    ROLE,
    SETTINGS,
    VERSION,
    no_aws,
    sha,
    stack_template,
    template_bytes,
    write_dist,
)
from tests.publish_stubs import (
    S3_WRITE,
    SC_WRITE,
    Recorder,
    stub_first_publish,
    stub_new_version,
    stub_reads,
)

ONE_REGION = {**SETTINGS, "regions": [REGION]}


@pytest.fixture
def dist(tmp_path):
    return write_dist(tmp_path / "dist")


class World:
    """One account in one region: moto's S3/STS/IAM and a stubbed Service Catalog."""

    def __init__(self, region=REGION):
        self.s3 = boto3.client("s3", region_name=region)
        self.sc = boto3.client("servicecatalog", region_name=region)
        self.iam = boto3.client("iam", region_name=region)
        self.s3_calls, self.sc_calls = Recorder(self.s3), Recorder(self.sc)
        self.stub = Stubber(self.sc)
        self.stub.activate()
        self.clients = publish.Clients(
            self.s3, boto3.client("sts", region_name=region), self.sc, self.iam
        )

    def create_launch_role(self):
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "servicecatalog.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        self.iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))


def _tls_aware(original):
    """moto ignores a `Bool` condition, so a bucket policy denying non-TLS requests denies every
    request.  Evaluate aws:SecureTransport (boto3 talks HTTPS) and leave the rest to moto."""

    def is_action_permitted(
        self, action, resource="*", principal=None, incoming_condition_values=None
    ):
        secure = (incoming_condition_values or {}).get("aws:SecureTransport", "true")
        wanted = self._statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
        if wanted is not None and str(wanted).lower() != secure:
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    return is_action_permitted


@contextlib.contextmanager
def moto_world(monkeypatch):
    original = IAMPolicyStatement.is_action_permitted
    monkeypatch.setattr(IAMPolicyStatement, "is_action_permitted", _tls_aware(original))
    with mock_aws():
        yield World()


@pytest.fixture
def world(monkeypatch):
    with moto_world(monkeypatch) as fresh:
        yield fresh


def parse(*argv):
    parser = argparse.ArgumentParser(prog="build.py")
    commands = parser.add_subparsers(dest="command", required=True)
    publish.add_arguments(commands.add_parser("publish"))
    return parser.parse_args(["publish", *argv])


def run(world, dist, *argv, version=VERSION, settings=ONE_REGION):
    args = parse("--regions", REGION, "--version", version, *argv)
    return publish.main(
        args, settings, dist, client_factory=lambda region: world.clients, sleep=lambda s: None
    )


def description(body, version=VERSION):
    return f"Release {version}, template sha256:{sha(body)}"


def test_first_publish_creates_everything_then_a_bytes_identical_commit_writes_nothing(
    world, dist, capsys
):
    world.create_launch_role()
    body = template_bytes()
    stub_reads(world.stub, exists=False)
    stub_first_publish(world.stub, description=description(body), name=VERSION)
    assert run(world, dist) == 0, capsys.readouterr()
    world.stub.assert_no_pending_responses()
    assert (
        world.s3.get_object(
            Bucket=f"gc-test-templates-{ACCOUNT}-{REGION}", Key=f"templates/{sha(body)}.json"
        )["Body"].read()
        == body
    )

    # a docs-only commit: `git describe` moved on, the template bytes did not
    world.s3_calls.calls.clear()
    world.sc_calls.calls.clear()
    published = {"Id": "pa-0000000000001", "Name": VERSION, "Description": description(body)}
    stub_reads(world.stub, exists=True, artifacts=[published], matching=[published])
    assert run(world, dist, version="v1.2.0-1-gabc1234") == 0
    out = capsys.readouterr().out
    world.stub.assert_no_pending_responses()
    assert world.sc_calls.writes(SC_WRITE) == []
    assert world.s3_calls.writes(S3_WRITE) == []
    assert "GetObject" not in world.s3_calls.calls  # no new version: no upgrade preview
    assert f"already published as version '{VERSION}' (pa-0000000000001)" in out
    assert "unchanged; offers version v1.2.0" in out


def test_a_missing_launch_role_blocks_the_region_before_any_write(world, dist, capsys):
    stub_reads(world.stub, exists=False)
    assert run(world, dist) == 1
    captured = capsys.readouterr()
    assert "! blocked: launch role 'GrandChallengeComponentsLaunch' does not exist" in captured.out
    assert "aws cloudformation deploy --template-file dist/launch-role.json" in captured.out
    assert world.s3_calls.writes(S3_WRITE) == [] and world.sc_calls.writes(SC_WRITE) == []


def test_dry_run_prints_the_exact_calls_and_writes_nothing(world, dist, capsys):
    world.create_launch_role()
    stub_reads(world.stub, exists=False)
    assert run(world, dist, "--dry-run") == 0
    out = capsys.readouterr().out
    assert 'servicecatalog.CreateConstraint {"Description": "Launch as the local IAM role' in out
    assert '"PortfolioId": "<portfolio_id>"' in out
    assert world.s3_calls.writes(S3_WRITE) == [] and world.sc_calls.writes(SC_WRITE) == []


def test_without_credentials_publish_says_so_once_and_exits_2(dist, capsys, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup
    args = parse("--version", VERSION)
    assert publish.main(args, SETTINGS, dist) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "credentials" in line]
    assert errors == ["publish: error: no usable AWS credentials (Unable to locate credentials)"]
    assert "FAILED" not in captured.out


def test_dirty_versions_need_an_explicit_flag(dist, capsys):
    assert (
        publish.main(parse("--version", "abc1234-dirty"), SETTINGS, dist, client_factory=no_aws)
        == 2
    )
    assert "--allow-dirty" in capsys.readouterr().err


def test_unknown_profiles_are_usage_errors(dist, capsys):
    assert publish.main(parse("--version", VERSION, "--profile", "nope"), SETTINGS, dist) == 2
    assert "nope" in capsys.readouterr().err


def test_a_missing_template_fails_every_region_before_any_aws_write(world, dist, capsys):
    world.create_launch_role()
    (dist / PRODUCT_TEMPLATE).unlink()
    args = parse("--regions", f"{REGION},us-east-1", "--version", VERSION)
    code = publish.main(
        args, SETTINGS, dist, client_factory=lambda region: world.clients, sleep=lambda s: None
    )
    captured = capsys.readouterr()
    assert code == 1
    rows = [
        line.split() for line in captured.out.splitlines() if line.startswith((REGION, "us-east-1"))
    ]
    assert [(row[0], row[-1]) for row in rows] == [(REGION, "FAILED"), ("us-east-1", "FAILED")]
    assert f"{dist / PRODUCT_TEMPLATE} does not exist; run `python build.py` first" in captured.out
    assert "2 scope(s) failed: eu-central-1, us-east-1" in captured.err
    assert world.s3_calls.writes(S3_WRITE) == [] and world.sc_calls.calls == []


def requests_of(client, operation):
    """The parameters of every ``operation`` call ``client`` makes, as sent."""
    sent = []
    client.meta.events.register(
        f"before-parameter-build.servicecatalog.{operation}",
        lambda params, **_: sent.append(copy.deepcopy(params)),
    )
    return sent


def test_every_region_gets_the_same_bytes_under_the_same_key_and_version_name(
    monkeypatch, dist, capsys
):
    body = (dist / PRODUCT_TEMPLATE).read_bytes()
    with moto_world(monkeypatch) as europe:
        worlds = {REGION: europe, "us-east-1": World("us-east-1")}
        europe.create_launch_role()  # IAM is global: one role serves both regions
        created = {}
        for region, world in worlds.items():
            stub_reads(world.stub, exists=False)
            stub_first_publish(world.stub, description=description(body), name=VERSION)
            created[region] = requests_of(world.sc, "CreateProduct")
        args = parse("--regions", f"{REGION},us-east-1", "--version", VERSION)
        code = publish.main(
            args, SETTINGS, dist, client_factory=lambda r: worlds[r].clients, sleep=lambda s: None
        )
        assert code == 0, capsys.readouterr()
        for region, world in worlds.items():
            world.stub.assert_no_pending_responses()
            bucket = f"gc-test-templates-{ACCOUNT}-{region}"
            [stored] = world.s3.list_objects_v2(Bucket=bucket)["Contents"]
            assert stored["Key"] == f"templates/{sha(body)}.json"
            assert world.s3.get_object(Bucket=bucket, Key=stored["Key"])["Body"].read() == body
    versions = {r: sent[0]["ProvisioningArtifactParameters"] for r, sent in created.items()}
    assert {(v["Name"], v["Description"]) for v in versions.values()} == {
        (VERSION, description(body))
    }
    assert {r: v["Info"]["LoadTemplateFromURL"] for r, v in versions.items()} == {
        r: f"https://gc-test-templates-{ACCOUNT}-{r}.s3.{r}.amazonaws.com/templates/{sha(body)}.json"
        for r in worlds
    }


def test_a_failing_step_stops_its_region_and_says_which(world, dist, capsys):
    world.create_launch_role()
    stub_reads(world.stub, exists=False)
    world.stub.add_client_error("create_portfolio", "AccessDeniedException", "not allowed")
    assert run(world, dist) == 1
    out = capsys.readouterr().out
    assert "x (failed) create portfolio 'Grand Challenge'" in out
    assert "- not done: create product" in out
    assert "access denied calling CreatePortfolio: not allowed" in out


BUCKET = f"gc-test-templates-{ACCOUNT}-{REGION}"
PREVIOUS_BODY = stack_template()


def previously_published(world, dist, new_body):
    """Version v1.1.0 of PREVIOUS_BODY is published (its template in the artifact bucket), and
    dist/ now holds ``new_body``; the reads of the catalog are stubbed."""
    world.create_launch_role()
    world.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    world.s3.put_object(
        Bucket=BUCKET, Key=f"templates/{sha(PREVIOUS_BODY)}.json", Body=PREVIOUS_BODY
    )
    (dist / PRODUCT_TEMPLATE).write_bytes(new_body)
    published = {
        "Id": "pa-0000000000001",
        "Name": "v1.1.0",
        "Description": description(PREVIOUS_BODY, "v1.1.0"),
    }
    stub_reads(world.stub, exists=True, artifacts=[published])
    world.s3_calls.calls.clear()


def expect_new_version(world, new_body):
    stub_new_version(
        world.stub,
        artifact_id="pa-0000000000002",
        name=VERSION,
        description=description(new_body),
        url=f"https://{BUCKET}.s3.{REGION}.amazonaws.com/templates/{sha(new_body)}.json",
        deprecate="pa-0000000000001",
    )


def test_a_release_that_replaces_a_bucket_is_refused_before_any_write(world, dist, capsys):
    previously_published(world, dist, stack_template(inputs_bucket="gc-prod-inputs-2"))
    assert run(world, dist) == 1
    out = capsys.readouterr().out
    world.stub.assert_no_pending_responses()
    assert "GetObject" in world.s3_calls.calls
    assert world.s3_calls.writes(S3_WRITE) == [] and world.sc_calls.writes(SC_WRITE) == []
    assert (
        "! blocked: updating stacks from version 'v1.1.0' (pa-0000000000001) to 'v1.2.0' would "
        "replace InputsBucket (AWS::S3::Bucket; bucket: its objects)"
    ) in out
    assert "pass --allow-replacement to publish anyway" in out


def test_allow_replacement_publishes_the_version_with_a_warning(world, dist, capsys):
    new_body = stack_template(inputs_bucket="gc-prod-inputs-2")
    previously_published(world, dist, new_body)
    expect_new_version(world, new_body)
    assert run(world, dist, "--allow-replacement") == 0, capsys.readouterr()
    out = capsys.readouterr().out
    world.stub.assert_no_pending_responses()
    assert world.sc_calls.writes(SC_WRITE) == [
        "CreateProvisioningArtifact",
        "UpdateProvisioningArtifact",
    ]
    assert "! warning: updating stacks from version 'v1.1.0'" in out
    assert "publishing anyway (--allow-replacement)" in out


def test_an_in_place_change_publishes_without_warning(world, dist, capsys):
    new_body = stack_template(retention="90")
    previously_published(world, dist, new_body)
    expect_new_version(world, new_body)
    assert run(world, dist) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    world.stub.assert_no_pending_responses()
    assert "CreateProvisioningArtifact" in world.sc_calls.writes(SC_WRITE)
    assert "replaces or removes no stateful resource" in out
    assert "--allow-replacement" not in out


@pytest.mark.parametrize(
    ("on_disk", "state"), [(None, "is missing"), (b"{}", "is stale")], ids=["missing", "stale"]
)
def test_build_publish_says_whether_a_dist_file_is_missing_or_stale(
    tmp_path, monkeypatch, on_disk, state
):
    import build

    rendered = {"launch-role.json": (b"{1}", None), PRODUCT_TEMPLATE: (b"{2}", None)}
    (tmp_path / "launch-role.json").write_bytes(b"{1}")
    if on_disk is not None:
        (tmp_path / PRODUCT_TEMPLATE).write_bytes(on_disk)
    monkeypatch.setattr(build, "load_settings", lambda path: ONE_REGION)
    monkeypatch.setattr(build, "render_all", lambda settings, regions, run_lint: rendered)
    monkeypatch.setattr(publish, "main", no_aws)  # never reached
    args = argparse.Namespace(settings=None, dist=tmp_path)
    with pytest.raises(build.BadInputError) as raised:
        build.command_publish(args)
    assert str(raised.value) == (
        f"{tmp_path}/{PRODUCT_TEMPLATE} {state}: run `python build.py` first"
    )
