"""Fixtures of the deployment tests: S3 storage on moto's S3 server (loopback)."""

import pytest

from tests.conftest import free_port

BUCKET = "labelloop-test"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, tmp_path):
    """STORAGES["default"] on a fresh bucket, the way config.settings.production sets it up."""
    import boto3

    s3 = boto3.resource(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
        region_name=CREDENTIALS["region_name"],
    )
    b = s3.Bucket(BUCKET)
    b.create()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
                **CREDENTIALS,
            },
        },
    }
    settings.LABELLOOP_DATA_ROOT = tmp_path / "worker-data"
    yield b
    b.objects.all().delete()
    b.delete()
