"""The provider table is consistent, and README's provider section is what the table renders."""

from __future__ import annotations

from pathlib import Path

from hydite_common.openai_params import CHAT_PARAMS, honoured_params
from hydite_common.provider_table import README_END, README_START, ROWS, ROWS_BY_NAME, markdown_table
from hydite_common.providers import ACCEPTED_PROVIDERS, split_model

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_provider_table_matches_the_table() -> None:
    """README between the markers is exactly what `--write README.md` produces."""
    text = README.read_text(encoding="utf-8")
    section = text.split(README_START, 1)[1].split(README_END, 1)[0]
    assert section == "\n" + markdown_table(), (
        "README.md's provider table is stale: run python -m hydite_common.provider_table --write README.md"
    )


def test_every_row_is_accepted_under_each_of_its_names() -> None:
    """The control plane accepts each prefix and alias; no name is used twice."""
    names = [name for row in ROWS for name in row.names]
    assert len(names) == len(set(names)) == len(ROWS_BY_NAME)
    assert set(names) <= ACCEPTED_PROVIDERS
    assert split_model("dashscope/qwen-plus") == ("dashscope", "qwen-plus")


def test_rows_are_well_formed() -> None:
    """Every row cites its reference, has operations with absolute paths, and quirks only for them."""
    for row in ROWS:
        assert row.reference.startswith("https://"), row.name
        assert row.paths and all(path.startswith("/") for path in row.paths.values()), row.name
        assert set(row.quirks) <= set(row.paths), row.name
        assert all(set(quirks) <= set(row.paths) for _, quirks in row.model_quirks), row.name
        assert not row.api_base.endswith("/"), row.name


def test_supported_params_follow_the_row() -> None:
    """What a row says its provider does not honour is missing from /utils/supported_openai_params."""
    assert "logit_bias" not in honoured_params("groq", "chat")
    assert "seed" in honoured_params("mistral", "chat")  # sent as random_seed
    assert "logprobs" not in honoured_params("mistral", "chat")
    assert honoured_params("deepseek", "chat") == CHAT_PARAMS


def test_model_quirks_add_to_the_rows_for_matching_models() -> None:
    """A model_quirks entry is merged over the row's quirks for the models it matches only."""
    xai = ROWS_BY_NAME["xai"]
    assert xai.for_model("grok-2-1212") is xai
    mini = xai.for_model("grok-3-mini-fast").quirks_of("chat")
    assert mini.unsupported == {"presence_penalty", "frequency_penalty", "stop"}
    assert mini.accepted_values == {"reasoning_effort": ("low", "high")}
    assert xai.for_model("grok-3").quirks_of("chat").unsupported == {"reasoning_effort"}
    assert "reasoning_effort" in xai.for_model("grok-4-0709").quirks_of("chat").unsupported
    assert xai.for_model("grok-4-fast-non-reasoning").quirks_of("chat").unsupported == {"reasoning_effort"}
    assert xai.for_model("grok-4").model_quirks == ()
