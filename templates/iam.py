"""IAM: the role SageMaker runs the jobs as, and the policies for Grand Challenge's workers.

Statement for statement these follow the Terraform module (same actions, same scoping,
every condition on CreateTrainingJob); resources are built from the stack's own ARNs.
"""

from dataclasses import dataclass

from awacs import cloudwatch, ec2, ecr, logs, s3, sagemaker, sts
from awacs import iam as iam_actions
from awacs.aws import (
    Allow,
    ArnEquals,
    ArnLike,
    Bool,
    Condition,
    ForAllValuesStringEquals,
    Null,
    NumericLessThanEquals,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import GetAtt, Ref, Sub, iam

from .logs import Logs
from .names import (
    PATTERNS,
    name,
    training_job_any_model_arn_name,
    training_job_arn_names,
    training_job_log_streams,
)
from .network import Network, ec2_arn
from .registry import Registry
from .stack import Stack, arn, permissions_boundary

GROUP = "Training jobs"
MAX_RUNTIME_SECONDS = 2_419_200  # SageMaker's own limit: 28 days
DEFAULT_INSTANCE_TYPES = (
    "ml.g4dn.xlarge",
    "ml.g4dn.2xlarge",
    "ml.g4dn.4xlarge",
    "ml.p3.2xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.p2.xlarge",
    "ml.m7i.large",
    "ml.r7i.large",
    "ml.r7i.xlarge",
    "ml.r7i.2xlarge",
    "ml.r7i.4xlarge",
    "ml.r7i.8xlarge",
    "ml.r7i.12xlarge",
    "ml.r7i.16xlarge",
    "ml.r7i.24xlarge",
    "ml.r7i.48xlarge",
    # Grand Challenge can also request these; the Terraform default misses them (AccessDenied).
    "ml.g4dn.8xlarge",
    "ml.g4dn.12xlarge",
    "ml.g4dn.16xlarge",
    "ml.g5.4xlarge",
    "ml.g5.8xlarge",
    "ml.g5.12xlarge",
    "ml.g5.16xlarge",
    "ml.g5.24xlarge",
    "ml.g5.48xlarge",
    "ml.p3.8xlarge",
    "ml.p3.16xlarge",
    "ml.p3dn.24xlarge",
    "ml.p2.8xlarge",
    "ml.p2.16xlarge",
    "ml.p4d.24xlarge",
)
INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"
TRAINING_JOBS_LOG_STREAMS = f"log-group:{PATTERNS['training_jobs_log_group']}:log-stream:"
NETWORK_INTERFACES = arn("ec2", "network-interface/*")


@dataclass
class Iam:
    execution_role: iam.Role
    execution_policy: iam.ManagedPolicy
    schedule_policy: iam.ManagedPolicy
    logs_policy: iam.ManagedPolicy


def _objects(bucket):
    return Sub("${Bucket}/*", Bucket=GetAtt(bucket, "Arn"))


def _training_jobs():
    """This deployment's training jobs, and no sibling's (see names.py)."""
    return [arn("sagemaker", f"training-job/{job}") for job in training_job_arn_names()]


def _execution_trust_policy():
    """SageMaker may assume the role only for this account's training jobs (confused deputy).

    SageMaker documents ``aws:SourceArn`` = the training job's ARN for a role passed to
    training jobs ("Cross-service confused deputy prevention for SageMaker training jobs").
    The model letter is a `?` here: a case mismatch would break every job, and the length
    still pins the prefix (names.py)."""
    any_model = f"training-job/{training_job_any_model_arn_name()}"
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Effect=Allow,
                Principal=Principal("Service", "sagemaker.amazonaws.com"),
                Action=[sts.AssumeRole],
                Condition=Condition(
                    [
                        StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
                        ArnLike("aws:SourceArn", arn("sagemaker", any_model)),
                    ]
                ),
            )
        ],
    )


def _policy(logical_id, name_key, description, statements, **properties):
    return iam.ManagedPolicy(
        logical_id,
        ManagedPolicyName=name(name_key),
        Description=description,
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements),
        **properties,
    )


def _read_job_logs_statements():
    """Shared by the schedule and read-only logs policies."""
    return [
        Statement(
            Sid="GetJobLogs",
            Effect=Allow,
            Action=[logs.DescribeLogStreams, logs.GetLogEvents],
            Resource=[
                # DescribeLogStreams is authorised on the group's ARN ending in "log-stream:".
                arn("logs", TRAINING_JOBS_LOG_STREAMS),
                *[arn("logs", TRAINING_JOBS_LOG_STREAMS + s) for s in training_job_log_streams()],
            ],
        ),
    ]


def _get_metric_data_statement():
    return Statement(
        Sid="GetMetricData",
        Effect=Allow,
        Action=[cloudwatch.GetMetricData],
        Resource=["*"],  # GetMetricData has no resource-level permissions
    )


