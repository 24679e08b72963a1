"""Shared data for the publish tests: settings, targets and state fixtures (plain data)."""

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publish.config import PRODUCT_TEMPLATE, PublishConfig, Target
from publish.state import Artifact, BucketState, CatalogState, Context

ACCOUNT = "123456789012"  # moto's account
MEMBER_ACCOUNT = "210987654321"
REGION = "eu-central-1"
VERSION = "v1.2.0"
PORTFOLIO_NAME = "Grand Challenge"
PRODUCT_NAME = "Grand Challenge components runtime"
ROLE = "GrandChallengeComponentsLaunch"
PRINCIPAL = "arn:aws:iam:::role/GrandChallengeOperators"
PORTFOLIO_ID = "port-abcdefghijklm"
PRODUCT_ID = "prod-abcdefghijklm"
ORG_ID = "o-abcdefghij"
OU_ID = "ou-abcd-12345678"
T0 = datetime(2025, 1, 1, tzinfo=UTC)

SETTINGS = {
    "regions": ["eu-central-1", "us-east-1"],
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


def settings_with(**publish_overrides):
    settings = copy.deepcopy(SETTINGS)
    settings["publish"].update(publish_overrides)
    return settings


def config_with(**publish_overrides):
    return PublishConfig.from_settings(settings_with(**publish_overrides))


def template_bytes(revision="1"):
    """A small product template; one serves every region, as dist/components-runtime.json."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Grand Challenge components runtime (r{revision})",
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
    return json.dumps(template, sort_keys=True, separators=(",", ":")).encode()


def sha(body):
    return hashlib.sha256(body).hexdigest()


def write_dist(directory, body=None):
    """``directory`` as build.py writes it for publish: the product template (and, for
    the StackSet, the launch role)."""
    directory.mkdir(exist_ok=True)
    (directory / PRODUCT_TEMPLATE).write_bytes(template_bytes() if body is None else body)
    return directory


def target(version=VERSION, revision="1", region=REGION):
    return Target(region, Path("dist") / PRODUCT_TEMPLATE, template_bytes(revision), version)


def context(region=REGION):
    bucket = f"gc-test-templates-{ACCOUNT}-{region}"
    url = f"https://{bucket}.s3.{region}.amazonaws.com/templates/x.json"
    return Context(region, ACCOUNT, "aws", bucket, url)


CONFIGURED_BUCKET = BucketState(
    exists=True,
    versioning=True,
    encryption=True,
    public_access_blocked=True,
    policy={
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [
                    f"arn:aws:s3:::gc-test-templates-{ACCOUNT}-{REGION}",
                    f"arn:aws:s3:::gc-test-templates-{ACCOUNT}-{REGION}/*",
                ],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    },
    object_exists=True,
)


def artifact(number, revision=None, *, active=True, guidance="DEFAULT", status=None, name=None):
    body = template_bytes(revision or str(number))
    return Artifact(
        id=f"pa-{number:013d}",
        name=name or f"v1.{number}.0",
        description=f"Release v1.{number}.0, template sha256:{sha(body)}",
        active=active,
        guidance=guidance,
        created=T0 + timedelta(days=number),
        status=status,
    )


def portfolio_detail():
    folio = SETTINGS["publish"]["portfolio"]
    return {
        "Id": PORTFOLIO_ID,
        "ARN": f"arn:aws:catalog:{REGION}:{ACCOUNT}:portfolio/{PORTFOLIO_ID}",
        "DisplayName": PORTFOLIO_NAME,
        "Description": folio["description"],
        "CreatedTime": T0,
        "ProviderName": folio["provider"],
    }


def product_summary():
    product = SETTINGS["publish"]["product"]
    return {
        "Id": "prodview-abcdefghijklm",
        "ProductId": PRODUCT_ID,
        "Name": PRODUCT_NAME,
        "Owner": product["owner"],
        "ShortDescription": product["description"],
        "Type": "CLOUD_FORMATION_TEMPLATE",
        "Distributor": product["distributor"],
        "HasDefaultPath": False,
        "SupportEmail": product["support_email"],
        "SupportDescription": product["support_description"],
        "SupportUrl": product["support_url"],
    }


def published_state(*artifacts, **overrides):
    """A catalog where everything matches SETTINGS and ``artifacts`` are the versions."""
    state = {
        "portfolio": portfolio_detail(),
        "product": product_summary(),
        "artifacts": tuple(artifacts),
        "in_portfolio": True,
        "launch_constraints": (("cons-abcdefghijklm", ROLE),),
        "principals": {PRINCIPAL: "IAM_PATTERN"},
        "launch_role_exists": True,
    }
    state.update(overrides)
    return CatalogState(**state)


def no_aws(region):
    """A client factory for runs that must stop before any AWS call."""
    raise AssertionError(f"this run must not build AWS clients (asked for {region})")


def stack_template(inputs_bucket="gc-prod-inputs", retention="30", description="Components"):
    """A small runtime-like template: a stateful bucket and log group, retention a parameter."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": description,
        "Parameters": {
            "LogRetentionDays": {"Type": "Number", "Default": retention},
        },
        "Resources": {
            "InputsBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"BucketName": inputs_bucket},
            },
            "TrainingJobsLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {
                    "LogGroupName": "/aws/sagemaker/TrainingJobs",
                    "RetentionInDays": {"Ref": "LogRetentionDays"},
                },
            },
        },
    }
    return json.dumps(template, sort_keys=True, separators=(",", ":")).encode()


def published_artifact(number, body, *, active=True):
    """Version v1.<number>.0 published by this tool from ``body``."""
    return Artifact(
        id=f"pa-{number:013d}",
        name=f"v1.{number}.0",
        description=f"Release v1.{number}.0, template sha256:{sha(body)}",
        active=active,
        created=T0 + timedelta(days=number),
    )


def body_target(body, version=VERSION, region=REGION):
    return Target(region, Path("dist") / PRODUCT_TEMPLATE, body, version)
