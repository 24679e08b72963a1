"""A rendered template resolved as CloudFormation would deploy it, with concrete values.

Parameters (defaults, overridden per deployment; list types such as
``List<AWS::EC2::AvailabilityZone::Name>`` given as CloudFormation takes them, comma-separated,
or as a Python list), pseudo parameters of a sample account, the template's conditions, and
made-up but well-formed physical ids and ARNs for every resource turn ``Ref``/``Fn::Sub``/
``Fn::GetAtt``/``Fn::Join``/``Fn::If``/``Fn::Select``/``Fn::Split`` into plain values, so
policies can go to an IAM simulator and patterns to EventBridge. Anything else raises: a
test must not silently evaluate a half-resolved policy. So does what CloudFormation refuses:
a parameter without a default that the deployment does not give, and a Ref or GetAtt of a
resource whose condition is false."""

import re
import zlib

ACCOUNT = "123456789012"
NO_VALUE = object()  # AWS::NoValue: the list element or property disappears
REQUIRED = object()  # a parameter without a default: the deployment must give it


class UnresolvableError(LookupError):
    """CloudFormation would refuse the deployment or the template at this value."""


def _fake_id(prefix, logical_id):
    return f"{prefix}-0{zlib.crc32(logical_id.encode()):08x}"


class Deployment:
    """One stack of a rendered template: ``resolve(value)``, ``exists(logical_id)``."""

    def __init__(self, template, region, parameters=None):
        self.template = template
        self.region = region
        self.parameters = {
            key: definition.get("Default", REQUIRED)
            for key, definition in template.get("Parameters", {}).items()
        } | (parameters or {})
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": f"gc-{self._given('NamePrefix', 'x')}",
            "AWS::NoValue": NO_VALUE,
        }
        self.pseudo["AWS::StackId"] = (
            f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{self.pseudo['AWS::StackName']}"
            "/0a1b2c3d-4e5f-11ef-8a9b-0a1b2c3d4e5f"
        )

    # Conditions and existence -------------------------------------------------------------

    def condition(self, name):
        return bool(self.resolve(self.template["Conditions"][name]))

    def exists(self, logical_id):
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def resources(self, resource_type):
        """``{logical id: resolved properties}`` of the existing resources of one type."""
        return {
            logical_id: self.resolve(resource.get("Properties", {}))
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type and self.exists(logical_id)
        }

    # Values -------------------------------------------------------------------------------

    def resolve(self, value):
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, argument)] = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._function(key, argument)
        resolved = {key: self.resolve(inner) for key, inner in value.items()}
        return {key: inner for key, inner in resolved.items() if inner is not NO_VALUE}

    def _function(self, key, argument):
        if key == "Ref":
            return self.ref(argument)
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".")
            return self.get_att(logical_id, attribute)
        if key == "Fn::Sub":
            return self._sub(*(argument if isinstance(argument, list) else [argument, {}]))
        if key == "Fn::If":
            name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(name) else when_false)
        args = self.resolve(argument)
        if key == "Fn::Join":
            return args[0].join(args[1])
        if key == "Fn::Select":
            return args[1][int(args[0])]
        if key == "Fn::Split":
            return args[1].split(args[0])
        if key == "Fn::Equals":
            return args[0] == args[1]
        if key == "Fn::Not":
            return not args[0]
        if key == "Fn::And":
            return all(args)
        if key == "Fn::Or":
            return any(args)
        raise NotImplementedError(f"{key} is not resolved here")

    def _sub(self, text, variables):
        variables = self.resolve(variables)

        def substitute(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return variables[name]
            if "." in name:
                return self.get_att(*name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", substitute, text)

    def _given(self, name, fallback):
        value = self.parameters.get(name, fallback)
        return fallback if value is REQUIRED else value

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self._parameter(name)
        self._must_exist(name)
        return self._physical(name)["Ref"]

    def _parameter(self, name):
        """A parameter's value as Ref returns it: list types as lists of strings."""
        value = self.parameters[name]
        if value is REQUIRED:
            raise UnresolvableError(f"parameter {name} has no default: give it to the deployment")
        kind = self.template["Parameters"][name]["Type"]
        if kind != "CommaDelimitedList" and not kind.startswith("List<"):
            return value
        return list(value) if isinstance(value, (list, tuple)) else value.split(",")

    def get_att(self, logical_id, attribute):
        self._must_exist(logical_id)
        return self._physical(logical_id)[attribute]

    def _must_exist(self, logical_id):
        if logical_id in self.template["Resources"] and not self.exists(logical_id):
            condition = self.template["Resources"][logical_id]["Condition"]
            raise UnresolvableError(f"{logical_id} does not exist here: {condition} is false")

    def _physical(self, logical_id):
        """What CloudFormation would return for Ref and GetAtt of one resource."""
        resource = self.template["Resources"][logical_id]
        properties = resource.get("Properties", {})
        generated = f"{self.pseudo['AWS::StackName']}-{logical_id}-ABC123"

        def named(prop):
            return self.resolve(properties[prop]) if prop in properties else generated

        region, account = self.region, ACCOUNT
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            name = named("RoleName")
            return {"Ref": name, "Arn": f"arn:aws:iam::{account}:role/{name}"}
        if kind == "AWS::IAM::ManagedPolicy":
            return {"Ref": f"arn:aws:iam::{account}:policy/{named('ManagedPolicyName')}"}
        if kind == "AWS::S3::Bucket":
            name = named("BucketName").lower()
            return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
        if kind == "AWS::SQS::Queue":
            name = named("QueueName")
            return {
                "Ref": f"https://sqs.{region}.amazonaws.com/{account}/{name}",
                "Arn": f"arn:aws:sqs:{region}:{account}:{name}",
                "QueueName": name,
            }
        if kind == "AWS::Events::Rule":
            name = named("Name")
            return {"Ref": name, "Arn": f"arn:aws:events:{region}:{account}:rule/{name}"}
        if kind == "AWS::ECR::Repository":
            name = named("RepositoryName")
            return {"Ref": name, "Arn": f"arn:aws:ecr:{region}:{account}:repository/{name}"}
        if kind == "AWS::CloudWatch::Alarm":
            name = named("AlarmName")
            return {"Ref": name, "Arn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"}
        if kind == "AWS::Lambda::Function":
            name = named("FunctionName")
            return {"Ref": name, "Arn": f"arn:aws:lambda:{region}:{account}:function:{name}"}
        if kind == "AWS::Logs::LogGroup":
            name = named("LogGroupName")
            return {"Ref": name, "Arn": f"arn:aws:logs:{region}:{account}:log-group:{name}:*"}
        if kind == "AWS::EC2::SecurityGroup":
            group_id = _fake_id("sg", logical_id + self.pseudo["AWS::StackName"])
            return {"Ref": group_id, "GroupId": group_id}
        prefixes = {"AWS::EC2::VPC": "vpc", "AWS::EC2::Subnet": "subnet", "AWS::KMS::Key": "key"}
        physical = _fake_id(prefixes.get(kind, "id"), logical_id + self.pseudo["AWS::StackName"])
        return _AnyAttribute(physical, logical_id)


class _AnyAttribute(dict):
    """Ref is the fake id; any attribute is ``<logical id>.<attribute>`` (custom resources)."""

    def __init__(self, physical, logical_id):
        super().__init__(Ref=physical)
        self.logical_id = logical_id

    def __missing__(self, attribute):
        return f"{self.logical_id}.{attribute}"