def add_parameters(stack: Stack):
    stack.add_parameter(
        "MaximumRuntimeSeconds",
        GROUP,
        "Maximum job runtime (seconds)",
        Type="Number",
        Default="86400",
        MinValue=1,
        MaxValue=MAX_RUNTIME_SECONDS,
        ConstraintDescription=f"must be between 1 and {MAX_RUNTIME_SECONDS} seconds (28 days)",
        Description="Grand Challenge may not start a training job allowed to run longer.",
    )
    stack.add_parameter(
        "AllowedInstanceTypes",
        GROUP,
        "Allowed instance types",
        Type="CommaDelimitedList",
        Default=",".join(DEFAULT_INSTANCE_TYPES),
        AllowedPattern=INSTANCE_TYPE_PATTERN,
        ConstraintDescription="each entry must be a SageMaker instance type such as ml.g4dn.xlarge",
        Description="SageMaker instance types Grand Challenge may start training jobs on.",
    )


def add_iam(stack: Stack, network: Network, inputs, outputs, registry: Registry):
    """The execution role with its policy, and the two policies for Grand Challenge's workers.

    The order of the calls is the order of the resources in the template: keep it, or the
    rendered bytes (and every published diff) change for nothing."""
    add_parameters(stack)
    execution_role = _add_execution_role(stack)
    execution_policy = stack.template.add_resource(
        _policy(
            "ExecutionPolicy",
            "execution_policy",
            "What a Grand Challenge training job may do",
            [
                *_job_io_statements(inputs, outputs, registry),
                *_job_telemetry_statements(),
                *_job_vpc_statements(network),
            ],
            Roles=[Ref(execution_role)],
        )
    )
    schedule_policy = _add_schedule_policy(stack, execution_role, network, inputs, outputs)
    logs_policy = _add_logs_policy(stack)
    return Iam(execution_role, execution_policy, schedule_policy, logs_policy)


def _add_execution_role(stack: Stack):
    return stack.template.add_resource(
        iam.Role(
            "ExecutionRole",
            RoleName=name("execution_role"),
            Description="Assumed by SageMaker to run Grand Challenge algorithm and evaluation jobs",
            AssumeRolePolicyDocument=_execution_trust_policy(),
            PermissionsBoundary=permissions_boundary(stack),
        )
    )


def _job_io_statements(inputs, outputs, registry: Registry):
    """A job pulls its image from the stack's repositories, reads inputs, writes outputs."""
    return [
        Statement(
            Sid="GetAuthorizationToken",
            Effect=Allow,
            Action=[ecr.GetAuthorizationToken],
            Resource=["*"],
        ),
        Statement(
            Sid="ReadInputs",
            Effect=Allow,
            Action=[s3.GetObject],
            Resource=[_objects(inputs)],
        ),
        Statement(
            Sid="WriteOutputs",
            Effect=Allow,
            Action=[s3.PutObject],
            Resource=[_objects(outputs)],
        ),
        Statement(
            Sid="GetRepositoryContents",
            Effect=Allow,
            Action=[
                ecr.BatchCheckLayerAvailability,
                ecr.BatchGetImage,
                ecr.DescribeImages,
                ecr.GetDownloadUrlForLayer,
            ],
            Resource=registry.repository_arns,
        ),
    ]


def _job_telemetry_statements():
    """A job writes its own logs and metrics."""
    return [
        Statement(
            Sid="FindLogStreams",
            Effect=Allow,
            Action=[
                logs.CreateLogGroup,  # SageMaker creates the group even when it exists
                logs.DescribeLogStreams,
            ],
            Resource=[Sub("${Group}:*", Group=Logs.log_group_arn("training_jobs_log_group"))],
        ),
        Statement(
            # Only this deployment's streams: the role's credentials reach the
            # participant's code, which must not write into a sibling's job logs.
            Sid="PutLogEvents",
            Effect=Allow,
            Action=[logs.CreateLogStream, logs.PutLogEvents],
            Resource=[
                arn("logs", TRAINING_JOBS_LOG_STREAMS + stream)
                for stream in training_job_log_streams()
            ],
        ),
        Statement(
            Sid="PutMetrics",
            Effect=Allow,
            Action=[cloudwatch.PutMetricData],
            Resource=["*"],  # CloudWatch metrics have no resource-level permissions
        ),
    ]


