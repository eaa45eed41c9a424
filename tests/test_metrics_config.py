"""``[monitoring]`` and ``[health]`` in dbkeeper.toml: defaults, overrides, and refusals naming the valid keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.connections.config import load_config
from dbkeeper.connections.monitoring_settings import DEFAULT_LISTEN, MonitoringSettings
from dbkeeper.errors import ConfigError
from dbkeeper.plugin import HealthThresholds


def _config(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "dbkeeper.toml"
    file.write_text(text, encoding="utf-8")
    return file


def test_without_the_sections_the_defaults_apply(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'backup_dir = "b"\n'))
    assert config.monitoring == MonitoringSettings()
    assert config.monitoring.listen == DEFAULT_LISTEN
    assert config.monitoring.deadline == 10.0
    assert config.health_thresholds == HealthThresholds()


def test_every_setting_is_overridable(tmp_path: Path) -> None:
    text = (
        "[monitoring]\ntable_limit = 0\nstatements = true\nstatements_limit = 5\nquery_text = true\n"
        'deadline = 2.5\nstatement_timeout = 1\nlock_timeout = 0.2\nlisten = "0.0.0.0:9100"\n'
        "[health]\nlong_query_seconds = 30\nblocked_sessions_max = 3\ncache_hit_ratio_min = 0.95\n"
    )
    config = load_config(_config(tmp_path, text))
    assert config.monitoring == MonitoringSettings(0, True, 5, True, 2.5, 1.0, 0.2, "0.0.0.0:9100")
    thresholds = config.health_thresholds
    assert (thresholds.long_query_seconds, thresholds.blocked_sessions_max) == (30.0, 3)
    assert thresholds.cache_hit_ratio_min == 0.95
    assert thresholds.idle_in_transaction_seconds == HealthThresholds().idle_in_transaction_seconds


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("health", "bogus = 1", "unknown setting 'bogus' (known: blocked_sessions_max, cache_hit_ratio_min"),
        ("health", 'long_query_seconds = "60"', "long_query_seconds must be a non-negative number"),
        ("health", "blocked_sessions_max = 1.5", "blocked_sessions_max must be a non-negative integer"),
        ("health", "cache_hit_ratio_min = 2", "cache_hit_ratio_min is a ratio from 0 to 1"),
        ("health", "long_query_seconds = true", "long_query_seconds must be a non-negative number"),
        ("monitoring", "scrape = 1", "unknown setting 'scrape' (known: deadline, listen, lock_timeout"),
        ("monitoring", "deadline = 0", "deadline must be more than 0 seconds"),
        ("monitoring", "table_limit = -1", "table_limit must be a non-negative integer"),
        ("monitoring", "statements = 1", "statements must be true or false"),
        ("monitoring", 'listen = "9100"', 'listen must be "HOST:PORT"'),
        ("monitoring", 'listen = "localhost:70000"', 'listen must be "HOST:PORT"'),
    ],
)
def test_a_bad_setting_is_refused_naming_the_file_and_section(
    tmp_path: Path, section: str, line: str, message: str
) -> None:
    file = _config(tmp_path, f"[{section}]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert f"{file} [{section}]: {message}" in str(caught.value)
