"""The bucket emptier's parallel listing (a big bucket is split at its prefixes into key ranges
listed at once) and its handling of throttled keys (re-sent in later batches, no worker
sleeping), against moto S3.

Fixtures and helpers come from tests/test_empty_bucket.py (moto S3, the client spy).
"""
# ruff: noqa: F811 (its fixtures, imported, are parameters here)

import threading
from collections import Counter

import pytest
from moto.core.utils import unix_time_millis
from moto.s3.models import S3Backend

from templates.functions import empty_bucket
from tests.conftest import FakeContext
from tests.test_empty_bucket import (  # noqa: F401 (fixtures)
    BUCKET,
    delete_event,
    fill,
    make_bucket,
    moto_bucket,
    no_waiting,
    s3,
    spy,
    versions_left,
)
from tests.test_empty_bucket_faults import PerKeyErrors

PREFIXES = [f"p{index}/" for index in range(8)]
ROOT_KEYS = 25
# One page (1,000 entries) is listed before the split: p0, p1 and half of p2 (400 entries a
# prefix). The split then cuts the prefixes after the first lister's position (p3 to p7) into
# four: the first lister goes on to p4/, the new ones list (p4/, p5/], (p5/, p6/], (p6/, end).
MARKERS = ["p4/", "p5/", "p6/"]


@pytest.fixture
def s3_semantics(monkeypatch):
    """moto drops the first version after a KeyMarker given without a VersionIdMarker; S3
    starts right after the marker key's last version. Translated into what moto gets right:
    the last version (in listing order) of the greatest key not after the marker. Listings and
    deletes take turns inside moto so that this version is not deleted meanwhile."""
    real_list, real_delete = S3Backend.list_object_versions, S3Backend.delete_objects
    turns = threading.Lock()

    def list_object_versions(self, bucket_name, delimiter=None, key_marker=None, **kwargs):
        with turns:
            if key_marker and not delimiter and not kwargs.get("version_id_marker"):
                key_marker, kwargs["version_id_marker"] = after(self, bucket_name, key_marker)
            return real_list(
                self, bucket_name, delimiter=delimiter, key_marker=key_marker, **kwargs
            )

    def after(backend, bucket_name, key_marker):
        keys = backend.get_bucket(bucket_name).keys
        before = max(
            (name for name in keys if name <= key_marker and keys.getlist(name)), default=None
        )
        if before is None:
            return None, None
        versions = sorted(keys.getlist(before), key=lambda v: -unix_time_millis(v.last_modified))
        return before, versions[-1].version_id

    def delete_objects(self, *args, **kwargs):
        with turns:
            return real_delete(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "list_object_versions", list_object_versions)
    monkeypatch.setattr(S3Backend, "delete_objects", delete_objects)


@pytest.fixture
def split_early(monkeypatch):
    monkeypatch.setattr(empty_bucket, "SPLIT_AFTER_PAGES", 1, raising=False)  # old code: none


def put_keys(s3, names):
    """Each of ``names`` with 2 versions and 2 delete markers; the entries that makes."""
    for name in names:
        for version in range(2):
            s3.put_object(Bucket=BUCKET, Key=name, Body=f"{name} v{version}".encode())
    for _ in range(2):
        for start in range(0, len(names), 1000):
            objects = [{"Key": name} for name in names[start : start + 1000]]
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": objects})
    return 4 * len(names)


def prefixed_bucket(s3):
    make_bucket(s3)
    names = [f"{prefix}{index:03d}.bin" for prefix in PREFIXES for index in range(100)]
    names += [f"root-{index:03d}.txt" for index in range(ROOT_KEYS)]  # keys without a "/"
    total = put_keys(s3, names)
    assert total == versions_left(s3) == 3300
    return total


def sent_versions(spy):
    """(Key, VersionId) of every version the handler's DeleteObjects calls named."""
    return [
        (version["Key"], version["VersionId"])
        for params in spy.of("DeleteObjects")
        for version in params["Delete"]["Objects"]
    ]


def test_a_prefixed_bucket_is_emptied_by_parallel_listers(
    s3, spy, cfn_responses, s3_semantics, split_early
):
    total = prefixed_bucket(s3)
    listing = threading.Lock()
    listers_at_once, active = [0], [0]

    def count(delta):
        def hook(**_):
            with listing:
                active[0] += delta
                listers_at_once[0] = max(listers_at_once[0], active[0])

        return hook

    spy.hooks.append(("before-call.s3.ListObjectVersions", count(1)))
    spy.hooks.append(("after-call.s3.ListObjectVersions", count(-1)))

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": str(total)}), body
    assert versions_left(s3) == 0
    sent = sent_versions(spy)
    assert len(sent) == len(set(sent)) == total  # every version, delete markers too, once
    listings = spy.of("ListObjectVersions")
    assert {p.get("KeyMarker") for p in listings if "VersionIdMarker" not in p} >= set(MARKERS)
    assert [p["Prefix"] for p in listings if p.get("Delimiter") == "/"] == [""]  # 8 prefixes
    assert all(len(p["Delete"]["Objects"]) <= empty_bucket.BATCH for p in spy.of("DeleteObjects"))


