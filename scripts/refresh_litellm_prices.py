"""Refresh the vendored LiteLLM price table from a pinned `litellm` wheel (never installed).

    .venv/bin/python scripts/refresh_litellm_prices.py 1.110.2

downloads the wheel with pip (no dependencies), copies its model price table and its licence into
libs/common/src/hydite_common/data/, and writes the version into the README beside them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "libs/common/src/hydite_common/data"
TABLE_IN_WHEEL = "litellm/model_prices_and_context_window_backup.json"
TABLE = DATA / "litellm_model_prices.json"
LICENSE = DATA / "LICENSE-litellm.txt"
README = DATA / "README.md"


def refresh(version: str) -> None:
    """Replace the table and licence with those of litellm==version."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"litellm=={version}", "--no-deps", "-d", folder],
            check=True,
        )
        wheel = next(Path(folder).glob("litellm-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            TABLE.write_bytes(archive.read(TABLE_IN_WHEEL))
            licence = next(n for n in archive.namelist() if re.search(r"\.dist-info/licenses?/LICENSE", n))
            LICENSE.write_bytes(archive.read(licence))
    text = README.read_text()
    README.write_text(re.sub(r"litellm==[0-9][^ `]*", f"litellm=={version}", text))


def main() -> None:
    """Command line: the litellm version to take the table from."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("version", help="a litellm release, e.g. 1.110.2")
    refresh(parser.parse_args().version)


if __name__ == "__main__":
    main()
