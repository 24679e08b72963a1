"""Storage: the inputs and outputs buckets that hold temporary job I/O, and the logs bucket."""

from awacs.aws import (
    Action,
    Allow,
    ArnLike,
    Bool,
    Condition,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import Equals, GetAtt, If, Join, Ref, Sub, Tags, s3

from .custom_resources import CUSTODIAN, add_custom_resource, allow_custodian
from .functions.empty_bucket import OPT_IN_TAG_KEY
from .names import name
from .stack import Stack, arn

GROUP = "Logging"
BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
TEMPORARY_DAYS = 7
EMPTY_ON_DELETE_TAG = OPT_IN_TAG_KEY  # set on every bucket the stack owns, value: the stack id
# The emptier works up to 4 invocations of 900 s (see empty_bucket.py); then it answers.
EMPTIER_SERVICE_TIMEOUT = 3600


def add_logs_bucket(stack: Stack):
    """The bucket for S3 access logs and VPC flow logs: the given one, or one the stack creates.

    Returns (name, ARN) for the rest of the stack. A created bucket's name is taken from its
    emptier's answer, so everything that logs into it is deleted before it is emptied."""
    _add_logs_bucket_parameters(stack)
    stack.template.add_condition("CreateLogsBucket", Equals(Ref("LogsBucketName"), ""))
    bucket = _add_created_logs_bucket(stack)
    emptier = add_emptier(
        stack, bucket, "logs_bucket", condition="CreateLogsBucket", delete_bucket=True
    )
    created_name = GetAtt(emptier, "BucketName")
    created_arn = Sub("arn:${AWS::Partition}:s3:::${Name}", Name=created_name)
    add_tls_only_policy(
        stack,
        "LogsBucketPolicy",
        created_name,
        created_arn,
        extra=_log_delivery_statements(created_arn),
        Condition="CreateLogsBucket",
    )
    return (
        If("CreateLogsBucket", created_name, Ref("LogsBucketName")),
        If("CreateLogsBucket", created_arn, Sub("arn:${AWS::Partition}:s3:::${LogsBucketName}")),
    )


def _add_logs_bucket_parameters(stack: Stack):
    stack.add_parameter(
        "LogsBucketName",
        GROUP,
        "Logs bucket name (empty: create one)",
        Type="String",
        Default="",
        AllowedPattern=f"^$|{BUCKET_NAME_PATTERN}",
        ConstraintDescription="must be empty or an S3 bucket name: 3-63 lowercase letters, digits, dots, hyphens",
        Description="Bucket for S3 access logs and VPC flow logs. Leave empty to create one.",
    )
    stack.add_parameter(
        "LogsExpirationDays",
        GROUP,
        "Logs expiry in a created logs bucket (days)",
        Type="Number",
        Default="365",
        MinValue=1,
        MaxValue=3653,
        ConstraintDescription="must be between 1 and 3653 days",
        Description="Access and flow logs in the bucket the stack creates expire after this.",
    )


def _add_created_logs_bucket(stack: Stack):
    """The logs bucket the stack creates when none is given (condition CreateLogsBucket)."""
    bucket = stack.template.add_resource(
        s3.Bucket(
            "LogsBucket",
            Condition="CreateLogsBucket",
            BucketName=name("logs_bucket"),
            OwnershipControls=_owner_enforced(),
            BucketEncryption=_sse_s3(),  # S3 server access logging cannot write SSE-KMS
            PublicAccessBlockConfiguration=_public_access_blocked(),
            LifecycleConfiguration=s3.LifecycleConfiguration(
                Rules=[
                    s3.LifecycleRule(
                        Id="expire-logs",
                        Status="Enabled",
                        ExpirationInDays=Ref("LogsExpirationDays"),
                        AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                            DaysAfterInitiation=TEMPORARY_DAYS
                        ),
                    )
                ]
            ),
            Tags=Tags({EMPTY_ON_DELETE_TAG: Ref("AWS::StackId")}),
        )
    )
    bucket.Metadata = _skips(
        ("CKV_AWS_18", "This is the logs bucket; logging it into itself would loop"),
        ("CKV_AWS_21", "Logs are written once and expire; versions would only keep deleted logs"),
    )
    return bucket


