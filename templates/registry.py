"""Registry: ECR repositories ``<prefix>/<name>`` and the policy that pushes and pulls them.

Repository names are a comma-delimited parameter; CloudFormation cannot loop, so the template
has ``MAX_REPOSITORIES`` slots and each slot exists only when the list has that many names.
"""

from dataclasses import dataclass

from awacs import ecr, sts
from awacs.aws import Allow, PolicyDocument, Statement
from troposphere import Equals, GetAtt, If, Join, Not, NoValue, Ref, Select, Split, Sub, iam
from troposphere import ecr as ecr_res

from .names import name
from .stack import Stack

GROUP = "Container images"
MAX_REPOSITORIES = 4
DEFAULT_REPOSITORIES = (
    "algorithms/algorithmimage",
    "evaluation/method",
    "workstations/workstationimage",
)
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
        Description=f"Up to {MAX_REPOSITORIES} ECR repositories, created as <prefix>/<name>.",
    )
    # Pad the list so Fn::Select never runs past its end; empty slots are switched off.
    padded = Split(",", Join("", [Join(",", Ref("RepositoryNames")), "," * MAX_REPOSITORIES]))
    slots = []
    for index in range(MAX_REPOSITORIES):
        condition = f"HasRepository{index + 1}"
        template.add_condition(condition, Not(Equals(Select(index, padded), "")))
        repository = template.add_resource(
            ecr_res.Repository(
                f"Repository{index + 1}",
                Condition=condition,
                RepositoryName=name("repository", RepositoryName=Select(index, padded)),
                ImageTagMutability="IMMUTABLE",
                ImageScanningConfiguration=ecr_res.ImageScanningConfiguration(ScanOnPush=True),
                EncryptionConfiguration=ecr_res.EncryptionConfiguration(EncryptionType="AES256"),
            )
        )
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
        slots.append((condition, repository))

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
                        Action=[ecr.GetAuthorizationToken, sts.GetServiceBearerToken],
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


def registry_url():
    """``<account>.dkr.ecr.<region>.<url suffix>``: the bare host Grand Challenge wants."""
    return Sub("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}")
