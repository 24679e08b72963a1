"""What the diagram makes of a template's pieces: how each resource type is drawn, which
types only attach to or link others, what a reference from one property means, and the walk
that finds references (``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` variables) in a value.

Pure functions over the template's plain data; diagram_layout.py applies them to a whole
template, diagram.py writes the Mermaid text."""

import json
import re

FLOW, PERM, DEPENDS = "flow", "perm", "depends"

# type -> (readable label, shape, category); the category orders the node declarations.
TYPES = {
    "AWS::EC2::VPC": ("VPC", "rect", 0),
    "AWS::EC2::Subnet": ("Subnet", "rect", 0),
    "AWS::EC2::RouteTable": ("Route table", "rect", 0),
    "AWS::EC2::VPCEndpoint": ("VPC endpoint", "rect", 0),
    "AWS::EC2::SecurityGroup": ("Security group", "rect", 0),
    "AWS::EC2::NetworkAcl": ("Network ACL", "rect", 0),
    "AWS::EC2::FlowLog": ("VPC flow log", "rect", 0),
    "AWS::EC2::InternetGateway": ("Internet gateway", "rect", 0),
    "AWS::EC2::NatGateway": ("NAT gateway", "rect", 0),
    "AWS::S3::Bucket": ("S3 bucket", "cylinder", 1),
    "AWS::ECR::Repository": ("ECR repository", "cylinder", 1),
    "AWS::Events::Rule": ("EventBridge rule", "hexagon", 2),
    "AWS::SQS::Queue": ("SQS queue", "cylinder", 2),
    "AWS::SNS::Topic": ("SNS topic", "cylinder", 2),
    "AWS::Logs::LogGroup": ("Log group", "cylinder", 3),
    "AWS::Logs::ResourcePolicy": ("Logs resource policy", "round", 3),
    "AWS::KMS::Key": ("KMS key", "rect", 3),
    "AWS::IAM::Role": ("IAM role", "stadium", 4),
    "AWS::IAM::ManagedPolicy": ("IAM managed policy", "round", 4),
    "AWS::IAM::Policy": ("IAM policy", "round", 4),
    "AWS::Lambda::Function": ("Lambda function", "subroutine", 5),
}
CUSTOM_CATEGORY, OTHER_CATEGORY = 5, 6
CATEGORY_BY_SERVICE = {"EC2": 0, "S3": 1, "ECR": 1, "Events": 2, "SQS": 2, "SNS": 2}
CATEGORY_BY_SERVICE |= {"Logs": 3, "KMS": 3, "IAM": 4, "Lambda": 5}

# Resources that only attach to another: type -> property naming the host they fold into.
ABSORBED = {
    "AWS::S3::BucketPolicy": "Bucket",
    "AWS::SQS::QueuePolicy": "Queues",
    "AWS::SNS::TopicPolicy": "Topics",
    "AWS::Lambda::Permission": "FunctionName",
    "AWS::KMS::Alias": "TargetKeyId",
}
# Resources that only link two others: type -> (from property, to property, label).
LINKS = {
    "AWS::EC2::SubnetRouteTableAssociation": ("SubnetId", "RouteTableId", "routes via"),
    "AWS::EC2::SubnetNetworkAclAssociation": ("NetworkAclId", "SubnetId", "filters"),
    "AWS::EC2::VPCGatewayAttachment": ("InternetGatewayId", "VpcId", "attached to"),
}
# (referring type, top-level property) -> (label, style, drawn from the referenced resource)
RELATIONS = {
    ("AWS::Lambda::Function", "Role"): ("runs as", FLOW, False),
    ("AWS::Lambda::Function", "LoggingConfig"): ("logs to", FLOW, False),
    ("AWS::Lambda::Permission", "SourceArn"): ("invokes", FLOW, True),
    ("AWS::S3::Bucket", "LoggingConfiguration"): ("access logs", FLOW, False),
    ("AWS::S3::Bucket", "NotificationConfiguration"): ("notifies", FLOW, False),
    ("AWS::EC2::FlowLog", "LogDestination"): ("flow logs", FLOW, False),
    ("AWS::SQS::Queue", "RedrivePolicy"): ("dead letters", FLOW, False),
    ("AWS::EC2::VPCEndpoint", "RouteTableIds"): ("adds route", FLOW, False),
    ("AWS::EC2::VPCEndpoint", "SubnetIds"): ("in subnet", FLOW, False),
    ("AWS::IAM::Policy", "Roles"): ("attached to", FLOW, False),
    ("AWS::IAM::ManagedPolicy", "Roles"): ("attached to", FLOW, False),
    ("AWS::IAM::Role", "ManagedPolicyArns"): ("attached to", FLOW, True),
}
POLICY_KEYS = {"PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument", "Policies"}
# ARNs spelled out from a resource's name: type -> (name property, ARN text before the name,
# what may follow the name).
NAMED_ARNS = {
    "AWS::Logs::LogGroup": ("LogGroupName", ":log-group:", r"(?::|$)"),
    "AWS::S3::Bucket": ("BucketName", ":s3:::", r"(?:/|$)"),
    "AWS::IAM::Role": ("RoleName", ":role/", r"$"),
}
# Parameters naming an existing resource become external nodes: (word in the name, type).
EXTERNAL_PARAMETER = re.compile(r"(Arn|BucketName|QueueUrl|TopicArn)$")
EXTERNAL_KINDS = [
    ("Queue", "AWS::SQS::Queue"),
    ("Bucket", "AWS::S3::Bucket"),
    ("Topic", "AWS::SNS::Topic"),
    ("Role", "AWS::IAM::Role"),
    ("Key", "AWS::KMS::Key"),
    ("Function", "AWS::Lambda::Function"),
]
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
TRAILING_NUMBER = re.compile(r"^(.*?[A-Za-z_])(\d+)$")
UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")
SAFE_LABEL = re.compile(r"[^A-Za-z0-9 ._-]")


