"""Registry: ECR repositories ``<prefix>/<name>`` and the policy that pushes and pulls them.

Repository names are a comma-delimited parameter; CloudFormation cannot loop, so the template
has ``MAX_REPOSITORIES`` slots and each slot exists only when the list has that many names.

ECR refuses to delete a repository holding images, so each repository is Retained and paired
with a ``Custom::RepositoryOnDelete`` (functions/ecr_repository.py) that deletes it with its
images when the stack, or the slot, goes, unless ``KeepImagesOnDelete`` is true.
"""

from dataclasses import dataclass

from awacs import ecr
from awacs.aws import Allow, Condition, PolicyDocument, Statement, StringEquals
from troposphere import (
    Equals,
    GetAtt,
    If,
    Join,
    Not,
    NoValue,
    Ref,
    Select,
    Split,
    Sub,
    Tags,
    iam,
)
from troposphere import ecr as ecr_res

from .custom_resources import add_custom_resource, allow_custodian
from .functions.empty_bucket import OPT_IN_TAG_KEY
from .names import name
from .stack import Stack, arn

GROUP = "Container images"
MAX_REPOSITORIES = 4
DEFAULT_REPOSITORIES = (
    "algorithms/algorithmimage",
    "evaluation/method",
    "workstations/workstationimage",
)
# One API call (DeleteRepository force=True); bounded so a stuck call fails in minutes.
REPOSITORY_ON_DELETE_TIMEOUT = 300
REPOSITORY_NAME_PATTERN = r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"

PUSH_PULL_DELETE_ACTIONS = [
    ecr.BatchCheckLayerAvailability,
    ecr.GetDownloadUrlForLayer,
    ecr.GetRepositoryPolicy,
    ecr.DescribeRepositories,
    ecr.ListImages,
    ecr.DescribeImages,
    ecr.BatchGetImage,
    ecr.InitiateLayerUpload,
    ecr.UploadLayerPart,
    ecr.CompleteLayerUpload,
    ecr.PutImage,
    ecr.BatchDeleteImage,
]


@dataclass
class Registry:
    slots: list[tuple[str, ecr_res.Repository]]  # (condition, repository)
    policy: iam.ManagedPolicy

    @property
    def repository_arns(self):
        return [If(condition, GetAtt(repo, "Arn"), NoValue) for condition, repo in self.slots]

    @property
    def repository_names(self):
        return [If(condition, Ref(repo), NoValue) for condition, repo in self.slots]


def add_registry(stack: Stack) -> Registry:
    template = stack.template
    stack.add_parameter(
        "RepositoryNames",
        GROUP,
        "Repository names",
        Type="CommaDelimitedList",
        Default=",".join(DEFAULT_REPOSITORIES),
        AllowedPattern=REPOSITORY_NAME_PATTERN,
        ConstraintDescription="each name: lowercase letters, digits, . _ - separators and / paths",
        Description=(
            f"Up to {MAX_REPOSITORIES} ECR repositories, created as <prefix>/<name>. Remove "
            "names from the end: the names after a removed one would move to other slots."
        ),
    )
    stack.add_parameter(
        "KeepImagesOnDelete",
        GROUP,
        "Keep repositories and images on delete",
        Type="String",
        Default="false",
        AllowedValues=["true", "false"],
        ConstraintDescription="must be true or false",
        Description=(
            "false: deleting the stack or a repository name deletes the repository and its "
            "images. true: they stay (update the stack to true before deleting it)."
        ),
    )
    _allow_deleting_own_repositories(stack)
    # Pad the list so Fn::Select never runs past its end; empty slots are switched off.
    padded = Split(",", Join("", [Join(",", Ref("RepositoryNames")), "," * MAX_REPOSITORIES]))
    slots = [_add_slot(stack, index, Select(index, padded)) for index in range(MAX_REPOSITORIES)]

    registry = Registry(slots, None)
    registry.policy = template.add_resource(
        iam.ManagedPolicy(
            "EcrReadWriteDeletePolicy",
            ManagedPolicyName=name("ecr_policy"),
            Description="Push, pull and delete images in the Grand Challenge repositories",
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="GetAuthorizationToken",
                        Effect=Allow,
                        # sts:GetServiceBearerToken serves only ECR Public and CodeArtifact.
                        Action=[ecr.GetAuthorizationToken],
                        Resource=["*"],
                    ),
                    Statement(
                        Sid="ReadWriteDeleteRepositories",
                        Effect=Allow,
                        Action=PUSH_PULL_DELETE_ACTIONS,
                        Resource=registry.repository_arns,
                    ),
                ],
            ),
        )
    )
    return registry


def _add_slot(stack: Stack, index, repository_name):
    """Repository ``index`` (0-based) and its delete-or-keep companion, both present only
    when the list has a name at ``index``; returns (condition, repository)."""
    template = stack.template
    condition = f"HasRepository{index + 1}"
    template.add_condition(condition, Not(Equals(repository_name, "")))
    repository = template.add_resource(
        ecr_res.Repository(
            f"Repository{index + 1}",
            Condition=condition,
            RepositoryName=name("repository", RepositoryName=repository_name),
            ImageTagMutability="IMMUTABLE",
            ImageScanningConfiguration=ecr_res.ImageScanningConfiguration(ScanOnPush=True),
            EncryptionConfiguration=ecr_res.EncryptionConfiguration(EncryptionType="AES256"),
            Tags=Tags({OPT_IN_TAG_KEY: Ref("AWS::StackId")}),
        )
    )
    # ECR cannot delete a repository holding images: the custom resource below does, or
    # keeps it; either way CloudFormation itself must leave it alone.
    repository.DeletionPolicy = "Retain"
    repository.UpdateReplacePolicy = "Retain"
    repository.Metadata = {
        "checkov": {
            "skip": [
                {
                    "id": "CKV_AWS_136",
                    "comment": "AES256 as in the Terraform module; a CMK adds cost, no control",
                }
            ]
        }
    }
    add_custom_resource(
        stack,
        f"Repository{index + 1}OnDelete",
        "RepositoryOnDelete",
        REPOSITORY_ON_DELETE_TIMEOUT,
        condition=condition,
        RepositoryName=Ref(repository),
        KeepImages=Ref("KeepImagesOnDelete"),
    )
    return condition, repository


def _allow_deleting_own_repositories(stack: Stack):
    """The custodian may delete only repositories tagged as this stack's, and read tags.

    Scoped by the opt-in tag, not by the ``<prefix>/*`` name: after a prefix change the
    policy already names the new prefix when CloudFormation deletes the old repositories.
    Reading tags is not tag-scoped so that a repository already gone answers
    RepositoryNotFound (success) rather than AccessDenied (a tag condition on a missing
    resource cannot match)."""
    repositories = [arn("ecr", "repository/*")]
    allow_custodian(
        stack,
        Statement(
            Sid="ReadRepositoryTags",
            Effect=Allow,
            Action=[ecr.ListTagsForResource],
            Resource=repositories,
        ),
    )
    allow_custodian(
        stack,
        Statement(
            Sid="DeleteOwnRepositories",
            Effect=Allow,
            Action=[ecr.DeleteRepository],
            Resource=repositories,
            Condition=Condition(
                StringEquals(f"aws:ResourceTag/{OPT_IN_TAG_KEY}", Ref("AWS::StackId"))
            ),
        ),
    )


def registry_url():
    """``<account>.dkr.ecr.<region>.<url suffix>``: the bare host Grand Challenge wants."""
    return Sub("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}")
