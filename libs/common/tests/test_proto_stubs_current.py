"""The checked-in protobuf stubs are exactly what `make proto` generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = ROOT / "libs" / "common" / "src"


def _load_generator() -> object:
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_stubs_match_checked_in(tmp_path: Path) -> None:
    """Regenerating every proto into a temp dir gives byte-identical files."""
    generator = _load_generator()
    generator.generate(tmp_path)  # type: ignore[attr-defined]
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated, "no stubs generated"
    for relative in generated:
        checked_in = CHECKED_IN / relative
        assert checked_in.exists(), f"{relative} is not checked in; run `make proto`"
        assert checked_in.read_bytes() == (tmp_path / relative).read_bytes(), (
            f"{relative} is stale; run `make proto`"
        )
