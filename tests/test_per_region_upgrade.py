"""Moving a stack made from a per-region template (releases up to f1cf291) onto the one
template, as the README's "Upgrading a stack made from a per-region template" says.

The old templates name each zone's resources after its zone id (``PrivateSubnetEuc1Az1``), the
new one after its letter (``PrivateSubnetA``), and both give a zone the same CIDR slice. A
renamed logical id is a new resource created before the old one is deleted, so a one-step
update would put two subnets on one CIDR (EC2 refuses: "conflicts with another subnet") and
roll back. The procedure: (2) the old template with one zone left on, (3) the new template
with every zone but that one, (4) the new template with every zone. These tests check, on
the real old templates from git and today's render, that nothing stateful but the subnets is
replaced or removed, and that no moment of the procedure has two subnets on one CIDR.
"""

import ipaddress
import itertools
import json
import random
from dataclasses import dataclass
from functools import cache

import pytest

import build
from templates.functions import zone_plan
from templates.preview import Side, plan

OLD_RELEASE = "f1cf291"  # the last commit with dist/<region>.json
OLD_REGIONS = ("eu-central-1", "eu-west-1", "us-east-1", "us-west-2")
PARAMETERS = {"NamePrefix": "gc", "LogRetentionDays": "30"}
ZONE_KINDS = (
    "PrivateSubnet",
    "PrivateRouteTable",
    "PrivateRouteTableAssociation",
    "PrivateNetworkAclAssociation",
)
# What an update must keep (same logical id, at most modified in place): data, or an id or
# ARN that Grand Challenge's settings or its workers hold.
KEPT_TYPES = {
    "AWS::EC2::VPC",
    "AWS::EC2::SecurityGroup",
    "AWS::S3::Bucket",
    "Custom::EmptyBucket",
    "AWS::ECR::Repository",
    "Custom::RepositoryOnDelete",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",
    "AWS::Logs::LogGroup",
    "Custom::TrainingJobsLogGroup",
    "AWS::IAM::Role",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::Policy",
}
MUST_BE_KEPT = {
    "Vpc",
    "InputsBucket",
    "OutputsBucket",
    "LogsBucket",
    "Repository1",
    "LogsKey",
    "StoppedJobsQueue",
    "StoppedJobsLogGroup",
    "TrainingJobsLogGroup",
    "ExecutionRole",
    "SchedulePolicy",
}
VPC_CIDRS = ("172.31.0.0/16", "10.20.16.0/20")  # the default, and /24 slices


@dataclass(frozen=True)
class OldZone:
    zone_id: str  # euc1-az1
    suffix: str  # Euc1Az1, ending each of its logical ids
    parameter: str  # ZoneEuc1Az1: "true" or "false"


@dataclass(frozen=True)
class Subnet:
    zone_id: str
    cidr: ipaddress.IPv4Network


@cache
def _old_text(region):
    text = build._git("show", f"{OLD_RELEASE}:dist/{region}.json")
    if text is None:
        pytest.fail(f"git has no {OLD_RELEASE}:dist/{region}.json: clone with full history")
    return text


def old_template(region):
    return json.loads(_old_text(region))


@cache
def _new_text():
    return build.render()


def new_template():
    return json.loads(_new_text())


def old_zones(template):
    """The zones of a per-region template, read from its subnets."""
    zones = []
    for logical_id, resource in sorted(template["Resources"].items()):
        if resource["Type"] == "AWS::EC2::Subnet":
            suffix = logical_id.removeprefix("PrivateSubnet")
            zones.append(
                OldZone(resource["Properties"]["AvailabilityZoneId"], suffix, "Zone" + suffix)
            )
    assert zones and all(zone.parameter in template["Parameters"] for zone in zones)
    return zones


def zone_resources(suffixes):
    return {kind + suffix for suffix in suffixes for kind in ZONE_KINDS}


def by_action(result):
    found = {}
    for change in result.changes:
        found.setdefault(change.action, set()).add(change.logical_id)
    return found


# Accounts: zone names map to zone ids differently in every account ---------------------------


def accounts(region, zone_ids):
    """{label: {zone name: zone id}} as real accounts have them: in order, shuffled, and one
    account without a zone (new us-east-1 accounts lack use1-az3)."""
    letters = zone_plan.ZONE_LETTERS

    def named(ids):
        return {f"{region}{letter}": zone_id for letter, zone_id in zip(letters, ids, strict=False)}

    found = {
        "in order": named(zone_ids),
        "reversed": named(zone_ids[::-1]),
        "rotated": named(zone_ids[1:] + zone_ids[:1]),
        "one zone missing": named([z for z in zone_ids if not z.endswith("az3")][::-1]),
    }
    for seed in range(3):
        shuffled = list(zone_ids)
        random.Random(f"{region}/{seed}").shuffle(shuffled)
        found[f"shuffled {seed}"] = named(shuffled)
    return found


