"""The benchmark's S3 timing model answers the emptier's calls as S3 (here: moto) does."""

import sys
import threading
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import s3_model

FAST = 0.001  # model seconds per wall second: 100 ms latencies take 0.1 ms
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def model():
    def make(scale=FAST, **calibration):
        return s3_model.FakeS3(s3_model.Calibration(**calibration), scale=scale).install()

    yield make
    s3_model.FakeS3.active = None


def client():
    return boto3.client("s3", endpoint_url="http://127.0.0.1:9", config=NO_RETRIES)


def all_entries(s3, bucket, page_size, delete_each_page=False):
    """Every (key, version, is latest, kind) in listing order, paging with the markers."""
    seen, markers = [], {}
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=page_size, **markers)
        entries = [(e, "version") for e in page.get("Versions", [])]
        entries += [(e, "marker") for e in page.get("DeleteMarkers", [])]
        entries.sort(key=lambda pair: (pair[0]["Key"], -pair[0]["IsLatest"]))
        seen += [(e["Key"], e["VersionId"], e["IsLatest"], kind) for e, kind in entries]
        if delete_each_page and entries:
            objects = [{"Key": e["Key"], "VersionId": e["VersionId"]} for e, _ in entries]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        if not page["IsTruncated"]:
            return seen
        markers = {"KeyMarker": page["NextKeyMarker"]}
        markers["VersionIdMarker"] = page["NextVersionIdMarker"]


def moto_twin(size):
    """The model's layout written to moto: two versions per key, every fourth key's newest a
    delete marker."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="twin")
    s3.put_bucket_versioning(Bucket="twin", VersioningConfiguration={"Status": "Enabled"})
    layout = s3_model.VirtualBucket("twin", size)
    for index in range(layout.keys):
        s3.put_object(Bucket="twin", Key=layout.key(index), Body=b"old")
        if 2 * index + 1 < size:
            if layout.is_marker(2 * index):
                s3.delete_object(Bucket="twin", Key=layout.key(index))
            else:
                s3.put_object(Bucket="twin", Key=layout.key(index), Body=b"new")
    return s3


def shape(entries):
    return [(key, latest, kind) for key, _, latest, kind in entries]


@pytest.mark.parametrize("page_size", [1, 7, 1000])
def test_listing_pages_like_moto(model, page_size):
    model().add_bucket("twin", 41)
    modelled = all_entries(client(), "twin", page_size)
    s3_model.FakeS3.active = None
    with mock_aws():
        real = all_entries(moto_twin(41), "twin", page_size)
    assert shape(modelled) == shape(real)
    assert len({version for _, version, _, _ in modelled}) == 41


def test_delete_objects_removes_exactly_the_named_versions(model):
    bucket = model().add_bucket("b", 10)
    s3 = client()
    first = all_entries(s3, "b", 1000)[:3]
    objects = [{"Key": key, "VersionId": version} for key, version, _, _ in first]
    loud = s3.delete_objects(Bucket="b", Delete={"Objects": objects})
    assert [(d["Key"], d["VersionId"]) for d in loud["Deleted"]] == [
        (o["Key"], o["VersionId"]) for o in objects
    ]
    assert "Errors" not in loud
    left = all_entries(s3, "b", 1000)
    assert len(left) == 7 and not set(left) & set(first)
    assert bucket.remaining() == 7
    quiet = s3.delete_objects(Bucket="b", Delete={"Objects": objects[:1], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet


def test_paging_resumes_after_a_deleted_marker_version(model):
    """The emptiers delete a page before asking for the next: S3 seeks past the markers."""
    bucket = model().add_bucket("b", 25)
    seen = all_entries(client(), "b", 4, delete_each_page=True)
    assert len(seen) == 25 and bucket.remaining() == 0


def test_rate_cap_answers_slowdown_per_key_then_whole_request(model):
    # A huge scale stops the model's clock in practice: no token comes back during the test.
    bucket = model(scale=1e6, base_s=0, list_key_s=0, delete_key_s=0, deletes_per_s=5).add_bucket(
        "b", 20
    )
    s3 = client()
    entries = all_entries(s3, "b", 1000)
    objects = [{"Key": key, "VersionId": version} for key, version, _, _ in entries[:8]]
    reply = s3.delete_objects(Bucket="b", Delete={"Objects": objects, "Quiet": True})
    assert [e["Code"] for e in reply["Errors"]] == ["SlowDown"] * 3
    assert [(e["Key"], e["VersionId"]) for e in reply["Errors"]] == [
        (o["Key"], o["VersionId"]) for o in objects[5:]
    ]
    assert bucket.remaining() == 15
    with pytest.raises(ClientError) as raised:
        s3.delete_objects(Bucket="b", Delete={"Objects": objects[5:], "Quiet": True})
    assert raised.value.response["Error"]["Code"] == "SlowDown"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_partitions_have_a_rate_each(model):
    bucket = model(scale=1e6, base_s=0, list_key_s=0, delete_key_s=0, deletes_per_s=5, partitions=2)
    bucket = bucket.add_bucket("b", 20)  # keys 0-4 in partition 0, keys 5-9 in partition 1
    s3 = client()
    entries = all_entries(s3, "b", 1000)
    objects = [{"Key": k, "VersionId": v} for k, v, _, _ in entries[:6] + entries[10:16]]
    reply = s3.delete_objects(Bucket="b", Delete={"Objects": objects, "Quiet": True})
    assert len(reply["Errors"]) == 2 and bucket.remaining() == 10


def test_injected_slowdown_is_retried_by_botocore(model):
    fake = model(slowdown=0.5)
    fake.add_bucket("b", 4, {"team": "gc"})
    s3 = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", config=Config(retries={"total_max_attempts": 20})
    )
    with s3_model.scaled_sleep(FAST):
        for _ in range(10):
            assert s3.get_bucket_tagging(Bucket="b")["TagSet"] == [{"Key": "team", "Value": "gc"}]
    assert fake.requests["GetBucketTagging"] == 10 + fake.throttled["503 SlowDown"]
    assert 2 <= fake.throttled["503 SlowDown"] <= 40


def test_other_calls_the_emptier_makes(model):
    model().add_bucket("b", 2, {"k": "v"})
    s3 = client()
    assert s3.list_multipart_uploads(Bucket="b").get("Uploads", []) == []
    with pytest.raises(ClientError) as raised:
        s3.list_object_versions(Bucket="gone")
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(ClientError) as raised:
        s3.abort_multipart_upload(Bucket="b", Key="k", UploadId="u")
    assert raised.value.response["Error"]["Code"] == "NoSuchUpload"


def test_latency_and_concurrency_cap_are_waited_for(model):
    """Four 100 ms requests through 2 slots take 200 ms of model time."""
    fake = model(scale=0.05, base_s=0.1, concurrency=2)
    fake.add_bucket("b", 2)
    s3 = client()
    s3.get_bucket_tagging(Bucket="b")  # warm the client outside the timing
    started = fake.clock.now()
    threads = [
        threading.Thread(target=s3.get_bucket_tagging, kwargs={"Bucket": "b"}) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0.2 <= fake.clock.now() - started < 0.5