def _log_delivery_statements(created_arn):
    """S3 server access logging and VPC flow logs may write into the created bucket, for
    this account only: access logs from the stack's own buckets, flow logs under vpc/."""
    source_account = {"aws:SourceAccount": Ref("AWS::AccountId")}
    return [
        Statement(
            Sid="S3ServerAccessLogs",
            Effect=Allow,
            Principal=Principal("Service", "logging.s3.amazonaws.com"),
            Action=[Action("s3", "PutObject")],
            Resource=[Sub("${Base}/s3/*", Base=created_arn)],
            Condition=Condition(
                [
                    StringEquals(source_account),
                    # Only the stack's own buckets log here (ARNs from names: no dependency).
                    ArnLike(
                        "aws:SourceArn",
                        [stack_bucket_arn(key) for key in ("inputs_bucket", "outputs_bucket")],
                    ),
                ]
            ),
        ),
        Statement(
            Sid="VpcFlowLogsWrite",
            Effect=Allow,
            Principal=Principal("Service", "delivery.logs.amazonaws.com"),
            Action=[Action("s3", "PutObject")],
            Resource=[Sub("${Base}/vpc/*", Base=created_arn)],
            Condition=Condition(
                [
                    StringEquals({**source_account, "s3:x-amz-acl": "bucket-owner-full-control"}),
                    ArnLike("aws:SourceArn", arn("logs", "*")),
                ]
            ),
        ),
        Statement(
            Sid="VpcFlowLogsAclCheck",
            Effect=Allow,
            Principal=Principal("Service", "delivery.logs.amazonaws.com"),
            Action=[Action("s3", "GetBucketAcl"), Action("s3", "ListBucket")],
            Resource=[created_arn],
            Condition=Condition(
                [StringEquals(source_account), ArnLike("aws:SourceArn", arn("logs", "*"))]
            ),
        ),
    ]


def stack_bucket_arn(name_key, suffix=""):
    """A stack bucket's ARN from its name (whichever NameStyle), without a reference to it."""
    return Sub("arn:${AWS::Partition}:s3:::${Bucket}" + suffix, Bucket=name(name_key))


def _skips(*pairs):
    return {"checkov": {"skip": [{"id": check, "comment": reason} for check, reason in pairs]}}


def _owner_enforced():
    return s3.OwnershipControls(
        Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
    )


def _sse_s3():
    return s3.BucketEncryption(
        ServerSideEncryptionConfiguration=[
            s3.ServerSideEncryptionRule(
                ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                    SSEAlgorithm="AES256"
                )
            )
        ]
    )


def _public_access_blocked():
    return s3.PublicAccessBlockConfiguration(
        BlockPublicAcls=True,
        BlockPublicPolicy=True,
        IgnorePublicAcls=True,
        RestrictPublicBuckets=True,
    )


