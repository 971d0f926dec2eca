"""The catalog's facts (trained context apart from a guide's default cap, sources, thinking)
and what `models info` says about a GGUF's thinking mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from models.catalog import CATALOG, find_entry
from tests.fixtures_models import CHATML_PIECES, MINICPM_CHATML_TEMPLATE, build_minicpm_gguf
from tests.models.test_thinking import THINKING_JINJA


def test_trained_context_is_the_model_cards_and_the_guide_cap_is_separate() -> None:
    expected = {
        "minicpm5-1b": (131_072, 8192),
        "minicpm5-2b": (131_072, None),
        "minicpm4.1-8b": (65_536, 4096),
        "minicpm4-8b": (32_768, 8192),
    }
    for name, (trained, cap) in expected.items():
        entry = find_entry(name)
        assert entry is not None
        assert (entry.trained_context, entry.default_context_cap) == (trained, cap)
        assert cap is None or cap <= trained


def test_only_the_hybrid_reasoning_families_can_think() -> None:
    thinkers = {entry.name for entry in CATALOG if entry.can_think}
    assert thinkers == {"minicpm5-1b", "minicpm5-2b", "minicpm4.1-8b"}
    minicpm41 = find_entry("minicpm4.1-8b")
    assert minicpm41 is not None and minicpm41.thinking_sampling is not None
    thinking = minicpm41.thinking_sampling
    assert (thinking.temperature, thinking.top_p) == (0.6, 0.95)


def test_every_entry_names_its_sources_and_pins_what_it_publishes() -> None:
    for entry in CATALOG:
        assert entry.verified_from, entry.name
        if entry.sha256 is not None:
            assert len(entry.sha256) == 64 and entry.size_exact, entry.name
            assert "sha256" not in entry.unverified
    newest = find_entry("MiniCPM5-2B-Q4_K_M.gguf")
    assert newest is not None and newest.pinned and newest.size_bytes == 1_561_318_368


def test_models_list_shows_what_could_not_be_verified(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "minicpm5-2b" in out and "can think" in out
    block = out[out.index("  minicpm4-8b\n") :]
    block = block[: block.index("  minicpm3-4b\n")]
    assert "Unverified:" in block and "hf_file" in block and "Not pinned:" in block
    assert "Pinned:       sha256 ec2d58016400…, Hugging Face commit 2079a22f3bea" in out


def test_models_info_says_whether_a_gguf_can_think(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    thinking = build_minicpm_gguf(
        tmp_path / "thinks.gguf",
        chat_template=THINKING_JINJA,
        control_pieces=CHATML_PIECES,
    )
    plain = build_minicpm_gguf(
        tmp_path / "plain.gguf",
        chat_template=MINICPM_CHATML_TEMPLATE,
        control_pieces=CHATML_PIECES,
    )
    for path, can_think in ((thinking, True), (plain, False)):
        assert main(["models", "info", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["can_think"] is can_think
    assert main(["models", "info", str(thinking)]) == 0
    assert "Thinking mode       yes (ask --think)" in capsys.readouterr().out
