"""The client libraries, configured alike: obstore for the data, boto3 for multipart-upload housekeeping.

Both get the same endpoint, region and credentials (:class:`S3Settings`), a connect
timeout, a read timeout (the longest wait for the service's next bytes, so a stream of any
length is fine but a server that stops answering is noticed) and a bounded number of
retries. Both libraries are imported here, when a client is made, never at plugin load.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from dbkeeper_s3.settings import MAX_RETRIES, S3Settings

WHOLE_REQUEST = timedelta(days=1)
"""obstore's 30 s limit on a whole request would cut a long download short; stalls are the read timeout's."""

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from obstore.store import S3Config, S3Store

    from dbkeeper_s3.location import S3Location


def obstore_store(location: S3Location, settings: S3Settings) -> S3Store:
    """An obstore ``S3Store`` for the bucket and prefix of *location* (it contacts nobody yet)."""
    from obstore.store import S3Store

    names = ("endpoint", "region", "access_key_id", "secret_access_key", "session_token")
    given = {name: value for name in names if (value := getattr(settings, name)) is not None}
    config = cast("S3Config", {"checksum_algorithm": "SHA256", **given})
    provider = _profile_credentials(settings.profile) if settings.profile else None
    return S3Store(
        location.bucket,
        prefix=location.prefix or None,
        config=config,
        client_options={
            "allow_http": (settings.endpoint or "").startswith("http://"),
            "connect_timeout": timedelta(seconds=settings.connect_timeout),
            "read_timeout": timedelta(seconds=settings.timeout),
            "timeout": WHOLE_REQUEST,
        },
        retry_config={"max_retries": MAX_RETRIES, "retry_timeout": timedelta(seconds=settings.timeout)},
        credential_provider=provider,
    )


def _profile_credentials(profile: str) -> Any:
    """The boto3 credential provider for the AWS profile *profile* (refreshes its credentials itself)."""
    import boto3
    from obstore.auth.boto3 import Boto3CredentialProvider

    return Boto3CredentialProvider(boto3.Session(profile_name=profile))


def boto3_client(settings: S3Settings) -> S3Client:
    """A boto3 S3 client with the same endpoint, credentials, timeouts and retries as the obstore store."""
    import boto3
    from botocore.config import Config

    session = boto3.Session(
        aws_access_key_id=settings.access_key_id, aws_secret_access_key=settings.secret_access_key,
        aws_session_token=settings.session_token, region_name=settings.region, profile_name=settings.profile,
    )  # fmt: skip
    config = Config(
        connect_timeout=settings.connect_timeout, read_timeout=settings.timeout,
        retries={"max_attempts": MAX_RETRIES, "mode": "standard"},
    )  # fmt: skip
    return session.client("s3", endpoint_url=settings.endpoint, config=config)
