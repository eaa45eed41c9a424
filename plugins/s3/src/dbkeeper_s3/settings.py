"""How to reach the service: endpoint, region, credentials and timeouts, from a ``[storage.NAME]`` section or AWS_*.

A section's settings win; what they leave out comes from the standard environment
variables (``AWS_ENDPOINT_URL``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``).
Secrets are kept out of ``repr`` and never reach a message. The keys a section may hold are
registered with the storage (``dbkeeper_s3.plugin.SETTING_NAMES``); this module is imported
when a store is opened, not in every command.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from dbkeeper.plugin import StorageError

DEFAULT_TIMEOUT = 30.0
"""Seconds a request may wait for the service's next bytes, and for retries of one request."""
CONNECT_TIMEOUT = 5.0
"""Seconds to open a connection (or the ``timeout`` setting, when smaller)."""
MAX_RETRIES = 3


@dataclass(frozen=True)
class S3Settings:
    """Everything a client needs besides the bucket; ``None`` means the client's own default."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def connect_timeout(self) -> float:
        """Seconds to open a connection."""
        return min(CONNECT_TIMEOUT, self.timeout)

    @property
    def where(self) -> str:
        """The endpoint for messages: the configured one, or AWS's own."""
        return self.endpoint or "the AWS endpoint"


def resolve_settings(settings: Mapping[str, str], environ: Mapping[str, str] | None = None) -> S3Settings:
    """The section's *settings* completed from the AWS_* variables of *environ* (default: ours)."""
    env = os.environ if environ is None else environ  # unknown keys: the core refused them already

    def pick(name: str, *variables: str) -> str | None:
        return settings.get(name) or next((env[v] for v in variables if env.get(v)), None)

    key_id = pick("access_key_id", "AWS_ACCESS_KEY_ID")
    secret = pick("secret_access_key", "AWS_SECRET_ACCESS_KEY")
    if bool(key_id) != bool(secret):
        raise StorageError(
            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or both keys of the [storage] section)"
        )
    profile = settings.get("profile") or (None if key_id else env.get("AWS_PROFILE") or None)
    return S3Settings(
        endpoint=pick("endpoint", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        region=pick("region", "AWS_REGION", "AWS_DEFAULT_REGION"),
        access_key_id=None if settings.get("profile") else key_id,
        secret_access_key=None if settings.get("profile") else secret,
        session_token=None if settings.get("profile") else pick("session_token", "AWS_SESSION_TOKEN"),
        profile=profile,
        timeout=_seconds(settings.get("timeout")),
    )


def _seconds(value: str | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise StorageError(f"the s3 storage setting timeout is a number of seconds above 0, not {value!r}")
    return seconds
