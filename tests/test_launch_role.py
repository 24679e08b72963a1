"""The Service Catalog launch role (templates/launch_role.py): lint- and checkov-clean, enough
for every resource of the product template, and no more than the product's names.

Policies are checked by evaluating them: a small evaluator matches actions, resource ARNs and
the condition operators the role uses against requests built from the product's own
resources (CloudFormation-generated names for unnamed ones), in a sample account."""

import fnmatch
import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path

from cfnlint.api import ManualArgs, lint
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from build import commercial_regions, known_regions
from templates.launch_role import (
    FILE_NAME,
    MAX_ARTIFACT_BUCKET_PREFIX_LENGTH,
    NAMES_NOT_IN_ARNS,
    build_launch_role_template,
)
from templates.launch_role_actions import (
    PARAMETER_TYPE_ACTIONS,
    REQUIRED_ACTIONS,
    UNNEEDED_HANDLER_PERMISSIONS,
)
from templates.names import PATTERNS
from tests.helpers import ROOT, SETTINGS, rendered, violations

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))
ACCOUNT = "123456789012"
STACK = f"SC-{ACCOUNT}-pp-abcdefghijklm"  # how Service Catalog names a provisioned product's stack
# The region of the sample stack: the longest name, so names that embed it are the longest.
REGION = max(commercial_regions(), key=len)
SAMPLE = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "NamePrefix": "gc-prod",
    "ArtifactBucketPrefix": SETTINGS["publish"]["artifact_bucket_prefix"],
    "RoleName": SETTINGS["publish"]["launch_role_name"],
}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/{SAMPLE['RoleName']}-Boundary"
VIA_CLOUDFORMATION = {"aws:CalledVia": ["cloudformation.amazonaws.com"]}
# What CloudFormation's requests for a product stack carry: the product sets the boundary.
PRODUCT_REQUEST = {**VIA_CLOUDFORMATION, "iam:PermissionsBoundary": BOUNDARY}
# Statements Service Catalog itself uses, outside CloudFormation's calls.
STACK_STATEMENTS = {
    "ManageServiceCatalogStacks",
    "InspectTemplates",
    "ValidateParameterValues",
    "ReadServiceCatalogTemplateCopies",
    "ReadPublishedTemplates",
}
# Actions on "*" that do have resource types, and why "*" is still right.
STAR_DESPITE_RESOURCE_TYPES = {
    "cloudformation:GetTemplateSummary": "called with a template URL, not a stack",
    "s3:GetObject": "Service Catalog's buckets are unnamed; the object tag condition scopes it",
    "kms:TagResource": "tagging during CreateKey, before the key has an ARN",
}
# Per named resource type: name property, ARN format, actions CloudFormation calls on it.
NAMED = {
    "AWS::IAM::Role": ("RoleName", "arn:aws:iam::{account}:role/{name}", 64,
                       ["iam:CreateRole", "iam:DeleteRole", "iam:TagRole"]),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", "arn:aws:iam::{account}:policy/{name}", 128,
                                ["iam:CreatePolicy", "iam:DeletePolicy"]),
    "AWS::S3::Bucket": ("BucketName", "arn:aws:s3:::{name}", 63,
                        ["s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPolicy"]),
    "AWS::ECR::Repository": ("RepositoryName",
                             "arn:aws:ecr:{region}:{account}:repository/{name}", 256,
                             ["ecr:CreateRepository", "ecr:DeleteRepository"]),
    "AWS::Logs::LogGroup": ("LogGroupName", "arn:aws:logs:{region}:{account}:log-group:{name}",
                            512, ["logs:CreateLogGroup", "logs:DeleteLogGroup"]),
    "AWS::Events::Rule": ("Name", "arn:aws:events:{region}:{account}:rule/{name}", 64,
                          ["events:PutRule", "events:PutTargets", "events:DeleteRule"]),
    "AWS::KMS::Alias": ("AliasName", "arn:aws:kms:{region}:{account}:{name}", 256,
                        ["kms:CreateAlias", "kms:DeleteAlias"]),
    "AWS::Lambda::Function": ("FunctionName", "arn:aws:lambda:{region}:{account}:function:{name}",
                              64, ["lambda:CreateFunction", "lambda:DeleteFunction",
                                   "lambda:AddPermission", "lambda:InvokeFunction"]),
    "AWS::SQS::Queue": ("QueueName", "arn:aws:sqs:{region}:{account}:{name}", 80,
                        ["sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:DeleteQueue"]),
}  # fmt: skip
IAM_POLICY_MAX_CHARACTERS = 6_144  # managed policy, whitespace not counted


