"""The system prompt's KV state kept on disk, on a real ChatML instruct model (SmolLM2)."""

from __future__ import annotations

from pathlib import Path

from models.config import EngineConfig
from models.events import DoneEvent, TokenEvent
from models.prefix_cache import PrefixCache
from models.runtime import LlamaEngine
from models.sampling import SamplingParams
from models.templates import ChatMessage
from tests.fixtures_models import smollm2_gguf
from tests.models.conftest import local

SYSTEM = "You answer from the user's documents only, and cite the passages you used like [1]."
GREEDY = SamplingParams(max_tokens=12, temperature=0.0, top_p=1.0, min_p=0.0, repeat_penalty=1.0)


def load(path: Path | None = None) -> LlamaEngine:
    model = local(path or smollm2_gguf())
    return LlamaEngine.load(model, EngineConfig(seed=1, n_threads=1, max_context=1024))


def ask(engine: LlamaEngine) -> tuple[str, DoneEvent]:
    prompt = engine.template.render(
        [ChatMessage("system", SYSTEM), ChatMessage("user", "What is a trace tree?")]
    )
    events = list(engine.stream(prompt, GREEDY))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    return "".join(e.text for e in events if isinstance(e, TokenEvent)), done


def state_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.kvstate"))


def test_restored_state_skips_the_system_prompt_and_answers_the_same(tmp_path: Path) -> None:
    fresh = load()
    try:
        expected, full = ask(fresh)
    finally:
        fresh.close()
    first = load()
    try:
        assert first.prime_system_prompt(SYSTEM, tmp_path) is False  # computed, then saved
    finally:
        first.close()
    assert len(state_files(tmp_path)) == 1
    second = load()
    try:
        assert second.prime_system_prompt(SYSTEM, tmp_path) is True
        text, done = ask(second)
    finally:
        second.close()
    assert text == expected
    prefix = full.usage.prompt_tokens - done.usage.prompt_tokens_evaluated
    assert prefix > 20  # the system turn came from disk
    assert done.usage.prompt_tokens_evaluated < full.usage.prompt_tokens_evaluated


def test_a_damaged_state_file_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    engine = load()
    try:
        engine.prime_system_prompt(SYSTEM, tmp_path)
        (path,) = state_files(tmp_path)
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
        assert engine.prime_system_prompt(SYSTEM, tmp_path) is False
        assert engine.prime_system_prompt(SYSTEM, tmp_path) is True  # the rebuilt file is good
        path.write_bytes(b"not a state file")
        assert engine.prime_system_prompt(SYSTEM, tmp_path) is False
    finally:
        engine.close()


def test_minicpm2_keeps_the_system_text_before_its_user_marker(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    engine = load(model_files["q4_k_m"])  # "{system}<用户>{question}<AI>"
    try:
        assert engine.prime_system_prompt(SYSTEM, tmp_path) is False
        assert engine.prime_system_prompt(SYSTEM, tmp_path) is True
    finally:
        engine.close()


def test_state_of_another_model_is_refused_by_llama_cpp(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    """A well-formed file whose payload llama.cpp rejects (another model's layers) is rebuilt."""
    other = load(model_files["chatml"])
    try:
        other.prime_system_prompt(SYSTEM, tmp_path / "other")
        foreign = other._loop.snapshot()
    finally:
        other.close()
    engine = load()
    try:
        engine.prime_system_prompt(SYSTEM, tmp_path)
        (path,) = state_files(tmp_path)
        tokens = list(engine._loop.tokens)
        PrefixCache(tmp_path).save(path.stem, tokens, foreign)
        assert engine.prime_system_prompt(SYSTEM, tmp_path) is False
        assert engine.prime_system_prompt(SYSTEM, tmp_path) is True
    finally:
        engine.close()