def _job_vpc_statements(network: Network):
    """SageMaker, as the job's role, attaches the job to the stack's subnets and detaches it."""
    in_this_vpc = Condition(ArnEquals("ec2:Vpc", ec2_arn("vpc", Ref(network.vpc))))
    return [
        Statement(
            Sid="ViewVPCInfo",
            Effect=Allow,
            Action=[
                ec2.DescribeNetworkInterfaces,
                ec2.DescribeSubnets,
                ec2.DescribeSecurityGroups,
                ec2.DescribeVpcs,
                ec2.DescribeDhcpOptions,
            ],
            Resource=["*"],  # Describe* calls have no resource-level permissions
        ),
        Statement(
            Sid="AttachToVPC",
            Effect=Allow,
            Action=[ec2.CreateNetworkInterface],
            Resource=[
                *network.subnet_arns,
                ec2_arn("security-group", GetAtt(network.security_group, "GroupId")),
                NETWORK_INTERFACES,
            ],
        ),
        Statement(
            Sid="DetachFromVPC",
            Effect=Allow,
            Action=[ec2.DeleteNetworkInterface],
            Resource=[NETWORK_INTERFACES],
            # Only this VPC's interfaces, not every one in the region. The Service
            # Authorization Reference lists ec2:Vpc among DeleteNetworkInterface's
            # network-interface condition keys: EC2 sets it from the interface itself,
            # whoever calls (SageMaker here).
            Condition=in_this_vpc,
        ),
        Statement(
            Sid="ModifyInterfaces",
            Effect=Allow,
            Action=[
                ec2.CreateNetworkInterfacePermission,
                ec2.DeleteNetworkInterfacePermission,
            ],
            Resource=[NETWORK_INTERFACES],
            Condition=in_this_vpc,
        ),
    ]


def _add_schedule_policy(stack: Stack, execution_role, network: Network, inputs, outputs):
    return stack.template.add_resource(
        _policy(
            "SchedulePolicy",
            "schedule_policy",
            "For Grand Challenge workers: start, watch and stop training jobs; manage job I/O",
            [
                *_read_job_logs_statements(),
                Statement(
                    Sid="PassExecutionRole",
                    Effect=Allow,
                    Action=[iam_actions.PassRole],
                    Resource=[GetAtt(execution_role, "Arn")],
                    Condition=Condition(
                        StringEquals("iam:PassedToService", "sagemaker.amazonaws.com")
                    ),
                ),
                _create_training_job_statement(network),
                Statement(
                    Sid="ReadStopSageMakerJobs",
                    Effect=Allow,
                    Action=[sagemaker.DescribeTrainingJob, sagemaker.StopTrainingJob],
                    Resource=_training_jobs(),
                ),
                _get_metric_data_statement(),
                *_manage_job_io_statements(inputs, outputs),
            ],
        )
    )


def _create_training_job_statement(network: Network):
    """Only jobs that run in the stack's subnets and security group, on an allowed instance
    type, within the runtime limit, and without remote debugging (all keys required)."""
    return Statement(
        Sid="CreateSageMakerJobs",
        Effect=Allow,
        Action=[sagemaker.CreateTrainingJob],
        Resource=_training_jobs(),
        Condition=Condition(
            [
                NumericLessThanEquals(
                    "sagemaker:MaxRuntimeInSeconds", Ref("MaximumRuntimeSeconds")
                ),
                Null(
                    {
                        "sagemaker:VpcSubnets": "false",
                        "sagemaker:VpcSecurityGroupIds": "false",
                        "sagemaker:InstanceTypes": "false",
                    }
                ),
                ForAllValuesStringEquals(
                    {
                        "sagemaker:VpcSubnets": network.subnet_ids,
                        "sagemaker:VpcSecurityGroupIds": [
                            GetAtt(network.security_group, "GroupId")
                        ],
                        "sagemaker:InstanceTypes": Ref("AllowedInstanceTypes"),
                    }
                ),
                Bool("sagemaker:EnableRemoteDebug", "false"),
            ]
        ),
    )


def _manage_job_io_statements(inputs, outputs):
    """Workers upload inputs, fetch outputs, and delete both once a job is done."""
    return [
        Statement(
            Sid="ReadWriteDeleteInputs",
            Effect=Allow,
            Action=[
                s3.GetObject,
                s3.ListBucket,
                s3.ListMultipartUploadParts,
                s3.PutObject,
                s3.DeleteObject,
                s3.AbortMultipartUpload,
            ],
            Resource=[_objects(inputs), GetAtt(inputs, "Arn")],
        ),
        Statement(
            Sid="ReadDeleteOutputs",
            Effect=Allow,
            Action=[
                s3.GetObject,
                s3.ListBucket,
                s3.ListMultipartUploadParts,
                s3.DeleteObject,
                s3.AbortMultipartUpload,
            ],
            Resource=[_objects(outputs), GetAtt(outputs, "Arn")],
        ),
    ]


def _add_logs_policy(stack: Stack):
    return stack.template.add_resource(
        _policy(
            "LogsPolicy",
            "logs_policy",
            "Read-only: Grand Challenge training-job logs, status and metrics",
            [
                *_read_job_logs_statements(),
                Statement(
                    Sid="DescribeSageMakerJobs",
                    Effect=Allow,
                    Action=[sagemaker.DescribeTrainingJob],
                    Resource=_training_jobs(),
                ),
                _get_metric_data_statement(),
            ],
        )
    )
