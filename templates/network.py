"""Network: the VPC, one private subnet per availability zone, the S3 gateway endpoint,
the flow log and the security group of the training jobs.

CloudFormation cannot loop, so the template is rendered per region from that region's
zone ids (params/build.json): one subnet pinned by ``AvailabilityZoneId`` per zone, each
behind a ``Zone…`` parameter so an account without a zone can leave it out. Subnet CIDRs
are fixed slices of the VPC CIDR (slice = zone index), so dropping a zone renumbers nothing.
"""

from collections import defaultdict
from dataclasses import dataclass

from awacs import ec2 as ec2_actions
from awacs import s3
from awacs.aws import (
    Allow,
    ArnEquals,
    Condition,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import (
    Cidr,
    Equals,
    GetAtt,
    If,
    NoValue,
    Or,
    Ref,
    Select,
    Split,
    Sub,
    Tags,
    awslambda,
    ec2,
    events,
)

from .custom_resources import (
    CUSTODIAN,
    FAILURES_QUEUE,
    add_custom_resource,
    allow_custodian,
    allow_to_dead_letter,
)
from .names import name
from .stack import Stack, arn

GROUP = "Network"
SUBNET_SLICES = 16  # the VPC CIDR is cut into 16 equal slices, like cidrsubnet(cidr, 4, i)
VPC_PREFIX_LENGTHS = range(16, 25)


def _digit_class(digits):
    """``[0-9]``, ``[048]``, ``5``: a regex class for a set of decimal digits (characters)."""
    numbers = sorted(int(digit) for digit in digits)
    if len(numbers) == 1:
        return str(numbers[0])
    runs, start = [], numbers[0]
    for previous, following in zip(numbers, [*numbers[1:], None], strict=True):
        if following != previous + 1:
            if previous > start + 1:
                runs.append(f"{start}-{previous}")
            else:
                runs.append("".join(str(n) for n in range(start, previous + 1)))
            start = following
    return "[" + "".join(runs) + "]"


def _group(pattern):
    """``pattern`` as one atom: wrapped only when it has a top-level alternation."""
    depth = 0
    for char in pattern:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            return f"(?:{pattern})"
    return pattern


def _alternation(numerals):
    """A regex matching exactly ``numerals`` (decimal strings, "" for the empty string):
    numerals sharing all but their last digit share a class, heads sharing a class recurse."""
    if "" in numerals:
        rest = _alternation(numerals - {""})
        one_class = rest.startswith("[") and rest.index("]") == len(rest) - 1
        atom = len(rest) == 1 or one_class
        return rest + "?" if atom else f"(?:{rest})?"
    last_digits = defaultdict(set)
    for numeral in numerals:
        last_digits[numeral[:-1]].add(numeral[-1])
    heads_by_class = defaultdict(set)
    for head, digits in last_digits.items():
        heads_by_class[_digit_class(digits)].add(head)
    return "|".join(
        (_group(_alternation(heads)) if heads != {""} else "") + digit_class
        for digit_class, heads in sorted(heads_by_class.items(), key=lambda item: sorted(item[1]))
    )


def decimal_pattern(values):
    """A regex matching exactly the given non-negative integers written without leading zeros."""
    return _alternation({str(value) for value in values})


def vpc_cidr_pattern(prefix_lengths):
    """AllowedPattern for an IPv4 network ``a.b.c.0/L``, L in ``prefix_lengths`` (16 to 24),
    aligned to its length: its third octet is a multiple of 2^(24-L) (10.0.1.0/16 is refused)."""
    assert min(prefix_lengths) >= 16 and max(prefix_lengths) <= 24
    octet = _group(decimal_pattern(range(256)))
    networks = "|".join(
        f"{_group(decimal_pattern(range(0, 256, 2 ** (24 - length))))}\\.0/{length}"
        for length in prefix_lengths
    )
    return f"^(?:{octet}\\.){{2}}(?:{networks})$"


VPC_CIDR_PATTERN = vpc_cidr_pattern(VPC_PREFIX_LENGTHS)


@dataclass
class Zone:
    zone_id: str
    condition: str
    subnet: ec2.Subnet
    route_table: ec2.RouteTable


@dataclass
class Network:
    vpc: ec2.VPC
    zones: list[Zone]
    network_acl: ec2.NetworkAcl
    security_group: ec2.SecurityGroup

    def each_zone(self, value_of):
        """A list with ``value_of(zone)`` for every zone, absent where the zone is switched off."""
        return [If(zone.condition, value_of(zone), NoValue) for zone in self.zones]

    @property
    def subnet_ids(self):
        return self.each_zone(lambda zone: Ref(zone.subnet))

    @property
    def subnet_arns(self):
        return self.each_zone(lambda zone: ec2_arn("subnet", Ref(zone.subnet)))


def zone_parameter_name(zone_id):
    return "Zone" + "".join(part.capitalize() for part in zone_id.split("-"))


def _subnet_host_bits(stack):
    """Host bits of one 1/16 slice of the VPC CIDR, whatever its prefix length (/16 to /24)."""
    prefix_length = Select(1, Split("/", Ref("VpcCidr")))
    for length in VPC_PREFIX_LENGTHS[:-1]:
        stack.template.add_condition(f"VpcPrefix{length}", Equals(prefix_length, str(length)))
    host_bits = str(32 - VPC_PREFIX_LENGTHS[-1] - 4)
    for length in reversed(VPC_PREFIX_LENGTHS[:-1]):
        host_bits = If(f"VpcPrefix{length}", str(32 - length - 4), host_bits)
    return host_bits


def add_network(stack: Stack) -> Network:
    template = stack.template
    stack.add_parameter(
        "VpcCidr",
        GROUP,
        "VPC CIDR block",
        Type="String",
        Default="172.31.0.0/16",
        AllowedPattern=VPC_CIDR_PATTERN,
        ConstraintDescription="must be an IPv4 network from /16 to /24, e.g. 172.31.0.0/16",
        Description="Private address range of the VPC; each zone's subnet is a 1/16 slice of it.",
    )
    vpc = template.add_resource(
        ec2.VPC(
            "Vpc",
            CidrBlock=Ref("VpcCidr"),
            EnableDnsSupport=True,
            EnableDnsHostnames=True,
            Tags=Tags(Name=name("vpc_tag")),
        )
    )
    network_acl = template.add_resource(
        ec2.NetworkAcl(
            "PrivateNetworkAcl",
            VpcId=Ref(vpc),
            Tags=Tags(Name=Sub("${NamePrefix}-components-private")),
        )
    )

    slices = Cidr(Ref("VpcCidr"), SUBNET_SLICES, _subnet_host_bits(stack))
    zones = []
    for index, zone_id in enumerate(stack.region.zone_ids):
        zones.append(_add_zone(stack, vpc, network_acl, index, zone_id, slices))
    zone_switched_on = [Equals(Ref(zone_parameter_name(z.zone_id)), "true") for z in zones]
    template.add_rule(
        "AtLeastOneZone",
        {
            "Assertions": [
                {
                    "Assert": Or(*zone_switched_on) if len(zones) > 1 else zone_switched_on[0],
                    "AssertDescription": "Turn on at least one availability zone.",
                }
            ]
        },
    )

    security_group = template.add_resource(
        ec2.SecurityGroup(
            "ExecutionSecurityGroup",
            GroupName=name("security_group"),
            GroupDescription="Restrict network for component execution",
            VpcId=Ref(vpc),
            # Replaces the default allow-all egress: HTTPS to S3 only, no ingress.
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    Description="To S3 gateway",
                    IpProtocol="tcp",
                    FromPort=443,
                    ToPort=443,
                    DestinationPrefixListId=GetAtt("S3NetworkAclEntries", "PrefixListId"),
                )
            ],
        )
    )
    return Network(vpc, zones, network_acl, security_group)


