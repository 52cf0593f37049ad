"""The data plane's entry point with the database packages made unimportable, to show that the
data plane needs none of them (`python -m tests.dataplane_without_db`)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

BLOCKED = frozenset({"sqlmodel", "sqlalchemy", "psycopg", "psycopg_binary", "alembic"})


class BlockDatabasePackages(importlib.abc.MetaPathFinder):
    """Refuses every import of a database package."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """Raise for a blocked package; let the other finders handle everything else."""
        if fullname.partition(".")[0] in BLOCKED:
            raise ImportError(f"{fullname} is blocked: the data plane must not need it")
        return None


def main() -> None:
    """Block the database packages, then run the data plane."""
    sys.meta_path.insert(0, BlockDatabasePackages())
    loaded = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
    if loaded:
        raise SystemExit(f"already imported before the block: {loaded}")
    from hydite_dataplane.__main__ import main as run_dataplane

    run_dataplane()


if __name__ == "__main__":
    main()
