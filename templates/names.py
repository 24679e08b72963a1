"""Every physical name the stack sets, in one place, as ``Fn::Sub`` patterns.

Names Grand Challenge relies on (repository paths, the training-job prefix, the log groups)
are exactly what the backend expects. Names that are global per account (IAM) or per
partition (S3) carry the region (S3 also the account), so one prefix can be deployed in
several regions of an account; they follow the Terraform module's shape otherwise.
``tests/test_names.py`` checks every pattern against its service's length limit.
"""

from troposphere import Sub

PATTERNS = {
    "inputs_bucket": "${NamePrefix}-${AWS::AccountId}-${AWS::Region}-inputs",
    "outputs_bucket": "${NamePrefix}-${AWS::AccountId}-${AWS::Region}-outputs",
    "logs_bucket": "${NamePrefix}-${AWS::AccountId}-${AWS::Region}-logs",
    "stopped_jobs_queue": "${NamePrefix}-components-stopped-jobs",
    "stopped_jobs_dead_letter_queue": "${NamePrefix}-components-stopped-jobs-dlq",
    "security_group": "${NamePrefix}-components",
    "vpc_tag": "${NamePrefix} Components VPC",
    "execution_role": "SAGEMAKER_${NamePrefix}-${AWS::Region}_EXECUTION",
    "execution_policy": "SAGEMAKER_${NamePrefix}-${AWS::Region}_EXECUTION",
    "schedule_policy": "SAGEMAKER_${NamePrefix}-${AWS::Region}_SCHEDULE",
    "logs_policy": "SAGEMAKER_${NamePrefix}-${AWS::Region}_LOGS",
    "ecr_policy": "ECR_${NamePrefix}-${AWS::Region}_READ_WRITE_DELETE",
    "kms_alias": "alias/KMS_${NamePrefix}-/aws/sagemaker/TrainingJobs_ENCRYPT_LOGS",
    "training_jobs_log_group": "/aws/sagemaker/TrainingJobs",
    "stopped_jobs_log_group": "/aws/events/${NamePrefix}-components-stopped-jobs",
    "logs_resource_policy": "${NamePrefix}-components-stopped-jobs-put-logs",
    "stopped_jobs_rule": "${NamePrefix}-components-stopped-training-jobs",
    "repository": "${NamePrefix}/${RepositoryName}",
    "training_job": "${NamePrefix}-*",
}


def name(key, **variables):
    """The ``Fn::Sub`` for one physical name (plain string when it has no variables)."""
    pattern = PATTERNS[key]
    if "${" not in pattern:
        return pattern
    return Sub(pattern, **variables) if variables else Sub(pattern)