def walk_references(value, path):
    """("ref", name, attribute, path) and ("text", string, None, path) found in ``value``;
    ``path`` holds the dict keys leading there (list positions left out)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and isinstance(argument, str):
                yield ("ref", argument, None, path)
                return
            if key == "Fn::GetAtt":
                if isinstance(argument, str) and "." in argument:
                    argument = argument.split(".", 1)
                if isinstance(argument, list) and argument and isinstance(argument[0], str):
                    attribute = argument[1] if len(argument) > 1 else None
                    yield (
                        "ref",
                        argument[0],
                        attribute if isinstance(attribute, str) else None,
                        path,
                    )
                    return
            if key == "Fn::Sub":
                text, variables = argument, {}
                if isinstance(argument, list) and argument:
                    text = argument[0]
                    variables = argument[1] if len(argument) > 1 else {}
                    variables = variables if isinstance(variables, dict) else {}
                if isinstance(text, str):
                    yield ("text", text, None, path)
                    for match in SUB_VARIABLE.finditer(text):
                        name, _, attribute = match[1].strip().partition(".")
                        if name not in variables:
                            yield ("ref", name, attribute or None, path)
                for name in sorted(variables):
                    yield from walk_references(variables[name], path)
                return
        for key in sorted(value, key=str):
            step = () if str(key).startswith("Fn::") else (str(key),)
            yield from walk_references(value[key], (*path, *step))
    elif isinstance(value, list):
        for item in value:
            yield from walk_references(item, path)
    elif isinstance(value, str):
        yield ("text", value, None, path)


def reference_relation(kind, target_kind, path, attribute):
    """(label, style, reverse) for a reference from a ``kind`` resource at ``path``."""
    top = path[0] if path else ""
    if kind == "AWS::Events::Rule" and top == "Targets":
        if path[1:] == ("Arn",):
            return ("target", FLOW, False)
        if "DeadLetterConfig" in path:
            return ("dead letters", FLOW, False)
        if path[-1:] == ("RoleArn",):
            return ("", PERM, False)
        return None  # the payload sent to a target, not a link
    if is_custom(kind) and top == "ServiceToken":
        return ("serves", FLOW, True)
    if any(key in POLICY_KEYS for key in path):
        return ("", PERM, False)
    if target_kind == "AWS::KMS::Key":
        return ("encrypts", FLOW, True)
    if (kind, top) in RELATIONS:
        return RELATIONS[kind, top]
    if is_custom(kind):
        return ("manages", FLOW, False)
    if is_custom(target_kind) and attribute:
        return (SAFE_LABEL.sub("", attribute), FLOW, False)
    return ("", FLOW, False)


def zone_title(zone):
    """A zone subgraph's title: "AZ <zone id or name>", or "zone a" for ``${AWS::Region}a``."""
    if isinstance(zone, str):
        return f"AZ {zone}"
    text = zone.get("Fn::Sub") if isinstance(zone, dict) and len(zone) == 1 else None
    slot = text.removeprefix("${AWS::Region}") if isinstance(text, str) else ""
    if text != slot and slot and "${" not in slot:
        return f"zone {slot}"
    return f"AZ {_short_json(zone)}"


def is_custom(kind):
    return kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"


def is_link(kind, targets):
    return kind.endswith(("Association", "Attachment")) and len(targets) == 2


def resource_type(body):
    kind = body.get("Type")
    return kind if isinstance(kind, str) and kind else "Unknown"


def properties_of(body):
    properties = body.get("Properties")
    return properties if isinstance(properties, dict) else {}


def type_info(kind):
    if kind in TYPES:
        return TYPES[kind]
    if is_custom(kind):
        label = kind if kind.startswith("Custom::") else "Custom resource"
        return (label, "parallelogram", CUSTOM_CATEGORY)
    parts = kind.split("::")
    service = parts[1] if len(parts) > 2 and parts[0] == "AWS" else ""
    label = " ".join(parts[1:]) if parts[0] == "AWS" else kind
    return (label, "rect", CATEGORY_BY_SERVICE.get(service, OTHER_CATEGORY))


def type_label(kind, properties):
    label = type_info(kind)[0]
    if kind == "AWS::EC2::VPCEndpoint":
        service = properties.get("ServiceName")
        if isinstance(service, dict):
            service = service.get("Fn::Sub")
        endpoint_type = properties.get("VpcEndpointType", "Interface")
        if isinstance(service, str) and isinstance(endpoint_type, str):
            region = "${AWS::Region}."
            short = service.split(region)[-1] if region in service else service.rsplit(".")[-1]
            return f"{short.upper()} {endpoint_type.lower()} endpoint"
    if kind == "AWS::Events::Rule" and "ScheduleExpression" in properties:
        return "EventBridge schedule"
    return label


def detail_lines(kind, properties):
    """Extra label lines worth reading at a glance."""
    if kind == "AWS::Events::Rule" and isinstance(properties.get("ScheduleExpression"), str):
        return [properties["ScheduleExpression"]]
    return []


def plural(label):
    if label.endswith("y") and label[-2:-1] not in "aeiou":
        return label[:-1] + "ies"
    return label + ("es" if label.endswith("s") else "s")


def resource_node_id(logical_id):
    return "res_" + safe_id(logical_id)


def safe_id(text):
    return UNSAFE_ID.sub("_", str(text))


def _short_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))[:40]
