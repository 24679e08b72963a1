"""Overlapping S3 network-ACL syncs: two or three ``sync`` calls in threads on one moto EC2.

A scheduler lets exactly one sync make one EC2 call at a time (a botocore before-call hook
parks every other thread), so moto is never entered concurrently and only the order of calls
varies: a fixed script for the interleaving that broke the old sync, then many seeded random
ones. After every call the ACL is checked: no wanted rule that has been present may go missing
(S3 never cut off), and at the end each S3 CIDR has exactly one inbound and one outbound rule.
The hook also answers like AWS where moto differs: deleting a missing entry is
InvalidNetworkAclEntry.NotFound, and a rule past the quota is NetworkAclEntryLimitExceeded.
"""
# ruff: noqa: F811 (fixtures imported from tests/test_s3_network_acl.py are parameters here)

import os
import random
import threading

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from templates.functions import s3_network_acl
from templates.functions.s3_network_acl import wanted_rules
from tests.test_s3_network_acl import acl, add_entry, ec2  # noqa: F401 (fixtures)

REGION = "eu-central-1"
OLD = ["3.5.0.0/19", "52.216.0.0/15", "54.231.0.0/16"]
NEW = ["16.12.0.0/18", "18.34.0.0/19", "3.5.0.0/19", "54.231.0.0/16"]
INBOUND, HTTPS = (1024, 65535), (443, 443)
AWS_QUOTA = 20  # what the fake AWS enforces per direction, deny-all included
STEP_TIMEOUT = 30  # seconds a parked or running thread may take before the test fails
# Random schedules per start and thread count; raise it (e.g. ACL_SCHEDULES=200) to explore more.
SCHEDULES = int(os.environ.get("ACL_SCHEDULES", "3"))


def add_s3_rules(ec2, acl_id, cidrs, first_rule):
    for number, cidr in enumerate(cidrs, start=first_rule):
        add_entry(ec2, acl_id, False, number, cidr, INBOUND)
        add_entry(ec2, acl_id, True, number, cidr, HTTPS)


def _error(code):
    response = AWSResponse(f"https://ec2.{REGION}.amazonaws.com/", 400, {}, None)
    return response, {"Error": {"Code": code, "Message": "simulated as AWS answers"}}


class Scheduler:
    """Runs sync threads one EC2 call at a time; ``pick(waiting)`` chooses who calls next,
    where ``waiting`` maps each parked thread to the operation it is about to call."""

    def __init__(self, ec2, acl_id, cidrs, pick):
        self.ec2, self.acl_id, self.pick = ec2, acl_id, pick
        self.wanted = set(wanted_rules(cidrs))
        self.lock = threading.Condition()
        self.state = {}  # thread name: "running", "done" or (operation, params) it waits to call
        self.granted = None
        self.trace = []  # (thread, operation) in the order they were let through
        self.errors = {}

    def rules(self):
        return s3_network_acl.read_rules(self.ec2, self.acl_id)

    def hook(self, name):
        def before_call(model, params, **_):
            with self.lock:
                self.state[name] = (model.name, params)
                self.lock.notify_all()
                assert self.lock.wait_for(lambda: self.granted == name, STEP_TIMEOUT)
                self.granted = None
                return self._aws_answer(model.name, params)

        return before_call

    def _aws_answer(self, operation, request):
        """AWS's error where moto would not give it; None lets the call reach moto."""
        rules, body = self.rules(), request["body"]  # the query-protocol form fields
        key = (body.get("Egress") == "true", int(body.get("RuleNumber", 0)))
        if operation == "DeleteNetworkAclEntry" and key not in rules:
            return _error("InvalidNetworkAclEntry.NotFound")
        in_direction = sum(egress == key[0] for egress, _ in rules)
        if operation == "CreateNetworkAclEntry" and in_direction >= AWS_QUOTA:
            return _error("NetworkAclEntryLimitExceeded")
        return None

    def run(self, syncs):
        """Run ``{name: sync}``; checks the ACL after every call; returns how each ended."""
        outcomes = {}

        def worker(name, sync):
            try:
                outcomes[name] = sync()
            except Exception as error:  # noqa: BLE001 - the test asserts on every outcome
                outcomes[name] = error
            finally:
                with self.lock:
                    self.state[name] = "done"
                    self.lock.notify_all()

        kept = {rule for rule in self.rules().values() if rule in self.wanted}
        threads = [
            threading.Thread(target=worker, args=item, daemon=True) for item in syncs.items()
        ]
        with self.lock:
            self.state = dict.fromkeys(syncs, "running")
        for thread in threads:
            thread.start()
        while True:
            with self.lock:
                assert self.lock.wait_for(
                    lambda: "running" not in self.state.values(), STEP_TIMEOUT
                ), f"a sync hung: {self.state}"
                waiting = {n: s[0] for n, s in self.state.items() if s != "done"}
                present = set(self.rules().values())
                assert kept <= present, f"gap after {self.trace}: lost {kept - present}"
                kept |= present & self.wanted
                if not waiting:
                    break
                name = self.pick(waiting)
                self.trace.append((name, waiting[name]))
                self.state[name], self.granted = "running", name
                self.lock.notify_all()
        for thread in threads:
            thread.join(STEP_TIMEOUT)
        return outcomes


