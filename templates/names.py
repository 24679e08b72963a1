"""Every physical name the stack sets, in one place, as ``Fn::Sub`` patterns.

Names Grand Challenge relies on (repository paths, the training-job prefix, the log groups)
are exactly what the backend expects. Names that are global per account (IAM) or per
partition (S3) carry the region (S3 also the account), so one prefix can be deployed in
several regions of an account; they follow the Terraform module's shape otherwise.
``tests/test_names.py`` checks every pattern against its service's length limit.
"""

from troposphere import Equals, If, Ref, Sub

PATTERNS = {
    "inputs_bucket": "${NamePrefix}-${AWS::AccountId}-${AWS::Region}-inputs",
    "outputs_bucket": "${NamePrefix}-${AWS::AccountId}-${AWS::Region}-outputs",
    "logs_bucket": "${NamePrefix}-${AWS::AccountId}-${AWS::Region}-logs",
    "stopped_jobs_queue": "${NamePrefix}-components-stopped-jobs",
    "stopped_jobs_dead_letter_queue": "${NamePrefix}-components-stopped-jobs-dlq",
    # Events the rule could not deliver (queue gone, policy missing): any queue, given or created.
    "undeliverable_events_queue": "${NamePrefix}-components-stopped-jobs-undeliverable",
    "undeliverable_events_alarm": "${NamePrefix}-components-stopped-jobs-undeliverable",
    "unprocessed_messages_alarm": "${NamePrefix}-components-stopped-jobs-dlq-not-empty",
    "security_group": "${NamePrefix}-components",
    "vpc_tag": "${NamePrefix} Components VPC",
    "execution_role": "SAGEMAKER_${NamePrefix}-${AWS::Region}_EXECUTION",
    "execution_policy": "SAGEMAKER_${NamePrefix}-${AWS::Region}_EXECUTION",
    "schedule_policy": "SAGEMAKER_${NamePrefix}-${AWS::Region}_SCHEDULE",
    "logs_policy": "SAGEMAKER_${NamePrefix}-${AWS::Region}_LOGS",
    "ecr_policy": "ECR_${NamePrefix}-${AWS::Region}_READ_WRITE_DELETE",
    "consume_stopped_jobs_policy": "SQS_${NamePrefix}-${AWS::Region}_CONSUME_STOPPED_JOBS",
    "kms_alias": "alias/KMS_${NamePrefix}-/aws/sagemaker/TrainingJobs_ENCRYPT_LOGS",
    "training_jobs_log_group": "/aws/sagemaker/TrainingJobs",
    "stopped_jobs_log_group": "/aws/events/${NamePrefix}-components-stopped-jobs",
    "logs_resource_policy": "${NamePrefix}-components-stopped-jobs-put-logs",
    "stopped_jobs_rule": "${NamePrefix}-components-stopped-training-jobs",
    "repository": "${NamePrefix}/${RepositoryName}",
    "training_job": "${NamePrefix}-*",
}


# Grand Challenge names its jobs <prefix>-<A|E>-<uuid4>-<NN> (A: algorithm job, E: evaluation,
# NN: two-digit attempt) and rejects any other name. ``training_job`` above is that family's
# loose form; a grant or filter on it would also match a sibling deployment whose prefix is
# ours plus "-..." (prefix "gc" matches "gc-prod-A-..."). The exact forms below cannot:
# * ARNs (IAM `?` = one character, `*` = any run): SageMaker lower-cases the job name in
#   training-job ARNs, so the model letter is no separator there ("gc-a" is a valid prefix and
#   "gc-a-a-..." starts with "gc-a-"). The length does it: every character after the prefix is
#   a literal or a `?`, so the pattern matches names of exactly len(prefix) + 42 characters;
#   a sibling's name that length has a prefix as long as ours, and starting with ours it IS ours.
# * Log streams "<job name>/algo-1-<epoch>" keep the case: after "<prefix>-" a sibling's name
#   goes on with its prefix's rest, lowercase letters, digits or "-" (AllowedPattern), never
#   "A-" or "E-"; the `?`s pin the length up to the "/" as well.
# * EventBridge has no `?`: the same uppercase argument makes "<prefix>-A-" / "<prefix>-E-"
#   prefixes exact.
JOB_MODELS = ("A", "E")
UUID4_SHAPE = "????????-????-????-????-????????????"
JOB_NAME_LENGTH_AFTER_PREFIX = 42


