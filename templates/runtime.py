"""The components runtime template: one call composes every concern for one region."""

from troposphere import Equals, Ref, Template

from .custom_resources import add_custodian
from .events import add_stopped_jobs_rule
from .iam import add_iam
from .logs import add_logs
from .names import add_naming_parameter
from .network import (
    add_flow_log,
    add_network,
    add_network_interface_cleanup,
    add_s3_endpoint,
    add_s3_network_acl_sync,
    add_vpc_lockdown,
)
from .outputs import add_outputs
from .registry import add_registry
from .stack import Region, Stack
from .storage import add_io_bucket, add_logs_bucket

DESCRIPTION = (
    "Grand Challenge components runtime: SageMaker training jobs in a locked-down VPC, "
    "S3 job I/O, ECR repositories, encrypted logs and stopped-job events to SQS"
)
NAME_PREFIX_PATTERN = r"^[a-z][a-z0-9-]*$"
MAX_PREFIX_LENGTH = 21  # SageMaker job names: 63 chars, Grand Challenge adds 42 after the prefix
GROUP_ORDER = [
    "Grand Challenge",
    "Logging",
    "Training jobs",
    "Container images",
    "Network",
    "Availability zones",
    "Monitoring",
    "Permissions",
]


def build_template(region: Region) -> Template:
    template = Template(Description=DESCRIPTION)
    template.set_version("2010-09-09")
    stack = Stack(template, region)
    stack.add_parameter(
        "NamePrefix",
        "Grand Challenge",
        "Name prefix",
        Type="String",
        MinLength=1,
        MaxLength=MAX_PREFIX_LENGTH,
        AllowedPattern=NAME_PREFIX_PATTERN,
        ConstraintDescription=(
            f"1-{MAX_PREFIX_LENGTH} lowercase letters, digits or hyphens, starting with a letter"
        ),
        Description="Prefix of every name; Grand Challenge's COMPONENTS_REGISTRY_PREFIX.",
    )
    add_naming_parameter(stack)
    _refuse_other_regions(stack)
    logs_bucket_name, logs_bucket_arn = add_logs_bucket(stack)
    logs = add_logs(stack)
    inputs = add_io_bucket(stack, "InputsBucket", "inputs_bucket", logs_bucket_name)
    outputs = add_io_bucket(stack, "OutputsBucket", "outputs_bucket", logs_bucket_name)
    registry = add_registry(stack)
    network = add_network(stack)
    add_s3_network_acl_sync(stack, network)
    add_vpc_lockdown(stack, network)
    add_network_interface_cleanup(stack, network)
    add_flow_log(stack, network, logs_bucket_arn)
    iam = add_iam(stack, network, inputs, outputs, registry)
    add_s3_endpoint(stack, network, inputs, outputs, iam.execution_role)
    rule = add_stopped_jobs_rule(stack, logs)
    add_outputs(stack, network, inputs, outputs, registry, iam, rule)
    add_custodian(stack)
    _add_console_interface(stack)
    return template


def _refuse_other_regions(stack: Stack):
    """The zone ids, subnets and prefix lists are the built region's: elsewhere the stack would
    create buckets and the Lambda, fail on the first subnet and roll back. A rule refuses it
    before anything is created."""
    region = stack.region.name
    stack.template.add_rule(
        "BuiltForRegion",
        {
            "Assertions": [
                {
                    "Assert": Equals(Ref("AWS::Region"), region),
                    "AssertDescription": (
                        f"This template is built for {region} only: deploy the template "
                        "built for this region (<region>.json, or its product version)."
                    ),
                }
            ]
        },
    )


def _add_console_interface(stack: Stack):
    groups = sorted(stack.parameter_groups.items(), key=lambda item: GROUP_ORDER.index(item[0]))
    stack.template.set_metadata(
        {
            "AWS::CloudFormation::Interface": {
                "ParameterGroups": [
                    {"Label": {"default": label}, "Parameters": names} for label, names in groups
                ],
                "ParameterLabels": {
                    name: {"default": label} for name, label in stack.parameter_labels.items()
                },
            }
        }
    )
