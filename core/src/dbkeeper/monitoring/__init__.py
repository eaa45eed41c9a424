"""Monitoring: scrapes of databases as metrics (``dbkeeper metrics``), health checks, maintenance.

::

    from dbkeeper.monitoring import monitor_database

    metrics = monitor_database("app")          # a name from dbkeeper.toml, or a URL
    print(metrics.up, [s.name for s in metrics.samples()])

:class:`DatabaseMonitor` scrapes the connections of a configuration, one or all;
:class:`DatabaseMetrics` is one scrape's result. :func:`check_health` gives a
:class:`HealthReport`; :func:`optimize_database` plans (and applies) maintenance, an
:class:`OptimizeReport`. ``dbkeeper.monitoring.prometheus`` turns
scrapes into the Prometheus text format, ``dbkeeper.monitoring.server`` serves them.
"""

from dbkeeper.monitoring.health import HealthReport, check_health
from dbkeeper.monitoring.optimize import OptimizeReport, StepResult, optimize_database
from dbkeeper.monitoring.scrape import DatabaseMetrics, DatabaseMonitor, monitor_database

__all__ = [
    "DatabaseMetrics",
    "DatabaseMonitor",
    "HealthReport",
    "OptimizeReport",
    "StepResult",
    "check_health",
    "monitor_database",
    "optimize_database",
]
