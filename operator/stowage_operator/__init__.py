"""The Stowage operator: kopf turns Region and Tenant resources into databases and workers.

For each Tenant it provisions a database and a role on its Region's
PostgreSQL, runs the worker's migrations, applies the worker's Deployment,
Service, NetworkPolicy, PodDisruptionBudget and policy ConfigMap and the
backup and drill CronJobs, and reports conditions, the worker endpoint and
what the backup Jobs ended with in the Tenant's status (and as metrics). It
never serves traffic and never logs a password.

Layers: ``_cli``/``_handlers`` (entry points: argparse, kopf) → ``_reconcile``
(the service: what a Tenant needs, in order) → its collaborators, one concern
each: ``_tenant_database`` (Secret, database, role, migrations),
``_worker_objects`` (the worker's objects and policy ConfigMap),
``_backup_schedule`` (CronJobs, scratch database, ``status.backup``),
``_status`` (conditions and Ready) → ``_regions`` (Region, admin credentials,
health) and ``_applying`` (apply/delete through the owned-object cache) →
``_recent``, ``_backup_jobs`` (the backup Jobs and pods), ``_owned`` (the
objects the operator applied) and ``_worker_pods`` (the workers' restarts and
last exits, as metrics), kept by ``_watches`` →
``_kube``/``_postgres`` (adapters).
``_types``, ``_naming``, ``_manifests``, ``_backups``, ``_backup_status``,
``_spec`` and ``_conditions`` are plain values and functions: no I/O there.
"""

from stowage_operator._errors import OperatorError, PermanentError, TemporaryError
from stowage_operator._handlers import build_registry, kopf_settings
from stowage_operator._run import run_operator
from stowage_operator._settings import OperatorSettings

__all__ = [
    "OperatorError",
    "OperatorSettings",
    "PermanentError",
    "TemporaryError",
    "build_registry",
    "kopf_settings",
    "run_operator",
]