def _add_zone(stack, vpc, network_acl, index, zone_id, slices):
    template = stack.template
    parameter = zone_parameter_name(zone_id)
    stack.add_parameter(
        parameter,
        "Availability zones",
        f"Private subnet in {zone_id}",
        Type="String",
        Default="true",
        AllowedValues=["true", "false"],
        ConstraintDescription="must be true or false",
        Description=f"false: no subnet in zone {zone_id} (ids name the same zone in every account)",
    )
    condition = f"Use{parameter}"
    template.add_condition(condition, Equals(Ref(parameter), "true"))
    suffix = parameter.removeprefix("Zone")
    subnet = template.add_resource(
        ec2.Subnet(
            f"PrivateSubnet{suffix}",
            Condition=condition,
            VpcId=Ref(vpc),
            AvailabilityZoneId=zone_id,
            CidrBlock=Select(index, slices),
            MapPublicIpOnLaunch=False,
            Tags=Tags(Name=Sub(f"${{NamePrefix}}-components-private-{zone_id}")),
        )
    )
    route_table = template.add_resource(
        ec2.RouteTable(
            f"PrivateRouteTable{suffix}",
            Condition=condition,
            VpcId=Ref(vpc),
            Tags=Tags(Name=Sub(f"${{NamePrefix}}-components-private-{zone_id}")),
        )
    )
    template.add_resource(
        ec2.SubnetRouteTableAssociation(
            f"PrivateRouteTableAssociation{suffix}",
            Condition=condition,
            SubnetId=Ref(subnet),
            RouteTableId=Ref(route_table),
        )
    )
    template.add_resource(
        ec2.SubnetNetworkAclAssociation(
            f"PrivateNetworkAclAssociation{suffix}",
            Condition=condition,
            # A subnet moves to this ACL only once it lets S3 through: on create nothing runs
            # yet, but a subnet taken over from elsewhere (build.py migrate) has running jobs.
            DependsOn=["S3NetworkAclEntries"],
            SubnetId=Ref(subnet),
            NetworkAclId=Ref(network_acl),
        )
    )
    return Zone(zone_id, condition, subnet, route_table)


