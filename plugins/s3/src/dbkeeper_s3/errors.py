"""Every obstore and botocore failure as one dbkeeper StorageError line that says what to do.

The line names the storage URL and the endpoint, never a credential. S3's own error code
(``<Code>…</Code>`` in obstore's message, ``Error.Code`` in botocore's) picks the advice.
"""

from __future__ import annotations

import re

from dbkeeper.plugin import StorageError
from dbkeeper_s3.location import S3Location
from dbkeeper_s3.settings import S3Settings

CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"})
_UNREACHABLE = ("error sending request", "connection refused", "timed out", "dns error", "connect error")
_CODE = re.compile(r"<Code>(\w+)</Code>")


def storage_error(
    exc: BaseException, location: S3Location, settings: S3Settings, key: str | None = None
) -> StorageError:
    """The one-line StorageError for *exc*, raised while working on *key* (relative) of *location*."""
    code = _code_of(exc)
    if code in CREDENTIAL_CODES or type(exc).__name__ in ("UnauthenticatedError", "NoCredentialsError"):
        return StorageError(
            f"S3 refused the credentials for s3://{location.bucket} ({code or 'no credentials'}): check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the [storage.NAME] section"
        )
    if code == "NoSuchBucket":
        return StorageError(
            f"the bucket {location.bucket} does not exist at {settings.where}: create it or fix the URL {location.url}"
        )
    if code in ("AccessDenied", "AllAccessDisabled") or type(exc).__name__ == "PermissionDeniedError":
        return StorageError(
            f"S3 denied access to {location.url} ({code or 'AccessDenied'}): allow these credentials s3:ListBucket, "
            "s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload there"
        )
    if code in ("NoSuchKey", "NotFound") or isinstance(exc, FileNotFoundError):
        return StorageError(f"{location.url}/{key or ''} is not there (deleted meanwhile?): list what is stored again")
    if type(exc).__name__ == "ProfileNotFound":
        return StorageError(
            f"the AWS profile {settings.profile} does not exist: fix AWS_PROFILE or the profile setting"
        )
    if _unreachable(exc):
        return StorageError(
            f"cannot reach S3 at {settings.where} for {location.url} (refused, or no answer in "
            f"{settings.timeout:g} s): check AWS_ENDPOINT_URL (or the endpoint setting) and the network"
        )
    return StorageError(
        f"S3 failed on {location.url} ({code or type(exc).__name__}) at {settings.where}: check the endpoint and retry"
    )


def _code_of(exc: BaseException) -> str | None:
    """S3's error code in *exc*: botocore's ``Error.Code`` or the ``<Code>`` of the body obstore quotes."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    found = _CODE.search(str(exc))
    return found.group(1) if found else None


def _unreachable(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}:
        return True
    summary, _, debug = str(exc).lower().partition("debug source")  # obstore's summary, then its debug dump
    if any(marker in summary for marker in _UNREACHABLE):
        return True
    # a body that stopped mid-stream: obstore's summary is generic, its dump names the timeout
    return "body error" in summary and ("kind: timeout" in debug or "timedout" in debug)
