"""publish's local inputs: settings, versions, regions, URLs, error lines and clients."""

import argparse

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

import publish.cli
from publish.aws import describe_error, is_credential_error, session_client_factory
from publish.config import (
    PRODUCT_TEMPLATE,
    PublishConfig,
    UsageError,
    load_targets,
    regions_to_publish,
    template_url,
    validate_version,
)
from publish.decide import merged_policy, tls_only_statement
from tests.publish_fixtures import (
    ACCOUNT,
    PRINCIPAL,
    SETTINGS,
    VERSION,
    config_with,
    no_aws,
    write_dist,
)


@pytest.fixture
def dist(tmp_path):
    return write_dist(tmp_path / "dist")


def parse(*argv):
    parser = argparse.ArgumentParser(prog="build.py")
    publish.cli.add_arguments(parser.add_subparsers(dest="command").add_parser("publish"))
    return parser.parse_args(["publish", *argv])


@pytest.mark.parametrize(
    "version",
    [
        "1.2",
        "1.2.3",
        "v1.2.3",
        "v1.2.3-rc.1",
        "v1.2.3-4-gabc1234",
        "v1.2.3-4-gabc1234-dirty",
        "abc1234",
    ],
)
def test_versions_accepted(version):
    assert validate_version(version) == version


@pytest.mark.parametrize("version", ["", "latest", "1", "../v1", "v1.2.3;rm", "x" * 101])
def test_versions_rejected(version):
    with pytest.raises(UsageError):
        validate_version(version)


def test_default_version_comes_from_git_describe_and_dirty_trees_need_a_flag(
    monkeypatch, dist, capsys
):
    monkeypatch.setattr(publish.cli, "git_describe", lambda: "v1.2.3-4-gabc1234-dirty")
    assert publish.cli.main(parse(), SETTINGS, dist, client_factory=no_aws) == 2
    assert "uncommitted changes" in capsys.readouterr().err
    monkeypatch.setattr(publish.cli, "git_describe", lambda: "not a version")
    assert publish.cli.main(parse("--dry-run"), SETTINGS, dist, client_factory=no_aws) == 2
    assert "pass --version" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("eu-central-1", "https://b.s3.eu-central-1.amazonaws.com/templates/k.json"),
        ("cn-north-1", "https://b.s3.cn-north-1.amazonaws.com.cn/templates/k.json"),
        ("us-gov-west-1", "https://b.s3.us-gov-west-1.amazonaws.com/templates/k.json"),
    ],
)
def test_template_url_uses_the_partition_dns_suffix(region, url):
    assert template_url("b", region, "templates/k.json") == url


def client_error(code, message, operation):
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def test_errors_are_one_clear_line():
    throttled = client_error("ThrottlingException", "Rate exceeded", "SearchProductsAsAdmin")
    denied = client_error("AccessDenied", "not authorized\nto do it", "CreateBucket")
    expired = client_error("ExpiredToken", "The security token has expired", "GetCallerIdentity")
    assert (
        describe_error(throttled)
        == "throttled by AWS on SearchProductsAsAdmin even after retries: Rate exceeded"
    )
    assert describe_error(denied) == "access denied calling CreateBucket: not authorized to do it"
    assert describe_error(NoCredentialsError()).startswith("no usable AWS credentials")
    assert is_credential_error(expired) and not is_credential_error(denied)


def test_clients_use_standard_retries():
    clients = session_client_factory(None)("eu-west-1")
    for client in (
        clients.s3,
        clients.sts,
        clients.servicecatalog,
        clients.iam,
        clients.cloudformation,
    ):
        assert client.meta.config.retries["mode"] == "standard"


def test_existing_bucket_policy_statements_are_kept():
    ours = tls_only_statement("aws", "bucket")
    other = {"Sid": "Other", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}}
    merged = merged_policy({"Statement": [other]}, ours)
    assert merged["Statement"] == [other, ours]
    assert merged_policy(merged, ours) is None
    reordered = {**ours, "Principal": {"AWS": "*"}, "Resource": list(reversed(ours["Resource"]))}
    assert merged_policy({"Statement": reordered}, ours) is None