def training_job_arn_names():
    """The job-name part of this deployment's training-job ARNs (lower-cased by SageMaker)."""
    return [f"${{NamePrefix}}-{model.lower()}-{UUID4_SHAPE}-??" for model in JOB_MODELS]


def training_job_any_model_arn_name():
    """Either model, letter in any case (the execution role's trust policy): still exact."""
    return f"${{NamePrefix}}-?-{UUID4_SHAPE}-??"


def training_job_log_streams():
    """This deployment's job log streams in /aws/sagemaker/TrainingJobs (case kept)."""
    return [f"${{NamePrefix}}-{model}-{UUID4_SHAPE}-??/*" for model in JOB_MODELS]


def training_job_event_prefixes():
    """EventBridge ``prefix`` filters on TrainingJobName matching only this deployment's jobs."""
    return [f"${{NamePrefix}}-{model}-" for model in JOB_MODELS]


# A deployment moved from the Terraform module (``build.py migrate``) keeps the module's names
# where they differ from PATTERNS: Grand Challenge's settings name the buckets and the role, and
# the workers' IAM users have the policies attached by ARN. Every other name is the same in both.
NAME_STYLE_PARAMETER = "NameStyle"
REGION_UNIQUE_NAMES = "region-unique"
TERRAFORM_MODULE_NAMES = "terraform-module"
USE_TERRAFORM_MODULE_NAMES = "UseTerraformModuleNames"  # the condition name() refers to
TERRAFORM_MODULE_PATTERNS = {
    "inputs_bucket": "${NamePrefix}-components-inputs",
    "outputs_bucket": "${NamePrefix}-components-outputs",
    "execution_role": "SAGEMAKER_${NamePrefix}-components_EXECUTION",
    "execution_policy": "SAGEMAKER_${NamePrefix}-components_EXECUTION",
    "schedule_policy": "SAGEMAKER_${NamePrefix}-components_SCHEDULE",
    "logs_policy": "SAGEMAKER_${NamePrefix}-components_LOGS",
    "ecr_policy": "ECR_${NamePrefix}_READ_WRITE_DELETE",
}


def add_naming_parameter(stack):
    """The NameStyle parameter and the condition name() uses; call before anything uses names."""
    stack.add_parameter(
        NAME_STYLE_PARAMETER,
        "Grand Challenge",
        "Name style",
        Type="String",
        Default=REGION_UNIQUE_NAMES,
        AllowedValues=[REGION_UNIQUE_NAMES, TERRAFORM_MODULE_NAMES],
        Description=(
            "region-unique for a new deployment. terraform-module only for a deployment moved "
            "from the Terraform module (build.py migrate): it keeps the module's bucket and IAM "
            "names, so the prefix can be in one region of the account only."
        ),
    )
    stack.template.add_condition(
        USE_TERRAFORM_MODULE_NAMES, Equals(Ref(NAME_STYLE_PARAMETER), TERRAFORM_MODULE_NAMES)
    )


def name(key, **variables):
    """The ``Fn::Sub`` for one physical name (plain string when it has no variables); an
    ``Fn::If`` on the name style where the Terraform module's name differs."""
    pattern = PATTERNS[key]
    if "${" not in pattern:
        return pattern
    current = Sub(pattern, **variables) if variables else Sub(pattern)
    module_pattern = TERRAFORM_MODULE_PATTERNS.get(key, pattern)
    if module_pattern == pattern:
        return current
    module = Sub(module_pattern, **variables) if variables else Sub(module_pattern)
    return If(USE_TERRAFORM_MODULE_NAMES, module, current)
