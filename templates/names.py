"""Every physical name the stack sets, in one place, as ``Fn::Sub`` patterns.

Names visible to Grand Challenge (repository paths, training-job prefix, log groups) are
fixed by the backend; the rest follow the Terraform module so operators recognise them.
"""

from troposphere import Sub

PATTERNS = {
    "inputs_bucket": "${NamePrefix}-components-inputs",
    "outputs_bucket": "${NamePrefix}-components-outputs",
    "security_group": "${NamePrefix}-components",
    "vpc_tag": "${NamePrefix} Components VPC",
    "execution_role": "SAGEMAKER_${NamePrefix}-components_EXECUTION",
    "execution_policy": "SAGEMAKER_${NamePrefix}-components_EXECUTION",
    "schedule_policy": "SAGEMAKER_${NamePrefix}-components_SCHEDULE",
    "logs_policy": "SAGEMAKER_${NamePrefix}-components_LOGS",
    "ecr_policy": "ECR_${NamePrefix}_READ_WRITE_DELETE",
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
