"""An answer is never empty because the model ended it at once: until its first word, the end
of generation is not drawn (real SmolLM2-135M-Instruct, greedy, so the premise is checked)."""

from __future__ import annotations

import llama_cpp
import numpy as np
import pytest

from models.config import EngineConfig
from models.events import DoneEvent, TokenEvent
from models.runtime import LlamaEngine, prompt_tokens
from models.sampling import SamplingParams
from models.templates import Content, Prompt
from tests.fixtures_models import smollm2_gguf
from tests.models.conftest import local

FINISHED_TURN = Prompt(
    [
        "<|im_start|>user\n",
        Content("Say hello."),
        "<|im_end|>\n<|im_start|>assistant\n",
        Content("Hello! How can I help you today?"),
    ]
)
"""An assistant turn already written out: the model's likeliest next token ends it."""


def likeliest_next_token_ends(prompt: Prompt) -> bool:
    llm = llama_cpp.Llama(str(smollm2_gguf()), n_ctx=256, logits_all=False, verbose=False)
    try:
        llm.eval(prompt_tokens(llm, prompt))
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))
    finally:
        llm.close()


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=0.0, repeat_penalty=1.0, max_tokens=12),  # argmax, no chain
        SamplingParams(temperature=0.0, repeat_penalty=1.1, max_tokens=12),  # llama.cpp's chain
    ],
    ids=["argmax", "chain"],
)
def test_an_answer_the_model_would_end_at_once_still_has_words(params: SamplingParams) -> None:
    assert likeliest_next_token_ends(FINISHED_TURN), "the premise: greedy decoding would end here"
    engine = LlamaEngine.load(local(smollm2_gguf()), EngineConfig(max_context=512))
    try:
        events = list(engine.stream(FINISHED_TURN, params))
    finally:
        engine.close()
    text = "".join(event.text for event in events if isinstance(event, TokenEvent))
    assert text.strip(), "the answer has words"
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.usage.completion_tokens >= 1