@cache
def template():
    return build_launch_role_template().to_dict()


def body():
    return json.dumps(template(), indent=2, sort_keys=True)


def resolve(value, variables=SAMPLE):
    """``value`` with every ``Fn::Sub`` replaced by its string for ``variables``."""
    if isinstance(value, list):
        return [resolve(item, variables) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"} and value["Fn::If"][0] == "UseTerraformModuleNames":
        # Service Catalog launches keep region-unique names; the module's are for a stack
        # `build.py migrate` takes over with the plain CloudFormation API.
        return resolve(value["Fn::If"][2], variables)
    if set(value) == {"Fn::Sub"}:
        text, local = value["Fn::Sub"], {}
        if isinstance(text, list):
            # Local variables (Fn::Select of a parameter, ...): a sample value each.
            text, local = text[0], {key: "sample/name" for key in text[1]}
        names = {**variables, **local}

        def substitute(match):
            assert match.group(1) in names, f"no sample value for ${{{match.group(1)}}}"
            return names[match.group(1)]

        return re.sub(r"\$\{([^}]+)\}", substitute, text)
    return {key: resolve(item, variables) for key, item in value.items()}


def role_policies():
    """The role's managed policies' documents, Subs resolved (not the boundary: no Roles)."""
    return [
        resolve(resource["Properties"]["PolicyDocument"])
        for resource in template()["Resources"].values()
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and resource["Properties"].get("Roles")
    ]


def boundary_policy():
    return resolve(template()["Resources"]["PermissionsBoundary"]["Properties"]["PolicyDocument"])


def statements(effect="Allow"):
    """Every ``effect`` statement of the role's managed policies, lists normalised."""
    found = []
    for document in role_policies():
        for statement in document["Statement"]:
            if statement["Effect"] != effect:
                continue
            found.append(
                {
                    **statement,
                    "Action": _list(statement["Action"]),
                    "Resource": _list(statement["Resource"]),
                }
            )
    return found


def _list(value):
    return value if isinstance(value, list) else [value]


def _condition_holds(condition, context):
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                return False  # the request lacks the key: a positive condition fails
            actual, expected = _list(actual), _list(expected)
            if operator in ("StringEquals", "ForAnyValue:StringEquals"):
                matched = any(a == e for a in actual for e in expected)
            elif operator in ("StringLike", "ArnLike", "ForAnyValue:StringLike"):
                matched = any(fnmatch.fnmatchcase(a, e) for a in actual for e in expected)
            else:
                raise AssertionError(f"the evaluator does not know {operator}")
            if not matched:
                return False
    return True


def granting_action(statement, action):
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in statement["Action"])


def granting(action, resource, context=None, via_cloudformation=True):
    """Sids of the Allow statements that grant ``action`` on ``resource`` in a request with the
    ``context`` keys, made by CloudFormation for a product stack or (``via_cloudformation=False``)
    directly with the role. Explicit denies: see the iam-simulate tests."""
    context = {**(PRODUCT_REQUEST if via_cloudformation else {}), **(context or {})}
    return [
        statement["Sid"]
        for statement in statements()
        if granting_action(statement, action)
        and any(fnmatch.fnmatchcase(resource, r) for r in statement["Resource"])
        and _condition_holds(statement.get("Condition", {}), context)
    ]


def product_types():
    return {resource["Type"] for resource in rendered()["Resources"].values()}


def physical_name(logical_id, resource, region):
    """The name CloudFormation gives the resource: its name property with sample values, or
    the generated <stack>-<logical id>-<suffix> cut to the service's limit."""
    name_property, _, limit, _ = NAMED[resource["Type"]]
    value = resource.get("Properties", {}).get(name_property)
    if value is None:
        generated = f"{STACK}-{logical_id}-A1B2C3D4E5F6"[:limit]
        return generated.lower() if resource["Type"] == "AWS::S3::Bucket" else generated
    return resolve(value, {**SAMPLE, "AWS::Region": region})


def arn_of(logical_id, resource, region):
    _, arn_format, _, _ = NAMED[resource["Type"]]
    name = physical_name(logical_id, resource, region)
    return arn_format.format(account=ACCOUNT, region=region, name=name)


