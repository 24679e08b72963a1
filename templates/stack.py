"""What every concern module receives: the template being built and its shared parameters."""

from dataclasses import dataclass, field

from awacs import sts
from awacs.aws import Allow, PolicyDocument, Principal, Statement
from troposphere import Equals, If, Not, NoValue, Parameter, Ref, Sub, Template


@dataclass
class Stack:
    """The template under construction and the parameters shared by all modules."""

    template: Template
    parameter_groups: dict[str, list[str]] = field(default_factory=dict)
    parameter_labels: dict[str, str] = field(default_factory=dict)
    custodian_statements: list = field(default_factory=list)  # IAM for the custom resources

    def add_parameter(self, name, group, label, **properties):
        """Add a parameter and file it under a console group with a readable label."""
        parameter = self.template.add_parameter(Parameter(name, **properties))
        self.parameter_groups.setdefault(group, []).append(name)
        self.parameter_labels[name] = label
        return parameter


def deleted_with_the_stack(resource):
    """Say explicitly that a stateful resource goes with the stack (cfn-lint I3011)."""
    resource.DeletionPolicy = "Delete"
    resource.UpdateReplacePolicy = "Delete"
    return resource


def trusted_by(service_principal):
    """An assume-role policy letting one AWS service assume the role."""
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Effect=Allow,
                Principal=Principal("Service", service_principal),
                Action=[sts.AssumeRole],
            )
        ],
    )


def arn(service, resource, region="${AWS::Region}", account="${AWS::AccountId}"):
    """An ARN in the stack's partition: ``arn(...)`` never hard-codes ``arn:aws:``."""
    return Sub(f"arn:${{AWS::Partition}}:{service}:{region}:{account}:{resource}")


PERMISSIONS_GROUP = "Permissions"
PERMISSIONS_BOUNDARY_PATTERN = r"^$|^arn:aws[a-z-]*:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_/-]+$"


def permissions_boundary(stack: Stack):
    """``PermissionsBoundary`` for every role the stack creates: the launch-role stack's boundary
    when launched through Service Catalog (its launch role may only create roles carrying it),
    none when the parameter is empty (a stand-alone ``aws cloudformation deploy``)."""
    if "PermissionsBoundaryArn" not in stack.template.parameters:
        stack.add_parameter(
            "PermissionsBoundaryArn",
            PERMISSIONS_GROUP,
            "Permissions boundary for the stack's roles (empty: none)",
            Type="String",
            Default="",
            AllowedPattern=PERMISSIONS_BOUNDARY_PATTERN,
            ConstraintDescription="must be empty or an IAM policy ARN",
            Description="Launching from Service Catalog: the PermissionsBoundaryArn output of "
            "the launch-role stack. Deploying stand-alone: leave empty.",
        )
        stack.template.add_condition(
            "HasPermissionsBoundary", Not(Equals(Ref("PermissionsBoundaryArn"), ""))
        )
    return If("HasPermissionsBoundary", Ref("PermissionsBoundaryArn"), NoValue)
