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