def start_syncs(ec2, acl_id, cidrs, scheduler, names):
    """One client per sync (made here, in one thread), each parked by the scheduler."""
    syncs = {}
    for name in names:
        client = boto3.client("ec2", region_name=REGION)
        client.meta.events.register("before-call.ec2.*", scheduler.hook(name))
        syncs[name] = lambda client=client: s3_network_acl.sync(client, acl_id, cidrs)
    return syncs


def assert_exactly_one_pair_per_cidr(scheduler, cidrs):
    s3_rules = [rule for (_, number), rule in scheduler.rules().items() if number < 32767]
    assert sorted(s3_rules) == sorted(wanted_rules(cidrs)), scheduler.trace


def script(*phases):
    """A pick for ``(thread, operation)`` phases: let ``thread`` call until it is about to
    call ``operation`` (None: until it is done), then go on to the next phase."""
    remaining = list(phases)

    def pick(waiting):
        while remaining:
            name, stop_at = remaining[0]
            if name in waiting and waiting[name] != stop_at:
                return name
            remaining.pop(0)
        return min(waiting)

    return pick


def old_set_and_a_half_written_copy(ec2, acl_id):
    """The old set at 100+, and the new set half written at 200+ by an earlier, cut-off run."""
    add_s3_rules(ec2, acl_id, OLD, 100)
    add_entry(ec2, acl_id, False, 200, NEW[0], INBOUND)
    add_entry(ec2, acl_id, True, 203, NEW[3], HTTPS)


def both_ranges_taken(ec2, acl_id):
    """What the old sync left after a cut-off swap: the old set at 100+, a full copy at 200+."""
    add_s3_rules(ec2, acl_id, OLD, 100)
    add_s3_rules(ec2, acl_id, NEW, 200)


def stale_mix(ec2, acl_id):
    add_s3_rules(ec2, acl_id, OLD, 100)
    add_entry(ec2, acl_id, False, 150, "3.5.0.0/19", INBOUND)  # a duplicate
    add_entry(ec2, acl_id, True, 90, "0.0.0.0/0", HTTPS)  # someone's extra rule
    add_entry(ec2, acl_id, True, 202, "3.5.0.0/19", HTTPS, action="deny")  # wrong action, in a slot


STARTS = {
    "empty": lambda ec2, acl_id: None,
    "old-set": lambda ec2, acl_id: add_s3_rules(ec2, acl_id, OLD, 100),
    "old-set-in-200": lambda ec2, acl_id: add_s3_rules(ec2, acl_id, OLD, 200),
    "half-written": old_set_and_a_half_written_copy,
    "both-ranges-taken": both_ranges_taken,
    "stale-mix": stale_mix,
}


def test_the_schedule_that_stripped_the_acl_now_keeps_every_rule(ec2, acl):
    # The old sync: A writes the new set at 200+, B (both ranges taken) rewrites 100+ in place,
    # A deletes 100+, B deletes 200+: S3 gone. Here: A until its first delete, then B until
    # its first delete, then A to the end, then B.
    add_s3_rules(ec2, acl, OLD, 100)
    scheduler = Scheduler(
        ec2,
        acl,
        NEW,
        script(
            ("A", "DeleteNetworkAclEntry"),
            ("B", "DeleteNetworkAclEntry"),
            ("A", None),
            ("B", None),
        ),
    )

    outcomes = scheduler.run(start_syncs(ec2, acl, NEW, scheduler, "AB"))

    assert all(isinstance(count, int) for count in outcomes.values()), outcomes
    assert_exactly_one_pair_per_cidr(scheduler, NEW)
    assert ("B", "DeleteNetworkAclEntry") in scheduler.trace  # B did overlap A's deletes


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("seed", range(SCHEDULES))
@pytest.mark.parametrize("syncs", ["AB", "ABC"])
def test_any_interleaving_keeps_s3_and_converges(ec2, acl, start, seed, syncs):
    STARTS[start](ec2, acl)
    rng = random.Random(f"{start}-{seed}-{syncs}")
    scheduler = Scheduler(ec2, acl, NEW, lambda waiting: rng.choice(sorted(waiting)))

    outcomes = scheduler.run(start_syncs(ec2, acl, NEW, scheduler, syncs))

    assert all(isinstance(count, int) for count in outcomes.values()), outcomes
    assert_exactly_one_pair_per_cidr(scheduler, NEW)
    assert len({name for name, _ in scheduler.trace}) == len(syncs)