def add_s3_endpoint(stack: Stack, network: Network, inputs_bucket, outputs_bucket, execution_role):
    """S3 gateway endpoint: jobs may only read inputs/* and write outputs/*, as the execution role."""
    only_execution_role = Condition(StringEquals("aws:PrincipalArn", GetAtt(execution_role, "Arn")))
    return stack.template.add_resource(
        ec2.VPCEndpoint(
            "S3GatewayEndpoint",
            VpcId=Ref(network.vpc),
            ServiceName=Sub("com.amazonaws.${AWS::Region}.s3"),
            VpcEndpointType="Gateway",
            RouteTableIds=network.each_zone(lambda zone: Ref(zone.route_table)),
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="ReadInputs",
                        Effect=Allow,
                        Principal=Principal("*"),
                        Action=[s3.GetObject],
                        Resource=[Sub(f"${{{inputs_bucket.title}.Arn}}/*")],
                        Condition=only_execution_role,
                    ),
                    Statement(
                        Sid="WriteOutputs",
                        Effect=Allow,
                        Principal=Principal("*"),
                        Action=[s3.PutObject],
                        Resource=[Sub(f"${{{outputs_bucket.title}.Arn}}/*")],
                        Condition=only_execution_role,
                    ),
                ],
            ),
        )
    )


def add_flow_log(stack: Stack, network: Network, logs_bucket_arn):
    """All VPC traffic to the logs bucket under vpc/<vpc id>/, as hourly hive-style parquet."""
    return stack.template.add_resource(
        ec2.FlowLog(
            "VpcFlowLog",
            ResourceId=Ref(network.vpc),
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="s3",
            LogDestination=Sub("${LogsBucketArn}/vpc/${Vpc}/", LogsBucketArn=logs_bucket_arn),
            DestinationOptions=ec2.DestinationOptions(
                FileFormat="parquet", HiveCompatiblePartitions=True, PerHourPartition=True
            ),
        )
    )


def add_s3_network_acl_sync(stack: Stack, network: Network):
    """Write the private ACL's entries from the live S3 prefix list: at create/update, and daily.

    The custom resource also returns the prefix list id the security group egress uses."""
    acl = Ref(network.network_acl)
    allow_custodian(
        stack,
        Statement(
            Sid="ReadS3PrefixListAndAcls",
            Effect=Allow,
            Action=[ec2_actions.DescribeManagedPrefixLists, ec2_actions.DescribeNetworkAcls],
            Resource=["*"],  # Describe* take no resource ARN
        ),
    )
    allow_custodian(
        stack,
        Statement(
            Sid="ReadAwsManagedPrefixLists",
            Effect=Allow,
            Action=[ec2_actions.GetManagedPrefixListEntries],
            # AWS-managed prefix lists (the S3 one) belong to the account "aws".
            Resource=[arn("ec2", "prefix-list/*", account="aws")],
        ),
    )
    allow_custodian(
        stack,
        Statement(
            Sid="WritePrivateAclEntries",
            Effect=Allow,
            Action=[
                # Creates and deletes only: the sync never rewrites an entry in place.
                ec2_actions.CreateNetworkAclEntry,
                ec2_actions.DeleteNetworkAclEntry,
            ],
            Resource=[ec2_arn("network-acl", acl)],
        ),
    )
    add_custom_resource(stack, "S3NetworkAclEntries", "S3NetworkAclEntries", 300, NetworkAclId=acl)
    _add_daily_sync(stack, acl)


