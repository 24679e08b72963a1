"""Outputs: everything the Terraform module outputs, named so operators can paste them into
Grand Challenge. ``GRAND_CHALLENGE_SETTINGS`` maps each setting to the output that feeds it."""

from troposphere import GetAtt, Join, Output, Ref

from .registry import registry_url

# Grand Challenge setting -> output key, in the order the env block prints them.
GRAND_CHALLENGE_SETTINGS = {
    "COMPONENTS_AMAZON_ECR_REGION": "Region",
    "COMPONENTS_REGISTRY_URL": "RegistryUrl",
    "COMPONENTS_REGISTRY_PREFIX": "RegistryPrefix",
    "COMPONENTS_AMAZON_SAGEMAKER_EXECUTION_ROLE_ARN": "ExecutionRoleArn",
    "COMPONENTS_AMAZON_SAGEMAKER_SECURITY_GROUP_ID": "SecurityGroupId",
    "COMPONENTS_AMAZON_SAGEMAKER_SUBNETS": "PrivateSubnetIds",
    "COMPONENTS_INPUT_BUCKET_NAME": "InputsBucketName",
    "COMPONENTS_OUTPUT_BUCKET_NAME": "OutputsBucketName",
}

# What `build.py outputs` prints after the settings, as comments (an env file ignores them):
# heading -> output keys, each group printed only with the outputs the stack has.
OPERATOR_NOTES = {
    "Grand Challenge's consumer reads the stopped-job messages from": [
        "StoppedEventsQueueUrl",
    ],
    "Attach to the Grand Challenge workers' IAM role": [
        "SchedulePolicyArn",
        "EcrPolicyArn",
        "ConsumeStoppedJobsPolicyArn",
    ],
    "Watch: each alarm is in ALARM while the dead-letter queue after it holds messages": [
        "UndeliverableEventsAlarmName",
        "UndeliverableEventsQueueUrl",
        "UnprocessedStoppedJobsAlarmName",
        "StoppedJobsDeadLetterQueueUrl",
    ],
}


def env_block(outputs):
    """The lines ``build.py outputs`` prints for a stack's ``{output key: value}``: the
    settings to paste into Grand Challenge, then comment lines for the operator."""
    lines = [f"{setting}={outputs[key]}" for setting, key in GRAND_CHALLENGE_SETTINGS.items()]
    for heading, keys in OPERATOR_NOTES.items():
        present = [key for key in keys if outputs.get(key)]
        if present:
            lines.append(f"# {heading}:")
            lines.extend(f"#   {key}={outputs[key]}" for key in present)
    return lines


def add_outputs(stack, network, inputs, outputs, registry, iam_, stopped_jobs_rule):
    values = {
        "Region": (Ref("AWS::Region"), "Region of the runtime"),
        "RegistryUrl": (registry_url(), "ECR registry host, without scheme"),
        "RegistryPrefix": (Ref("NamePrefix"), "Registry prefix (the name prefix)"),
        "ExecutionRoleArn": (GetAtt(iam_.execution_role, "Arn"), "SageMaker execution role"),
        "SecurityGroupId": (
            GetAtt(network.security_group, "GroupId"),
            "Security group of the training jobs",
        ),
        "PrivateSubnetIds": (
            Join(",", network.subnet_ids),
            "Private subnets, comma-separated without spaces",
        ),
        "InputsBucketName": (Ref(inputs), "Bucket for job inputs"),
        "OutputsBucketName": (Ref(outputs), "Bucket for job outputs"),
        "EcrRepositories": (Join(",", registry.repository_names), "ECR repositories"),
        "EcrPolicyArn": (Ref(registry.policy), "Managed policy: push, pull, delete images"),
        "SchedulePolicyArn": (
            Ref(iam_.schedule_policy),
            "Managed policy for the Grand Challenge workers",
        ),
        "LogsPolicyArn": (Ref(iam_.logs_policy), "Managed policy: read job logs and status"),
        "StoppedTrainingJobsRuleArn": (
            GetAtt(stopped_jobs_rule, "Arn"),
            "EventBridge rule reporting stopped jobs",
        ),
    }
    settings_by_output = {output: setting for setting, output in GRAND_CHALLENGE_SETTINGS.items()}
    for key, (value, description) in values.items():
        setting = settings_by_output.get(key)
        if setting:
            description = f"{setting}: {description}"
        stack.template.add_output(Output(key, Value=value, Description=description))
