"""Imported network resources: the VPC, per-zone subnets and route tables, endpoint, flow log,
security group. Properties as running; create-only ones as the product renders them, or (the
subnets' CidrBlock, a zone plan answer in the product) the literal value it will resolve to."""

import json

from .tfstate import attribute

DEFAULT_FLOW_LOG_FORMAT = (
    "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} "
    "${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
)


def name_tags(instance):
    tags = instance.attributes.get("tags") or {}
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def vpc(state):
    vpc = state.one("aws_vpc", "this")
    return (
        vpc.address,
        "Vpc",
        "AWS::EC2::VPC",
        {"VpcId": attribute(vpc, "id")},
        {
            "CidrBlock": attribute(vpc, "cidr_block"),
            "EnableDnsHostnames": attribute(vpc, "enable_dns_hostnames"),
            "EnableDnsSupport": attribute(vpc, "enable_dns_support"),
            "Tags": name_tags(vpc),
        },
    )


def per_zone(state, zones, region):
    """Each subnet, its route table and association, in the product's slot for the subnet's
    zone letter (zone name = region + letter; check_subnet_layout refused any other)."""
    subnets = state.each("aws_subnet", "private")
    for zone_id, subnet in sorted(subnets.items()):
        letter = attribute(subnet, "availability_zone").removeprefix(region)
        ids = zones[letter]
        yield (
            subnet.address,
            ids["subnet"],
            "AWS::EC2::Subnet",
            {"SubnetId": attribute(subnet, "id")},
            {
                "VpcId": {"Ref": "Vpc"},
                # The zone's name as the product writes it (cfn-lint warns of a literal one):
                # the same string once deployed, the same symbol to an offline preview.
                "AvailabilityZone": {"Fn::Sub": f"${{AWS::Region}}{letter}"},
                "CidrBlock": attribute(subnet, "cidr_block"),
                "MapPublicIpOnLaunch": attribute(subnet, "map_public_ip_on_launch"),
                "Tags": name_tags(subnet),
            },
        )
        table = state.one("aws_route_table", "private", zone_id)
        yield (
            table.address,
            ids["route_table"],
            "AWS::EC2::RouteTable",
            {"RouteTableId": attribute(table, "id")},
            {"VpcId": {"Ref": "Vpc"}, "Tags": name_tags(table)},
        )
        association = state.one("aws_route_table_association", "private", zone_id)
        yield (
            association.address,
            ids["association"],
            "AWS::EC2::SubnetRouteTableAssociation",
            {"Id": attribute(association, "id")},
            {"RouteTableId": {"Ref": ids["route_table"]}, "SubnetId": {"Ref": ids["subnet"]}},
        )


def endpoint(state, zones, region):
    endpoint = state.one("aws_vpc_endpoint", "s3")
    policy = state.one("aws_vpc_endpoint_policy", "s3")
    by_table_id = {
        attribute(state.one("aws_route_table", "private", zone_id), "id"): zones[
            attribute(subnet, "availability_zone").removeprefix(region)
        ]
        for zone_id, subnet in state.each("aws_subnet", "private").items()
    }
    associated = [
        attribute(association, "route_table_id")
        for _, association in sorted(
            state.each("aws_vpc_endpoint_route_table_association", "s3").items()
        )
    ]
    return (
        endpoint.address,
        "S3GatewayEndpoint",
        "AWS::EC2::VPCEndpoint",
        {"Id": attribute(endpoint, "id")},
        {
            "VpcId": {"Ref": "Vpc"},
            "ServiceName": attribute(endpoint, "service_name"),
            "VpcEndpointType": attribute(endpoint, "vpc_endpoint_type"),
            "PolicyDocument": json.loads(attribute(policy, "policy")),
            "RouteTableIds": [{"Ref": by_table_id[table]["route_table"]} for table in associated],
            "Tags": name_tags(endpoint),
        },
    )


def flow_log(state):
    flow_log = state.one("aws_flow_log", "vpc")
    options = attribute(flow_log, "destination_options", 0)
    # The destination names the VPC as the product's does (Fn::Sub ${Vpc}): same string, and
    # a preview sees the same create-only value on both sides.
    destination = attribute(flow_log, "log_destination")
    vpc_id = attribute(flow_log, "vpc_id")
    properties = {
        "LogDestination": {"Fn::Sub": destination.replace(vpc_id, "${Vpc}")}
        if vpc_id in destination
        else destination,
        "LogDestinationType": attribute(flow_log, "log_destination_type"),
        "ResourceId": {"Ref": "Vpc"},
        "ResourceType": "VPC",
        "TrafficType": attribute(flow_log, "traffic_type"),
        "DestinationOptions": {
            "FileFormat": options["file_format"],
            "HiveCompatiblePartitions": options["hive_compatible_partitions"],
            "PerHourPartition": options["per_hour_partition"],
        },
    }
    # Defaults stay out, as in the product: a create-only property present on one side only
    # would read as a change, and every FlowLog property is create-only.
    if flow_log.attributes.get("log_format") not in (None, "", DEFAULT_FLOW_LOG_FORMAT):
        properties["LogFormat"] = flow_log.attributes["log_format"]
    if flow_log.attributes.get("max_aggregation_interval") not in (None, 600):
        properties["MaxAggregationInterval"] = flow_log.attributes["max_aggregation_interval"]
    return (
        flow_log.address,
        "VpcFlowLog",
        "AWS::EC2::FlowLog",
        {"Id": attribute(flow_log, "id")},
        properties,
    )


def security_group(state):
    group = state.one("aws_security_group", "execution")
    rule = state.one("aws_vpc_security_group_egress_rule", "to_s3_gateway")
    return (
        group.address,
        "ExecutionSecurityGroup",
        "AWS::EC2::SecurityGroup",
        {"Id": attribute(group, "id")},
        {
            "GroupName": attribute(group, "name"),
            "GroupDescription": attribute(group, "description"),
            "VpcId": {"Ref": "Vpc"},
            "SecurityGroupEgress": [
                {
                    "Description": attribute(rule, "description"),
                    "DestinationPrefixListId": attribute(rule, "prefix_list_id"),
                    "FromPort": attribute(rule, "from_port"),
                    "IpProtocol": attribute(rule, "ip_protocol"),
                    "ToPort": attribute(rule, "to_port"),
                }
            ],
        },
    )
