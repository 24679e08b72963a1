"""Network: the VPC, one private subnet per picked availability zone, the S3 gateway
endpoint, the flow log and the security group of the training jobs.

One template serves every region: CloudFormation cannot loop, so there is a subnet slot per
zone letter (a-f), each present when the operator picked ``<region><letter>``. The subnet's
CIDR is the VPC slice of the zone's id (see ``_add_zone_choice``), so dropping or adding a
zone renumbers nothing.
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
    Equals,
    GetAtt,
    If,
    Join,
    Not,
    NoValue,
    Ref,
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


ZONE_LETTERS = "abcdef"  # no commercial region has a seventh zone
ZONES_PARAMETER = "AvailabilityZones"
ZONE_PLAN = "ZonePlan"


@dataclass
class Zone:
    letter: str
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
        """A list with ``value_of(zone)`` for every zone slot, absent where it isn't picked."""
        return [If(zone.condition, value_of(zone), NoValue) for zone in self.zones]

    @property
    def subnet_ids(self):
        return self.each_zone(lambda zone: Ref(zone.subnet))

    @property
    def subnet_arns(self):
        return self.each_zone(lambda zone: ec2_arn("subnet", Ref(zone.subnet)))


def zone_picked(letter):
    """True when the picked zone list holds ``<region><letter>``.

    Conditions have no "contains": the list is joined with a comma after every name and split
    at ``<letter>,``; the text changes only if some name ends in that letter. A regional
    zone's name is its region (ending in a digit) plus the letter, so among regional zones
    this is exact; a Local Zone (``us-west-2-lax-1a``) would also match, and the zone plan
    refuses those before any subnet exists."""
    listed = Join("", [Join(",", Ref(ZONES_PARAMETER)), ","])
    return Not(Equals(Join("", Split(f"{letter},", listed)), listed))


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
    _add_zone_choice(stack)
    zones = [_add_zone(stack, vpc, network_acl, letter) for letter in ZONE_LETTERS]
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


def _add_zone_choice(stack: Stack):
    """The operator picks zones by name from the console's list of this region's zones;
    CloudFormation checks every name exists in the account before it creates anything.

    The zone plan (a custom resource, the first the subnets need) maps each picked name to
    its zone id and gives the subnet the VPC slice of that id: ``<region>-az<N>`` gets slice
    N-1, as in the per-region templates and the Terraform module. Ids name the same zone in
    every account and never change, so adding or dropping a zone renumbers nothing."""
    stack.add_parameter(
        ZONES_PARAMETER,
        "Availability zones",
        "Availability zones for the private subnets",
        Type="List<AWS::EC2::AvailabilityZone::Name>",
        Description="Pick one or more zones of this region (two or more for capacity); one "
        "private subnet each. Local and Wavelength Zones are refused.",
    )
    stack.template.add_rule(
        "AtLeastOneZone",
        {
            "Assertions": [
                {
                    "Assert": Not({"Fn::EachMemberEquals": [Ref(ZONES_PARAMETER), ""]}),
                    "AssertDescription": "Pick at least one availability zone.",
                }
            ]
        },
    )
    _allow_custodian_to_describe(stack, "ReadZoneIds", ec2_actions.DescribeAvailabilityZones)
    add_custom_resource(
        stack, ZONE_PLAN, ZONE_PLAN, 120, Zones=Ref(ZONES_PARAMETER), VpcCidr=Ref("VpcCidr")
    )


def _add_zone(stack, vpc, network_acl, letter):
    template = stack.template
    suffix = letter.upper()
    condition = f"UseZone{suffix}"
    template.add_condition(condition, zone_picked(letter))
    zone_name = Sub(f"${{AWS::Region}}{letter}")
    tag = Tags(Name=Sub(f"${{NamePrefix}}-components-private-${{AWS::Region}}{letter}"))
    subnet = template.add_resource(
        ec2.Subnet(
            f"PrivateSubnet{suffix}",
            Condition=condition,
            VpcId=Ref(vpc),
            AvailabilityZone=zone_name,
            CidrBlock=GetAtt(ZONE_PLAN, f"Cidr{suffix}"),
            MapPublicIpOnLaunch=False,
            Tags=tag,
        )
    )
    route_table = template.add_resource(
        ec2.RouteTable(f"PrivateRouteTable{suffix}", Condition=condition, VpcId=Ref(vpc), Tags=tag)
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
    return Zone(letter, condition, subnet, route_table)


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
    _allow_custodian_to_describe(
        stack,
        "ReadS3PrefixListAndAcls",
        ec2_actions.DescribeManagedPrefixLists,
        ec2_actions.DescribeNetworkAcls,
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
    _allow_custodian_to_describe(
        stack,
        "FindVpcDefaults",
        ec2_actions.DescribeSecurityGroups,
        ec2_actions.DescribeNetworkAcls,
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
    _allow_custodian_to_describe(
        stack, "FindJobNetworkInterfaces", ec2_actions.DescribeNetworkInterfaces
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


def _allow_custodian_to_describe(stack: Stack, sid, *actions):
    """Grant the custodian EC2 ``Describe*`` calls, which take no resource ARN (hence "*")."""
    allow_custodian(stack, Statement(Sid=sid, Effect=Allow, Action=list(actions), Resource=["*"]))


def ec2_arn(resource_type, resource_id):
    """ARN of an EC2 resource of this account and region, from its id."""
    return Sub(
        f"arn:${{AWS::Partition}}:ec2:${{AWS::Region}}:${{AWS::AccountId}}:{resource_type}/${{Id}}",
        Id=resource_id,
    )