def test_a_flat_bucket_keeps_one_lister(s3, spy, cfn_responses, s3_semantics, split_early):
    make_bucket(s3)
    total = put_keys(s3, [f"flat-{index:04d}.bin" for index in range(500)])  # 2 pages, no "/"

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": str(total)}), body
    assert versions_left(s3) == 0 and len(set(sent_versions(spy))) == total
    listings = spy.of("ListObjectVersions")
    assert [p for p in listings if "Delimiter" in p] == [{**listings[1]}]  # one page, no prefix
    assert not [p for p in listings if "KeyMarker" in p and "VersionIdMarker" not in p]


def test_a_lister_pages_while_another_listers_batch_is_being_deleted(
    s3, spy, cfn_responses, s3_semantics, split_early
):
    """The lister of (p4/, p5/] (p4's keys) asks for its page only once the batch of the lister
    of (p5/, p6/] (p5's keys) is being deleted, and that delete finishes only once the page is back: a page
    and another range's delete overlap, and neither loses nor repeats a version."""
    total = prefixed_bucket(s3)
    deleting, listed = threading.Event(), threading.Event()

    def before_list(params, **_):
        if params.get("KeyMarker") == "p4/" and "VersionIdMarker" not in params:
            assert deleting.wait(10), "no other lister's delete ran"

    def after_list(parsed, **_):
        entries = parsed.get("Versions", []) + parsed.get("DeleteMarkers", [])
        if deleting.is_set() and entries and entries[0]["Key"] == "p4/000.bin":
            listed.set()

    def before_delete(params, **_):
        if params["Delete"]["Objects"][0]["Key"] == "p5/000.bin":
            deleting.set()
            assert listed.wait(10), "the other lister's page was not listed meanwhile"

    spy.hooks.append(("before-parameter-build.s3.ListObjectVersions", before_list))
    spy.hooks.append(("after-call.s3.ListObjectVersions", after_list))
    spy.hooks.append(("before-parameter-build.s3.DeleteObjects", before_delete))

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": str(total)}), body
    assert deleting.is_set() and listed.is_set()
    assert versions_left(s3) == 0
    sent = sent_versions(spy)
    assert len(sent) == len(set(sent)) == total


def test_throttled_keys_are_resent_in_a_later_batch_without_a_worker_sleeping(
    s3, spy, cfn_responses, monkeypatch
):
    make_bucket(s3)
    total = fill(s3, keys=1500, versions=1, markers=1)  # 3 batches
    first_sent_in = {}  # version -> index of the DeleteObjects call that first named it
    calls = []

    def record(params, **_):
        calls.append([(v["Key"], v["VersionId"]) for v in params["Delete"]["Objects"]])
        for version in calls[-1]:
            first_sent_in.setdefault(version, len(calls) - 1)

    spy.hooks.append(("before-parameter-build.s3.DeleteObjects", record))
    errors = PerKeyErrors(  # every third key throttled once: 1,000 versions from 3 batches
        lambda key, attempt: "SlowDown" if int(key[5:10]) % 3 == 0 and attempt == 1 else None
    )
    errors.install(spy)
    sleepers = []
    real_pause = empty_bucket.Emptier.pause

    def pause(self, seconds):
        if threading.current_thread().name.startswith("ThreadPoolExecutor"):
            sleepers.append(seconds)
        return real_pause(self, seconds)

    monkeypatch.setattr(empty_bucket.Emptier, "pause", pause)

    empty_bucket.handler(delete_event(cfn_responses.url), FakeContext())

    body = cfn_responses.only_body()
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"Deleted": str(total)}), body
    assert versions_left(s3) == 0
    assert sleepers == []  # no worker sat out a backoff
    throttled = {(e["Key"], e["VersionId"]) for e in errors.reported}
    assert len(throttled) == 1000
    assert Counter(errors.attempts[version] for version in throttled) == {2: 1000}
    later = [i for i, call in enumerate(calls) if call and all(first_sent_in[v] < i for v in call)]
    assert len(later) == 1 and len(calls[later[0]]) == 1000  # one later batch carries them all,
    assert {first_sent_in[version] for version in calls[later[0]]} == {0, 1, 2}  # from 3 batches