def referenced_arn(reference, region):
    """ARN of the resource a ``Ref``/``Fn::GetAtt`` points at, in the same product template."""
    logical_id = reference.get("Ref") or reference.get("Fn::GetAtt", [None])[0]
    resource = rendered()["Resources"][logical_id]
    return arn_of(logical_id, resource, region)


# --- The template as a whole ---------------------------------------------------------------


def test_cfn_lint_finds_nothing():
    findings = lint(body(), config=ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.message} ({m.path_string})" for m in findings] == []


def test_checkov_finds_nothing_and_would_find_a_bad_policy(tmp_path):
    assert CHECKOV.exists(), f"{CHECKOV} missing: run `make test` (or set CHECKOV=path)"
    (tmp_path / FILE_NAME).write_text(body())
    canary = {  # the check works: iam:* on everything must fail
        "Resources": {
            "Canary": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
                    }
                },
            }
        }
    }
    (tmp_path / "canary.json").write_text(json.dumps(canary))
    result = subprocess.run(
        [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--output", "json",
         "-d", str(tmp_path)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    reports = json.loads(result.stdout)
    results = (reports[0] if isinstance(reports, list) else reports)["results"]
    assert results["parsing_errors"] == []
    by_file = {}
    for outcome in ("passed_checks", "failed_checks"):
        for check in results[outcome]:
            by_file.setdefault((Path(check["file_path"]).name, outcome), []).append(
                f"{check['check_id']} {check['resource']}"
            )
    assert by_file.get((FILE_NAME, "failed_checks"), []) == []
    assert len(by_file.get((FILE_NAME, "passed_checks"), [])) > 10
    assert by_file.get(("canary.json", "failed_checks")), "checkov no longer flags iam:* on *"


def unjustified_skips(resources):
    return [
        (logical_id, skip)
        for logical_id, resource in resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        if not skip.get("id", "").startswith("CKV") or len(skip.get("comment", "").strip()) < 15
    ]


def test_every_checkov_skip_has_a_reason():
    assert unjustified_skips(template()["Resources"]) == []
    assert unjustified_skips({"R": {"Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_1"}]}}}})


def test_policies_fit_the_iam_size_limit():
    for logical_id, resource in template()["Resources"].items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            document = json.dumps(resolve(resource["Properties"]["PolicyDocument"]))
            assert len(re.sub(r"\s", "", document)) <= IAM_POLICY_MAX_CHARACTERS, logical_id


def test_one_template_serves_every_region_and_partition():
    text = body()
    assert "AWS::Region" not in text
    assert "arn:aws:" not in text


def test_outputs_name_the_role():
    outputs = template()["Outputs"]
    assert outputs["LaunchRoleArn"]["Value"] == {"Fn::GetAtt": ["LaunchRole", "Arn"]}
    assert outputs["LaunchRoleName"]["Value"] == {"Ref": "LaunchRole"}


def test_parameter_defaults_are_the_publishing_settings_and_are_validated():
    parameters = template()["Parameters"]
    role, prefix = parameters["RoleName"], parameters["ArtifactBucketPrefix"]
    assert role["Default"] == SETTINGS["publish"]["launch_role_name"]
    assert prefix["Default"] == SETTINGS["publish"]["artifact_bucket_prefix"]
    assert violations(role, role["Default"]) == violations(prefix, prefix["Default"]) == []
    for bad in ("", "a" * 65, "has space", "slash/name"):
        assert violations(role, bad), bad
    for bad in ("", "Upper", "-leading", "under_score", "a" * 35):
        assert violations(prefix, bad), bad
    longest = f"{'a' * MAX_ARTIFACT_BUCKET_PREFIX_LENGTH}-{ACCOUNT}-{max(known_regions(), key=len)}"
    assert len(longest) <= 63, "a bucket <prefix>-<account>-<region> must fit 63 characters"


# --- Who may use the role, and for what ---------------------------------------------------


def test_only_service_catalog_may_assume_the_role():
    role = template()["Resources"]["LaunchRole"]["Properties"]
    assert "Path" not in role, "a LAUNCH constraint's local role name implies path /"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "servicecatalog.amazonaws.com"},
            "Action": ["sts:AssumeRole"],
        }
    ]


