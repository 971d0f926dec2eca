"""The low-level decode loop on real instruct models: the same tokens as llama-cpp-python's own
``Llama.generate``, and prompt-lookup drafts that change nothing but the number of forward passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import pytest

from models.config import EngineConfig
from models.events import DoneEvent, TokenEvent
from models.prompt_lookup import PromptLookup
from models.runtime import LlamaEngine, PieceReader, prompt_tokens
from models.sampling import SamplingParams
from models.templates import ChatMessage
from tests.fixtures_models import smollm2_gguf
from tests.models.conftest import local

PASSAGE = (
    "TraceMonkey records a trace when a loop header becomes hot. A trace tree is started at the "
    "loop header, and side exits that become hot are extended with branch traces attached to "
    "the tree. Each trace is compiled to type-specialized native code with nanojit."
)
QUESTION = [
    ChatMessage("system", "Answer only from the passage, quoting it."),
    ChatMessage(
        "user",
        f"Passage:\n> {PASSAGE}\n\nQuestion: How does TraceMonkey start a trace "
        "tree and what happens to hot side exits? Quote the passage.",
    ),
]
GREEDY = SamplingParams(
    max_tokens=40, temperature=0.0, top_k=40, top_p=1.0, min_p=0.0, repeat_penalty=1.0
)
SAMPLED = SamplingParams(
    max_tokens=32, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1
)
SETTINGS = {"seed": 5, "n_threads": 1, "max_context": 1024, "n_batch": 64}


def load(path: Path, lookup: str = "off") -> LlamaEngine:
    config = EngineConfig(prompt_lookup=lookup, **SETTINGS)  # type: ignore[arg-type]
    return LlamaEngine.load(local(path), config)


@pytest.fixture(scope="module", params=["smollm2", "demo"])
def model_path(request: pytest.FixtureRequest, demo_model_path: Path) -> Path:
    return smollm2_gguf() if request.param == "smollm2" else demo_model_path


@pytest.fixture(scope="module")
def plain(model_path: Path) -> Iterator[LlamaEngine]:
    engine = load(model_path)
    yield engine
    engine.close()


def answer(engine: LlamaEngine, params: SamplingParams) -> tuple[str, DoneEvent]:
    """A full prefill every time: a reused prefix leaves the last prompt token to a batch of its
    own, whose logits may differ in the last bits from those of a longer batch."""
    engine._loop.reset()
    events = list(engine.stream(engine.template.render(QUESTION), params))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    return "".join(e.text for e in events if isinstance(e, TokenEvent)), done


def generate_answer(engine: LlamaEngine, params: SamplingParams) -> str:
    """The same answer through llama-cpp-python's ``Llama.generate`` (the engine's former path),
    on a second context with the engine's settings."""
    llm = llama_cpp.Llama(
        model_path=str(engine.model.path),
        n_ctx=engine.n_ctx,
        n_batch=SETTINGS["n_batch"],
        n_threads=1,
        n_threads_batch=1,
        seed=SETTINGS["seed"],
        flash_attn=True,
        verbose=False,
    )
    try:
        tokens = prompt_tokens(llm, engine.template.render(QUESTION), markers=engine._markers)
        pieces = PieceReader(llm._model.vocab)
        out = b""
        generated = 0
        for token in llm.generate(
            tokens,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
        ):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                break
            out += pieces.read(token)
            generated += 1
            if generated >= params.max_tokens:
                break
        return out.decode("utf-8", errors="replace")
    finally:
        llm.close()


@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "seeded-sampling"])
def test_tokens_match_llama_generate(plain: LlamaEngine, params: SamplingParams) -> None:
    text, done = answer(plain, params)
    assert done.usage.completion_tokens > 8, text
    reference = generate_answer(plain, params)
    if done.stop_reason == "length":
        assert text == reference
    else:  # the engine also ends at the template's stop strings, hiding them
        assert reference.startswith(text) and len(reference) > len(text)


def test_seeded_sampling_repeats_itself(plain: LlamaEngine) -> None:
    first, _ = answer(plain, SAMPLED)
    again, _ = answer(plain, SAMPLED)
    assert first == again


@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "seeded-sampling"])
def test_prompt_lookup_changes_passes_not_tokens(
    plain: LlamaEngine, model_path: Path, params: SamplingParams
) -> None:
    """Every token is picked by the same sampler from the same position, so the answers are the
    very same tokens where a row's logits do not depend on the batch it is in: on the CPU for
    SmolLM2's Q4_1 weights. The demo's Q4_K_M rows differ in the last bits between a batch of
    one and of several, which flipped one seeded draw and, on an AVX-512 CPU (2026-12-01), one
    greedy near-tie between the end of the answer and one more sentence."""
    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("GPU kernels are picked by batch size; answers may differ in near-ties")
    if model_path != smollm2_gguf():
        pytest.skip("batched Q4_K_M logits differ in the last bits: a near-tie can flip")
    expected, plain_done = answer(plain, params)
    speculative = load(model_path, "on")
    try:
        text, done = answer(speculative, params)
        stats = speculative.decode_stats
    finally:
        speculative.close()
    assert text == expected
    assert done.usage.completion_tokens == plain_done.usage.completion_tokens
    if params is GREEDY and model_path == smollm2_gguf():  # the instruct model quotes
        assert stats.accepted > 0
        assert stats.forward_passes < done.usage.completion_tokens - 1


def test_stopping_mid_draft_leaves_the_cache_sound(model_path: Path) -> None:
    """A caller that stops inside a confirmed draft must not leave unconfirmed keys behind.

    Compared with a fresh engine drafting the same way: plain decoding's batches of one may
    differ from verified drafts in the last bits (see the test above)."""
    fresh = load(model_path, "on")
    try:
        expected, _ = answer(fresh, GREEDY)
    finally:
        fresh.close()
    speculative = load(model_path, "on")
    try:
        stream = speculative.stream(speculative.template.render(QUESTION), GREEDY)
        for _, _event in zip(range(5), stream, strict=False):
            pass
        stream.close()
        prompt = speculative.template.render(QUESTION)
        prompt_length = len(prompt_tokens(speculative._llm, prompt, markers=speculative._markers))
        assert len(speculative._loop.tokens) <= prompt_length + 5
        text, _ = answer(speculative, GREEDY)
    finally:
        speculative.close()
    assert text == expected


def test_lookup_drafts_what_followed_the_longest_match() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 9, 2, 3, 7, 8], draft_tokens=3)
    for token in (2, 3):
        lookup.append(token)
    assert lookup.draft(10) == [7, 8, 2]  # "2 3" last seen before "7 8"; the 2 after it
    lookup.append(4)
    assert lookup.draft(10) == [5, 9, 2]  # the trigram "2 3 4" matches the prompt's start
    assert lookup.draft(1) == [5]
    assert PromptLookup([1, 2], draft_tokens=4).draft(4) == []  # "2" was never followed
