"""Two control-plane replicas started at the same moment against a fresh database: both become
ready, the schema is at head, and each migration ran exactly once (one replica ran them under the
advisory lock; the other found nothing to do)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic.script import ScriptDirectory

from hydite_common.devstack import Stack, StackConfig, free_port
from hydite_common.settings import to_libpq_url, with_database_name
from hydite_controlplane.migrations.runner import alembic_config

FAILURE_MARKS = ("DuplicateObject", "DuplicateTable", "already exists", "Traceback", "UniqueViolation")


def test_two_replicas_starting_together_migrate_once(tmp_path: Path) -> None:
    """Both replicas answer ready; alembic_version holds the one head; every revision's upgrade was
    run once across the two logs, and neither log shows a duplicate-object error."""
    race = Stack(StackConfig.ephemeral(tmp_path))
    try:
        race.start_dependencies()
        replicas = [
            race.spawn(
                f"controlplane-race-{i}",
                "hydite_controlplane",
                port,
                wait=False,
                HYDITE_ADMIN_PORT=str(port),
                HYDITE_GRPC_PORT=str(free_port()),
                HYDITE_LOG_LEVEL="INFO",
            )
            for i, port in enumerate((free_port(), free_port()))
        ]
        for replica in replicas:
            race.wait_ready(replica)
        assert race.postgres is not None
        url = with_database_name(to_libpq_url(race.postgres.url), race.config.database_name)
        with psycopg.connect(url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
        scripts = ScriptDirectory.from_config(alembic_config(""))
        assert versions == [scripts.get_current_head()]
        logs = [replica.log_tail(lines=100_000) for replica in replicas]
        for log in logs:
            assert not [mark for mark in FAILURE_MARKS if mark in log], log[-3000:]
        revisions = [script.revision for script in scripts.walk_revisions()]
        runs = {revision: sum(log.count(f"-> {revision},") for log in logs) for revision in revisions}
        assert runs == dict.fromkeys(revisions, 1), runs
    finally:
        race.remove()