def test_stacks_are_only_service_catalogs():
    stack = f"arn:aws:cloudformation:eu-central-1:{ACCOUNT}:stack/{STACK}/0a1b2c3d"
    for action in ("CreateStack", "UpdateStack", "DeleteStack", "ExecuteChangeSet"):
        assert granting(f"cloudformation:{action}", stack, via_cloudformation=False), action
        for other in ("stack/prod-database/0a1b2c3d", "stack/SC-210987654321-pp-x/0a1b2c3d"):
            arn = f"arn:aws:cloudformation:eu-central-1:{ACCOUNT}:{other}"
            assert not granting(f"cloudformation:{action}", arn, {}), (action, other)


def test_templates_are_read_only_from_service_catalog_and_the_publisher():
    published = f"arn:aws:s3:::{SAMPLE['ArtifactBucketPrefix']}-{ACCOUNT}-eu-west-1/v1.json"
    ours = {"s3:ResourceAccount": ACCOUNT}
    assert granting("s3:GetObject", published, ours, via_cloudformation=False)
    # A bucket of that name in another account (bucket names are first come, first served).
    assert not granting("s3:GetObject", published, {"s3:ResourceAccount": "210987654321"})
    tagged = {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
    assert granting("s3:GetObject", "arn:aws:s3:::cf-templates-xyz/t.json", tagged)
    assert not granting("s3:GetObject", "arn:aws:s3:::some-data-bucket/secret.csv", {})
    assert not granting("s3:PutObject", published, tagged)


def test_product_resources_are_touched_only_through_cloudformation():
    for statement in statements():
        if statement["Sid"] in STACK_STATEMENTS or statement["Action"] == ["iam:PassRole"]:
            continue
        assert statement["Condition"]["ForAnyValue:StringEquals"] == {
            "aws:CalledVia": "cloudformation.amazonaws.com"
        }, statement["Sid"]
    role = f"arn:aws:iam::{ACCOUNT}:role/SAGEMAKER_gc-prod-eu-west-1_EXECUTION"
    assert granting("iam:CreateRole", role)
    assert not granting("iam:CreateRole", role, via_cloudformation=False), "direct calls denied"


def test_pass_role_is_conditional_and_only_to_lambda():
    passing = [s for s in statements() if granting_action(s, "iam:PassRole")]
    assert passing
    for statement in passing:
        assert "iam:PassedToService" in statement.get("Condition", {}).get("StringEquals", {})
    custodian = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-CustodianRole-A1B2C3D4E5F6"
    assert granting("iam:PassRole", custodian, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not granting("iam:PassRole", custodian, {"iam:PassedToService": "ec2.amazonaws.com"})
    admin = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    assert not granting("iam:PassRole", admin, {"iam:PassedToService": "lambda.amazonaws.com"})


def test_only_product_policies_may_be_attached():
    role = f"arn:aws:iam::{ACCOUNT}:role/SAGEMAKER_gc-prod-eu-west-1_EXECUTION"
    own = f"arn:aws:iam::{ACCOUNT}:policy/SAGEMAKER_gc-prod-eu-west-1_EXECUTION"
    assert granting("iam:AttachRolePolicy", role, {"iam:PolicyARN": own})
    for other in (
        "arn:aws:iam::aws:policy/AdministratorAccess",
        f"arn:aws:iam::{ACCOUNT}:policy/x",
    ):
        assert not granting("iam:AttachRolePolicy", role, {"iam:PolicyARN": other}), other


def test_star_resources_only_where_the_action_has_no_resource_type():
    specs = load_resource(AdditionalSpecs, "Policies.json")  # what W3037 checks actions against
    for statement in statements():
        if "*" not in statement["Resource"]:
            continue
        for action in statement["Action"]:
            service, name = action.split(":")
            scopable = specs[service]["Actions"][name.lower()].get("Resources")
            assert not scopable or action in STAR_DESPITE_RESOURCE_TYPES, (statement["Sid"], action)


# --- Enough for every product resource, and accounted for --------------------------------


def uncovered_types(types, mapping=REQUIRED_ACTIONS):
    return sorted(set(types) - set(mapping))


def test_every_product_resource_type_is_mapped_to_actions():
    missing = uncovered_types(product_types())
    assert missing == [], f"add {missing} to REQUIRED_ACTIONS in templates/launch_role.py"
    assert uncovered_types({"AWS::RDS::DBInstance"}) == ["AWS::RDS::DBInstance"]


def test_the_mapping_is_exactly_what_the_product_statements_grant():
    granted = {
        action
        for statement in statements()
        if statement["Sid"] not in STACK_STATEMENTS
        for action in statement["Action"]
    }
    required = {action for actions in REQUIRED_ACTIONS.values() for action in actions}
    assert sorted(required - granted) == [], "required but granted by no statement"
    assert sorted(granted - required) == [], "granted but required by no resource type"


def test_handler_permissions_are_granted_or_explained():
    """cfn-lint ships each type's schema with the permissions its handlers call."""
    required = {action for actions in REQUIRED_ACTIONS.values() for action in actions}
    assert sorted(required & set(UNNEEDED_HANDLER_PERMISSIONS)) == []
    assert [a for a, reason in UNNEEDED_HANDLER_PERMISSIONS.items() if len(reason) < 10] == []
    unexplained = {}
    for resource_type in sorted(product_types()):
        if resource_type.startswith("Custom::"):
            continue
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
        handlers = schema.get("handlers", {})
        permissions = {
            permission
            for handler in ("create", "read", "update", "delete")
            for permission in handlers.get(handler, {}).get("permissions", [])
        } | set(schema.get("tagging", {}).get("permissions", []))
        missing = permissions - required - set(UNNEEDED_HANDLER_PERMISSIONS)
        if missing:
            unexplained[resource_type] = sorted(missing)
    assert unexplained == {}, "grant these or explain them in UNNEEDED_HANDLER_PERMISSIONS"


def test_every_product_name_is_in_an_arn_or_explained():
    text = json.dumps(resolve(template()))
    for key, pattern in PATTERNS.items():
        wildcard = re.sub(r"\$\{(?!AWS::AccountId\})[^}]+\}", "*", pattern)
        wildcard = wildcard.replace("${AWS::AccountId}", ACCOUNT)
        assert wildcard in text or key in NAMES_NOT_IN_ARNS, f"{key}: scope it or explain why not"


def test_every_named_product_resource_falls_under_its_grants():
    region, checked = REGION, 0
    for logical_id, resource in rendered()["Resources"].items():
        if resource["Type"] not in NAMED:
            continue
        arn = arn_of(logical_id, resource, region)
        for action in NAMED[resource["Type"]][3]:
            assert granting(action, arn), f"{logical_id}: {action} on {arn}"
        checked += 1
    assert checked > 10
    assert not granting("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/Admin")
    assert not granting("s3:DeleteBucket", "arn:aws:s3:::someone-elses-data")
    assert not granting("logs:DeleteLogGroup", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/x")


def test_policies_attach_roles_pass_and_custom_resources_invoke_as_the_product_needs():
    region, resources = REGION, rendered()["Resources"]
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            policy = arn_of(logical_id, resource, region)
            for role in properties.get("Roles", []):
                role_arn = referenced_arn(role, region)
                assert granting("iam:AttachRolePolicy", role_arn, {"iam:PolicyARN": policy})
                assert granting("iam:DetachRolePolicy", role_arn, {"iam:PolicyARN": policy})
        if resource["Type"] == "AWS::IAM::Policy":
            for role in properties["Roles"]:
                assert granting("iam:PutRolePolicy", referenced_arn(role, region))
        if resource["Type"] == "AWS::Lambda::Function":
            role_arn = referenced_arn(properties["Role"], region)
            to_lambda = {"iam:PassedToService": "lambda.amazonaws.com"}
            assert granting("iam:PassRole", role_arn, to_lambda), logical_id
        if resource["Type"].startswith("Custom::"):
            function = properties["ServiceToken"]["Fn::GetAtt"][0]
            assert resources[function]["Type"] == "AWS::Lambda::Function", logical_id
            assert granting("lambda:InvokeFunction", referenced_arn({"Ref": function}, region))


def test_the_role_may_check_every_aws_specific_parameter_value():
    """CloudFormation checks such values (the picked zones) with the launch role's credentials,
    before it creates anything: without the action, every launch fails at once."""
    types = {
        definition["Type"]
        for definition in rendered()["Parameters"].values()
        if "AWS::" in definition["Type"]
    }
    assert types == {"List<AWS::EC2::AvailabilityZone::Name>"}
    assert sorted(types - set(PARAMETER_TYPE_ACTIONS)) == [], "map them in PARAMETER_TYPE_ACTIONS"
    for kind in types:
        for action in PARAMETER_TYPE_ACTIONS[kind]:
            assert granting(action, "*", via_cloudformation=False), action
    assert not granting("ec2:DescribeInstanceAttribute", "*", via_cloudformation=False)