def described(account, names):
    """DescribeAvailabilityZones' answer for ``names`` in ``account``."""
    return [
        {"ZoneName": name, "ZoneId": account[name], "ZoneType": "availability-zone"}
        for name in names
    ]


# The subnets a stack has, from its template and parameter values -----------------------------


def subnets_of(side, cidr_of):
    """{logical id: Subnet} for the subnets whose conditions hold; ``cidr_of(resource, side)``
    gives (zone id, CIDR text) of one."""
    found = {}
    for logical_id, resource in side.resources.items():
        if resource["Type"] != "AWS::EC2::Subnet":
            continue
        exists = side.exists(logical_id)
        assert exists is not None, f"{logical_id}: condition left unresolved"
        if exists:
            zone_id, cidr = cidr_of(resource, side)
            found[logical_id] = Subnet(zone_id, ipaddress.ip_network(cidr))
    return found


def old_subnets(region, zones_on, vpc_cidr):
    """The subnets of a per-region stack with the zones ``zones_on`` (ids) switched on."""
    template = old_template(region)
    values = {z.parameter: str(z.zone_id in zones_on).lower() for z in old_zones(template)}
    side = Side(template, PARAMETERS | values | {"VpcCidr": vpc_cidr}, region)

    def cidr_of(resource, side):
        properties = side.resolve(resource["Properties"])
        return properties["AvailabilityZoneId"], properties["CidrBlock"]

    return subnets_of(side, cidr_of)


def new_subnets(region, account, names, vpc_cidr):
    """The subnets of a one-template stack with the zones ``names`` picked in ``account``:
    the template's conditions pick the slots, the zone plan answers their CIDRs."""
    values = {"AvailabilityZones": ",".join(names), "VpcCidr": vpc_cidr}
    side = Side(new_template(), PARAMETERS | values, region)
    answers = zone_plan.plan(described(account, names), vpc_cidr, region)

    def cidr_of(resource, side):
        properties = side.resolve(resource["Properties"])
        target, attribute = properties["CidrBlock"]["Fn::GetAtt"]
        assert target == "ZonePlan"
        return account[properties["AvailabilityZone"]], answers[attribute]

    return subnets_of(side, cidr_of)


# An update, as CloudFormation runs it --------------------------------------------------------


def during_update(before, after):
    """Every subnet that exists at the busiest moment of an update from ``before`` to
    ``after``: CloudFormation creates the new ones (a new logical id, or a new CIDR: a
    replacement) and deletes the removed and replaced ones only afterwards, in cleanup."""
    coexisting = list(before.items())
    coexisting += [(lid, subnet) for lid, subnet in after.items() if before.get(lid) != subnet]
    return coexisting


def cidr_conflicts(subnets):
    """Pairs of logical ids whose subnets overlap: EC2 refuses the second one."""
    return {
        tuple(sorted((a_id, b_id)))
        for index, (a_id, a) in enumerate(subnets)
        for b_id, b in subnets[index + 1 :]
        if a.cidr.overlaps(b.cidr)
    }


def procedure(region, account, kept_id, vpc_cidr):
    """(step, subnets after it) for the README's procedure, from a stack with every zone of
    ``account`` on; ``kept_id`` is the zone left on in step 2."""
    kept_name = next(name for name, zone_id in account.items() if zone_id == kept_id)
    return [
        ("deployed", old_subnets(region, set(account.values()), vpc_cidr)),
        ("2. old template, one zone", old_subnets(region, {kept_id}, vpc_cidr)),
        (
            "3. new template, the others",
            new_subnets(region, account, sorted(set(account) - {kept_name}), vpc_cidr),
        ),
        ("4. new template, all zones", new_subnets(region, account, sorted(account), vpc_cidr)),
    ]


def zone_cidrs(subnets):
    return {subnet.zone_id: subnet.cidr for subnet in subnets.values()}


# b. The procedure never puts two subnets on one CIDR -----------------------------------------


