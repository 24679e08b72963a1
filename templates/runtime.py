"""The components runtime template: one call composes every concern; one template serves
every region (the region-dependent values are looked up at deploy time)."""

from troposphere import Template

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
from .stack import Stack
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


def build_template() -> Template:
    template = Template(Description=DESCRIPTION)
    template.set_version("2010-09-09")
    stack = Stack(template)
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
