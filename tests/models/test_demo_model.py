"""Integration: the offline demo model (Gemma 3 270M base, from PyPI) answers a simple question.

It is a base model, so the prompt is a completion-style transcript and only loose, real
properties are checked: it produces text, stops on its own or at the limit, and the usage adds up.
"""

from __future__ import annotations

from pathlib import Path

import llama_cpp

from models.catalog import DEMO_ENTRY
from models.events import DoneEvent, TokenEvent
from models.llama_logs import route_llama_logs
from models.runtime import LlamaEngine, PieceReader
from models.templates import ChatMessage, CompletionTemplate


def test_demo_model_answers_a_completion_style_question(demo_engine: LlamaEngine) -> None:
    assert demo_engine.model.is_demo and not demo_engine.model.is_minicpm
    assert isinstance(demo_engine.template, CompletionTemplate)
    assert demo_engine.offload.total_layers == 19
    prompt = demo_engine.template.render(
        [
            ChatMessage("system", "Short factual answers."),
            ChatMessage("user", "What is the capital of France?"),
        ]
    )
    assert prompt.endswith("Question: What is the capital of France?\nAnswer:")
    params = demo_engine.default_sampling.with_overrides(max_tokens=24)
    events = list(demo_engine.stream(prompt, params))
    text = "".join(event.text for event in events if isinstance(event, TokenEvent))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert text.strip(), "the demo model produced no text"
    assert "\n\n" not in text and "Question:" not in text  # template stop strings held back
    assert done.stop_reason in ("stop", "length")
    assert 1 <= done.usage.completion_tokens <= 24
    assert done.usage.prompt_tokens == demo_engine.count_tokens(prompt) + 1
    assert done.usage.prompt_tokens_evaluated == done.usage.prompt_tokens
    assert done.timings.prefill_tok_s > 0


def test_demo_engine_uses_the_catalog_sampling(demo_engine: LlamaEngine) -> None:
    assert demo_engine.model.entry == DEMO_ENTRY
    assert demo_engine.default_sampling.temperature == DEMO_ENTRY.sampling.temperature
    assert demo_engine.default_sampling.stop == CompletionTemplate.stop


def test_long_token_pieces_are_not_dropped(demo_model_path: Path) -> None:
    """Gemma's vocabulary has Bengali and Hindi words longer than 32 bytes; none may vanish."""
    route_llama_logs()
    vocab_only = llama_cpp.Llama(model_path=str(demo_model_path), vocab_only=True, verbose=False)
    text = " পাকিস্তানের প্রধানমন্ত্রী मुख्यमंत्री"
    tokens = vocab_only.tokenize(text.encode(), add_bos=False)
    reader = PieceReader(vocab_only._model.vocab)
    pieces = [reader.read(token) for token in tokens]
    vocab_only.close()
    assert max(len(piece) for piece in pieces) > 32  # the case that used to be dropped
    assert b"".join(pieces).decode() == text
