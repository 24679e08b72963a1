"""Storage: the inputs and outputs buckets that hold temporary job I/O, and the logs bucket."""

from awacs.aws import Action, Bool, Condition, Deny, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Join, Ref, Sub, Tags, s3

from .names import PATTERNS, name
from .stack import Stack

GROUP = "Logging"
BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
TEMPORARY_DAYS = 7
# Set on every bucket the stack owns; only such buckets may be emptied on delete.
EMPTY_ON_DELETE_TAG = "grand-challenge:empty-on-delete"


def add_logs_bucket_parameter(stack: Stack):
    stack.add_parameter(
        "LogsBucketName",
        GROUP,
        "Logs bucket name",
        Type="String",
        AllowedPattern=BUCKET_NAME_PATTERN,
        ConstraintDescription="must be an S3 bucket name: 3-63 lowercase letters, digits, dots, hyphens",
        Description="Existing bucket that receives S3 access logs and VPC flow logs.",
    )
    return Ref("LogsBucketName"), Sub("arn:${AWS::Partition}:s3:::${LogsBucketName}")


def add_io_bucket(stack: Stack, logical_id, name_key, logs_bucket_name):
    """A private, encrypted bucket whose objects expire: job I/O is temporary."""
    bucket = stack.template.add_resource(
        s3.Bucket(
            logical_id,
            BucketName=name(name_key),
            OwnershipControls=s3.OwnershipControls(
                Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
            ),
            BucketEncryption=s3.BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    s3.ServerSideEncryptionRule(
                        ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                            SSEAlgorithm="AES256"
                        )
                    )
                ]
            ),
            LoggingConfiguration=s3.LoggingConfiguration(
                DestinationBucketName=logs_bucket_name,
                LogFilePrefix=Sub(f"s3/{PATTERNS[name_key]}/"),
            ),
            VersioningConfiguration=s3.VersioningConfiguration(Status="Suspended"),
            AccelerateConfiguration=s3.AccelerateConfiguration(AccelerationStatus="Suspended"),
            PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
                BlockPublicAcls=True,
                BlockPublicPolicy=True,
                IgnorePublicAcls=True,
                RestrictPublicBuckets=True,
            ),
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
    bucket.Metadata = {
        "checkov": {
            "skip": [
                {
                    "id": "CKV_AWS_21",
                    "comment": "Versioning is suspended on purpose: objects are temporary job I/O",
                }
            ]
        }
    }
    add_tls_only_policy(stack, bucket)
    return bucket


def add_tls_only_policy(stack: Stack, bucket):
    """Deny every request that does not use TLS."""
    return stack.template.add_resource(
        s3.BucketPolicy(
            f"{bucket.title}Policy",
            Bucket=Ref(bucket),
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="DenyInsecureTransport",
                        Effect=Deny,
                        Principal=Principal("*"),
                        Action=[Action("s3", "*")],
                        Resource=[GetAtt(bucket, "Arn"), Join("", [GetAtt(bucket, "Arn"), "/*"])],
                        Condition=Condition(Bool("aws:SecureTransport", "false")),
                    )
                ],
            ),
        )
    )