@pytest.mark.parametrize("region", OLD_REGIONS)
def test_no_step_of_the_procedure_puts_two_subnets_on_one_cidr(region):
    zone_ids = [zone.zone_id for zone in old_zones(old_template(region))]
    for label, account in accounts(region, zone_ids).items():
        for vpc_cidr in VPC_CIDRS:
            for kept_id in sorted(set(account.values())):
                steps = procedure(region, account, kept_id, vpc_cidr)
                context = f"{region}, account {label}, {vpc_cidr}, keeping {kept_id}"
                for (_, before), (step, after) in itertools.pairwise(steps):
                    assert cidr_conflicts(during_update(before, after)) == set(), (
                        f"{context}: step {step}"
                    )
                deployed, *_, final = (subnets for _, subnets in steps)
                # every zone ends on the CIDR it had, in a letter slot
                assert zone_cidrs(final) == zone_cidrs(deployed), context
                assert all(lid[-1] in "ABCDEF" for lid in final), context
                assert len(steps[1][1]) == 1, context


@pytest.mark.parametrize("region", OLD_REGIONS)
def test_one_update_to_the_new_template_would_put_every_zone_on_its_cidr_twice(region):
    """Why the procedure exists: each new slot takes the slice its zone's old subnet still
    holds, so EC2 refuses the first new subnet and the update rolls back."""
    zone_ids = [zone.zone_id for zone in old_zones(old_template(region))]
    for label, account in accounts(region, zone_ids).items():
        deployed = old_subnets(region, set(account.values()), VPC_CIDRS[0])
        updated = new_subnets(region, account, sorted(account), VPC_CIDRS[0])
        old_by_zone = {subnet.zone_id: lid for lid, subnet in deployed.items()}
        expected = {
            tuple(sorted((old_by_zone[subnet.zone_id], lid))) for lid, subnet in updated.items()
        }
        assert cidr_conflicts(during_update(deployed, updated)) == expected, label
        assert len(expected) == len(account), label


def test_step_3_with_the_kept_zone_picked_too_would_clash_on_that_zone_only():
    """The operator's likely slip in step 3: EC2 refuses the one new subnet, the update rolls
    back and the stack stays as step 2 left it."""
    region = "us-east-1"
    zone_ids = [zone.zone_id for zone in old_zones(old_template(region))]
    account = accounts(region, zone_ids)["shuffled 0"]
    kept_name, kept_id = "us-east-1c", account["us-east-1c"]
    step2 = old_subnets(region, {kept_id}, VPC_CIDRS[0])
    wrong = new_subnets(region, account, sorted(account), VPC_CIDRS[0])
    (kept_old_id,) = step2
    assert step2[kept_old_id].zone_id == kept_id
    clash = {kept_old_id, "PrivateSubnet" + kept_name[-1].upper()}
    assert cidr_conflicts(during_update(step2, wrong)) == {tuple(sorted(clash))}


# a. Old template to new in one update: what the preview says ---------------------------------


def letters_for(region, count):
    return [f"{region}{letter}" for letter in zone_plan.ZONE_LETTERS[:count]]


@pytest.mark.parametrize("region", OLD_REGIONS)
def test_one_update_keeps_everything_stateful_and_swaps_only_the_zone_resources(region):
    old, new = old_template(region), new_template()
    zones = old_zones(old)
    names = letters_for(region, len(zones))
    result = plan(old, new, PARAMETERS, PARAMETERS | {"AvailabilityZones": ",".join(names)}, region)
    actions = by_action(result)

    assert actions["remove"] == zone_resources(zone.suffix for zone in zones)
    assert "replace" not in actions
    slots = [name[-1].upper() for name in names]
    assert actions["add"] == zone_resources(slots) | {"ZonePlan"}
    assert {c.logical_id for c in result.changes if not c.certain} == set()
    # the only stateful losses are the old subnets: new ids for Grand Challenge's settings
    assert {c.logical_id for c in result.destructive} == {"PrivateSubnet" + z.suffix for z in zones}

    kept = {
        logical_id
        for logical_id, resource in old["Resources"].items()
        if resource["Type"] in KEPT_TYPES and Side(old, PARAMETERS, region).exists(logical_id)
    }
    assert kept >= MUST_BE_KEPT
    assert kept <= set(new["Resources"])
    assert kept & (actions["remove"] | actions["add"]) == set()
    assert kept & actions["modify"] == {
        "CustodianPolicy",  # may now describe zones
        "ExecutionPolicy",  # the subnets it may use
        "SchedulePolicy",  # the subnets Grand Challenge may start jobs in
    }