def add_emptier(stack: Stack, bucket, name_key, condition=None, delete_bucket=False):
    """A custom resource that empties ``bucket`` when the stack deletes it (one per bucket).

    It refers to the bucket, so CloudFormation deletes it, and so empties the bucket, before
    deleting the bucket itself. The custodian may list and delete in this bucket only (its
    ARN is built from the name, so the grant holds whether or not the bucket is created).
    With ``delete_bucket`` the emptier also deletes the bucket right after emptying it, so late
    log deliveries cannot make CloudFormation's own DeleteBucket fail."""
    deletes_bucket = [Action("s3", "DeleteBucket")] if delete_bucket else []
    allow_custodian(
        stack,
        Statement(
            Sid=f"Empty{bucket.title}",
            Effect=Allow,
            Action=[
                Action("s3", "GetBucketTagging"),
                Action("s3", "ListBucket"),
                Action("s3", "ListBucketVersions"),
                Action("s3", "ListBucketMultipartUploads"),
                Action("s3", "DeleteObject"),
                Action("s3", "DeleteObjectVersion"),
                Action("s3", "AbortMultipartUpload"),
                *deletes_bucket,
            ],
            Resource=[stack_bucket_arn(name_key), stack_bucket_arn(name_key, "/*")],
        ),
    )
    if not any(
        s.properties.get("Sid") == "EmptyInNewInvocation" for s in stack.custodian_statements
    ):
        # A big bucket is emptied over several invocations: the function re-invokes itself.
        allow_custodian(
            stack,
            Statement(
                Sid="EmptyInNewInvocation",
                Effect=Allow,
                Action=[Action("lambda", "InvokeFunction")],
                Resource=[GetAtt(CUSTODIAN, "Arn")],
            ),
        )
    return add_custom_resource(
        stack,
        f"Empty{bucket.title}",
        "EmptyBucket",
        EMPTIER_SERVICE_TIMEOUT,
        condition=condition,
        BucketName=Ref(bucket),
        **({"DeleteBucket": "true"} if delete_bucket else {}),
    )


def add_io_bucket(stack: Stack, logical_id, name_key, logs_bucket_name):
    """A private, encrypted bucket whose objects expire (job I/O is temporary), emptied on delete."""
    bucket = stack.template.add_resource(
        s3.Bucket(
            logical_id,
            BucketName=name(name_key),
            OwnershipControls=_owner_enforced(),
            BucketEncryption=_sse_s3(),
            LoggingConfiguration=s3.LoggingConfiguration(
                DestinationBucketName=logs_bucket_name,
                LogFilePrefix=Sub("s3/${Bucket}/", Bucket=name(name_key)),
            ),
            VersioningConfiguration=s3.VersioningConfiguration(Status="Suspended"),
            AccelerateConfiguration=s3.AccelerateConfiguration(AccelerationStatus="Suspended"),
            PublicAccessBlockConfiguration=_public_access_blocked(),
            LifecycleConfiguration=s3.LifecycleConfiguration(
                Rules=[
                    s3.LifecycleRule(
                        Id="expire-temporary-job-io",
                        Status="Enabled",
                        ExpirationInDays=TEMPORARY_DAYS,
                        NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                            NoncurrentDays=TEMPORARY_DAYS
                        ),
                        AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                            DaysAfterInitiation=TEMPORARY_DAYS
                        ),
                    ),
                    s3.LifecycleRule(
                        Id="remove-expired-delete-markers",
                        Status="Enabled",
                        ExpiredObjectDeleteMarker=True,
                    ),
                ]
            ),
            Tags=Tags({EMPTY_ON_DELETE_TAG: Ref("AWS::StackId")}),
        )
    )
    bucket.Metadata = _skips(
        ("CKV_AWS_21", "Versioning is suspended on purpose: objects are temporary job I/O")
    )
    add_tls_only_policy(stack, f"{logical_id}Policy", Ref(bucket), GetAtt(bucket, "Arn"))
    add_emptier(stack, bucket, name_key)
    return bucket


def add_tls_only_policy(stack: Stack, logical_id, bucket_name, bucket_arn, extra=(), **attributes):
    """A bucket policy denying every request without TLS, plus any ``extra`` statements."""
    return stack.template.add_resource(
        s3.BucketPolicy(
            logical_id,
            Bucket=bucket_name,
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    *extra,
                    Statement(
                        Sid="DenyInsecureTransport",
                        Effect=Deny,
                        Principal=Principal("*"),
                        Action=[Action("s3", "*")],
                        # Fn::Join, not Fn::Sub: the Control Tower guard rule CT.S3.PR.8
                        # recognises a bucket's objects only in this form.
                        Resource=[bucket_arn, Join("", [bucket_arn, "/*"])],
                        Condition=Condition(Bool("aws:SecureTransport", "false")),
                    ),
                ],
            ),
            **attributes,
        )
    )