def _add_daily_sync(stack: Stack, acl):
    """A daily schedule invoking the custodian with the ACL id; events it cannot deliver go
    to the custodian's failures queue."""
    schedule = stack.template.add_resource(
        events.Rule(
            "S3NetworkAclDailySync",
            Description="Re-read the S3 prefix list daily so the private ACL follows AWS changes",
            ScheduleExpression="rate(1 day)",
            Targets=[
                events.Target(
                    Id="sync",
                    Arn=GetAtt(CUSTODIAN, "Arn"),
                    Input=Sub('{"NetworkAclId":"${Acl}"}', Acl=acl),
                    # Events EventBridge cannot deliver (function gone, throttled for a day).
                    DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(FAILURES_QUEUE, "Arn")),
                )
            ],
        )
    )
    stack.template.add_resource(
        awslambda.Permission(
            "S3NetworkAclDailySyncPermission",
            Action="lambda:InvokeFunction",
            FunctionName=Ref(CUSTODIAN),
            Principal="events.amazonaws.com",
            SourceArn=GetAtt(schedule, "Arn"),
        )
    )
    allow_to_dead_letter(stack, schedule)


def add_vpc_lockdown(stack: Stack, network: Network):
    """Strip the VPC's default security group of its rules and its default network ACL of its
    allow entries (CloudFormation cannot manage either): nothing can use them by accident."""
    vpc = network.vpc
    allow_custodian(
        stack,
        Statement(
            Sid="FindVpcDefaults",
            Effect=Allow,
            Action=[ec2_actions.DescribeSecurityGroups, ec2_actions.DescribeNetworkAcls],
            Resource=["*"],  # Describe* take no resource ARN
        ),
    )
    allow_custodian(
        stack,
        Statement(
            Sid="LockDownVpcDefaults",
            Effect=Allow,
            Action=[
                ec2_actions.RevokeSecurityGroupIngress,
                ec2_actions.RevokeSecurityGroupEgress,
                ec2_actions.DeleteNetworkAclEntry,
            ],
            Resource=[
                ec2_arn("security-group", GetAtt(vpc, "DefaultSecurityGroup")),
                ec2_arn("network-acl", GetAtt(vpc, "DefaultNetworkAcl")),
            ],
        ),
    )
    return add_custom_resource(stack, "VpcLockdown", "VpcLockdown", 300, VpcId=Ref(vpc))


def add_network_interface_cleanup(stack: Stack, network: Network):
    """On delete, remove the network interfaces SageMaker leaves in the jobs' security group,
    which would otherwise block deleting the subnets and the group (DependencyViolation).

    The resource refers to the subnets and the group, so CloudFormation deletes it first."""
    allow_custodian(
        stack,
        Statement(
            Sid="FindJobNetworkInterfaces",
            Effect=Allow,
            Action=[ec2_actions.DescribeNetworkInterfaces],
            Resource=["*"],  # Describe* take no resource ARN
        ),
    )
    allow_custodian(
        stack,
        Statement(
            Sid="DeleteJobNetworkInterfacesInOurVpc",
            Effect=Allow,
            Action=[ec2_actions.DeleteNetworkInterface],
            Resource=[ec2_arn("network-interface", "*")],
            Condition=Condition(ArnEquals("ec2:Vpc", ec2_arn("vpc", Ref(network.vpc)))),
        ),
    )
    return add_custom_resource(
        stack,
        "NetworkInterfaceCleanup",
        "NetworkInterfaceCleanup",
        1200,  # waits up to 14 minutes for interfaces still in use
        VpcId=Ref(network.vpc),
        SecurityGroupId=GetAtt(network.security_group, "GroupId"),
        SubnetIds=network.subnet_ids,
    )


def ec2_arn(resource_type, resource_id):
    """ARN of an EC2 resource of this account and region, from its id."""
    return Sub(
        f"arn:${{AWS::Partition}}:ec2:${{AWS::Region}}:${{AWS::AccountId}}:{resource_type}/${{Id}}",
        Id=resource_id,
    )