README_ZONE_FILES = {  # eu-central-1, keeping euc1-az1, which this account calls eu-central-1c
    "zones-deployed.json": ["ZoneEuc1Az1=true", "ZoneEuc1Az2=true", "ZoneEuc1Az3=true"],
    "zones-step2.json": ["ZoneEuc1Az1=true", "ZoneEuc1Az2=false", "ZoneEuc1Az3=false"],
    "zones-step3.json": ["AvailabilityZones=eu-central-1a,eu-central-1b"],
    "zones-step4.json": ["AvailabilityZones=eu-central-1a,eu-central-1b,eu-central-1c"],
}
README_PREVIEWS = [  # (OLD, NEW, parameters before, after, exit code, summary line)
    (
        "deployed.json",
        "deployed.json",
        "zones-deployed.json",
        "zones-step2.json",
        3,
        "8 to remove, 0 to replace, 0 to add, 4 to modify; 2 stateful replaced or removed",
    ),
    (
        "deployed.json",
        "components-runtime.json",
        "zones-step2.json",
        "zones-step3.json",
        3,
        "4 to remove, 0 to replace, 9 to add, 6 to modify; 1 stateful replaced or removed",
    ),
    (
        "components-runtime.json",
        "components-runtime.json",
        "zones-step3.json",
        "zones-step4.json",
        0,
        "0 to remove, 0 to replace, 4 to add, 5 to modify; 0 stateful replaced or removed",
    ),
]


def test_the_readme_previews_of_the_three_updates(tmp_path, capsys, monkeypatch):
    """``build.py diff`` as the README runs it, with the same files it deploys with."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deployed.json").write_bytes(_old_text("eu-central-1"))
    (tmp_path / "components-runtime.json").write_bytes(_new_text())
    for name, values in README_ZONE_FILES.items():
        (tmp_path / name).write_text(json.dumps(values))
    removed = []
    for old, new, before, after, code, summary in README_PREVIEWS:
        argv = ["diff", old, new, "--region", "eu-central-1", "--parameters", before, after]
        assert build.main(argv) == code, argv
        out, err = capsys.readouterr()
        assert (out.splitlines()[-1], err) == (summary, ""), argv
        removed += [line.split()[1] for line in out.splitlines() if line.startswith("remove ")]
    # between them, the three updates remove each old zone's resources once
    assert sorted(removed) == sorted(zone_resources(["Euc1Az1", "Euc1Az2", "Euc1Az3"]))


# c. Step 2: the old template with one zone left on -------------------------------------------


@pytest.mark.parametrize("region", OLD_REGIONS)
def test_step_2_removes_only_the_other_zones_and_touches_nothing_stateful(region):
    old = old_template(region)
    zones = old_zones(old)
    all_on = {zone.parameter: "true" for zone in zones}
    for kept in zones:
        one_on = {zone.parameter: str(zone == kept).lower() for zone in zones}
        result = plan(old, old, PARAMETERS | all_on, PARAMETERS | one_on, region)
        actions = by_action(result)
        dropped = [zone.suffix for zone in zones if zone != kept]

        assert set(actions) == {"remove", "modify"}, kept
        assert actions["remove"] == zone_resources(dropped), kept
        assert {c.logical_id for c in result.destructive} == {
            "PrivateSubnet" + suffix for suffix in dropped
        }
        assert all(change.certain for change in result.changes)
        # in place; the cleanup deletes SageMaker's leftover interfaces in the dropped subnets
        # before CloudFormation deletes the subnets (they would block it)
        assert actions["modify"] == {
            "ExecutionPolicy",
            "NetworkInterfaceCleanup",
            "S3GatewayEndpoint",
            "SchedulePolicy",
        }


# Step 4: adding the zone left out ------------------------------------------------------------


def test_step_4_adds_the_last_zone_and_removes_nothing():
    """The preview cannot know the zone plan's answers, so it may list the subnets already
    there as possibly replaced (their CidrBlock is its GetAtt); the procedure test above shows
    their CIDRs do not change, and a subnet's CidrBlock only changes with its zone's id."""
    region = "us-east-1"
    new = new_template()
    names = letters_for(region, 6)
    before = PARAMETERS | {"AvailabilityZones": ",".join(names[:3] + names[4:])}
    after = PARAMETERS | {"AvailabilityZones": ",".join(names)}
    result = plan(new, new, before, after, region)
    actions = by_action(result)

    assert "remove" not in actions
    assert actions["add"] == zone_resources(["D"])
    replaced = [c for c in result.changes if c.action == "replace"]
    assert {c.logical_id for c in replaced} <= {"PrivateSubnet" + s for s in "ABCEF"}
    assert not any(change.certain for change in replaced)
    assert "ZonePlan" in actions["modify"]