def test_command_line_overrides_settings():
    args = parse(
        "--portfolio", "Other portfolio",
        "--principal", "arn:aws:iam:::role/gc-*",
        "--principal", PRINCIPAL,
        "--launch-role", f"arn:aws:iam::{ACCOUNT}:role/path/OtherLaunch",
    )  # fmt: skip
    config = PublishConfig.from_settings(
        SETTINGS, portfolio=args.portfolio, principals=args.principal, launch_role=args.launch_role
    )
    assert config.portfolio_name == "Other portfolio"
    assert config.principals == ("arn:aws:iam:::role/gc-*", PRINCIPAL)
    assert config.launch_role_name == "OtherLaunch"
    with pytest.raises(UsageError, match="not an IAM role/user/group ARN"):
        PublishConfig.from_settings(SETTINGS, principals=["Researchers"])


def test_regions_come_from_the_settings_and_must_be_targets(dist, capsys):
    assert regions_to_publish(None, SETTINGS) == ["eu-central-1", "us-east-1"]
    assert regions_to_publish(" us-east-1,,us-east-1 ", SETTINGS) == ["us-east-1"]
    assert (
        publish.cli.main(
            parse("--regions", "eu-west-1", "--version", VERSION),
            SETTINGS,
            dist,
            client_factory=no_aws,
        )
        == 2
    )
    assert "'eu-west-1' is not a target region" in capsys.readouterr().err


def test_regions_given_before_the_subcommand_are_kept():
    top = argparse.ArgumentParser(prog="build.py")
    top.add_argument("--regions")
    publish.cli.add_arguments(top.add_subparsers(dest="command").add_parser("publish"))
    assert top.parse_args(["--regions", "us-east-1", "publish"]).regions == "us-east-1"


@pytest.mark.parametrize(
    ("sharing", "stack_set", "message"),
    [
        ({"organization_nodes": ["ou-bad"]}, {}, "is not an organization"),
        ({}, {"deployment_targets": ["ou-abcd-12345678"]}, "must name one region"),
        ({}, {"deployment_targets": ["o-abcdefghij"], "region": "eu-west-1"}, "is not a root"),
        (
            {},
            {"deployment_targets": ["r-abcd"], "region": "eu-west-1", "call_as": "ME"},
            "SELF or DELEGATED_ADMIN",
        ),
    ],
)
def test_organization_settings_are_validated(sharing, stack_set, message):
    with pytest.raises(UsageError, match=message):
        config_with(sharing=sharing, launch_role_stack_set=stack_set)


def test_at_most_ten_account_less_principals():
    with pytest.raises(UsageError, match="at most 10 IAM_PATTERN"):
        config_with(principals=[f"arn:aws:iam:::role/Team{n}" for n in range(11)])


def test_every_region_gets_one_read_of_the_one_template(tmp_path, monkeypatch):
    """A dist/ rewritten mid-run cannot give two regions different bytes for one version."""
    reads = iter([b'{"Resources": {"A": {}}}', b'{"Resources": {"B": {}}}'])
    paths = []

    def read_template(path):
        paths.append(path)
        return next(reads)

    monkeypatch.setattr(publish.config, "read_template", read_template)
    targets = load_targets(["eu-central-1", "us-east-1", "ap-south-2"], tmp_path, VERSION)
    assert paths == [tmp_path / PRODUCT_TEMPLATE]
    assert {(t.body, t.key, t.version) for t in targets.values()} == {
        (b'{"Resources": {"A": {}}}', targets["eu-central-1"].key, VERSION)
    }
    assert [t.region for t in targets.values()] == ["eu-central-1", "us-east-1", "ap-south-2"]
