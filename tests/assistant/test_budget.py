"""Context budgeting in real (here: fake-engine) tokens: evidence by rank, history windows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from assistant.budget import (
    CPU_EVIDENCE_TOKENS,
    QuestionTooLongError,
    Turn,
    evidence_bound,
    fit_evidence,
    fit_history,
    split_context,
    split_sentences,
)
from assistant.conversations import HistoryWindow, Message
from assistant.events import Source
from assistant.prompting import format_passage
from tests.assistant.fakes import fake_tokens, hit


def count(text: str) -> int:
    return len(fake_tokens(text))


def test_shares_add_up_and_the_answer_reserve_is_kept() -> None:
    budget = split_context(
        2048, answer_tokens=512, evidence_share=0.5, fixed_tokens=200, use_evidence=True
    )
    assert budget.answer == 512
    assert budget.fixed + budget.answer + budget.evidence + budget.history == 2048
    assert budget.evidence == budget.history
    plain = split_context(
        2048, answer_tokens=512, evidence_share=0.5, fixed_tokens=200, use_evidence=False
    )
    assert plain.evidence == 0 and plain.history == 2048 - 512 - 200


def test_evidence_is_bounded_on_the_cpu_and_history_gets_the_rest() -> None:
    bounded = split_context(
        8192,
        answer_tokens=512,
        evidence_share=0.5,
        fixed_tokens=200,
        use_evidence=True,
        evidence_limit=evidence_bound("auto", gpu_layers=0),
    )
    assert bounded.evidence == CPU_EVIDENCE_TOKENS
    assert bounded.fixed + bounded.answer + bounded.evidence + bounded.history == 8192
    assert evidence_bound("auto", gpu_layers=41) is None
    assert evidence_bound(2000, gpu_layers=0) == 2000


def test_a_long_question_shrinks_the_answer_reserve_before_it_is_refused() -> None:
    budget = split_context(
        1024, answer_tokens=512, evidence_share=0.5, fixed_tokens=900, use_evidence=True
    )
    assert budget.answer == 124 and budget.evidence == 0 and budget.history == 0
    with pytest.raises(QuestionTooLongError):
        split_context(
            1024, answer_tokens=512, evidence_share=0.5, fixed_tokens=1000, use_evidence=True
        )


def test_sentences_split_in_english_and_chinese() -> None:
    assert split_sentences("One. Two! Three? Four") == ["One.", "Two!", "Three?", "Four"]
    assert split_sentences("第一句。第二句！第三句") == ["第一句。", "第二句！", "第三句"]
    assert split_sentences("Version 3.5 is out. Yes.") == ["Version 3.5 is out.", "Yes."]


def test_evidence_is_taken_by_rank_and_trimmed_at_a_sentence_boundary() -> None:
    sentence = "Trace trees record hot loops in the interpreter."
    hits = [hit(1, sentence * 1), hit(2, " ".join([sentence] * 6)), hit(3, sentence)]
    first = count(format_passage(fit_evidence(hits[:1], 10_000, count)[0])) + 2
    budget = first + 40
    evidence = fit_evidence(hits, budget, count)
    assert [s.chunk_id for s in evidence] == ["chunk-1", "chunk-2"]  # the third is ranked below
    assert [s.number for s in evidence] == [1, 2]
    trimmed = evidence[1].text
    assert trimmed.endswith(".") and sentence in trimmed and trimmed != hits[1].text
    assert sum(count(format_passage(s)) + 2 for s in evidence) <= budget


def test_a_lower_ranked_passage_is_left_out_rather_than_cut_mid_sentence() -> None:
    long_sentence = " ".join(["word"] * 200) + "."
    evidence = fit_evidence([hit(1, "Short one."), hit(2, long_sentence)], 60, count)
    assert [s.text for s in evidence] == ["Short one."]


@pytest.mark.parametrize(
    "text", [" ".join(["cell"] * 200), "没有标点的长段落" * 40], ids=["table", "chinese"]
)
def test_the_best_passage_without_a_sentence_that_fits_is_cut_at_a_word(text: str) -> None:
    [source] = fit_evidence([hit(1, text), hit(2, "Short one.")], 60, count)
    assert source.text.endswith("…") and text.startswith(source.text[:-1])
    assert count(format_passage(source)) + 2 <= 60
    assert count(format_passage(source)) + 2 > 60 - 4  # as much as fits, not a token


def _turns(count_: int, evidence_words: int = 50) -> list[Turn]:
    turns = []
    for index in range(count_):
        ident = 2 * index + 1
        sent = " ".join(["evidence"] * evidence_words) + f" question {index}"
        question = Message(str(ident), "c", "user", f"question {index}", 0.0, prompt_text=sent)
        answer = Message(str(ident + 1), "c", "assistant", f"answer {index}", 0.0)
        turns.append(Turn(question, answer))
    return turns


def test_history_is_sent_as_it_was_while_it_fits() -> None:
    turns = _turns(3)
    messages, window = fit_history(turns, HistoryWindow(), 10_000, count)
    assert window == HistoryWindow()
    assert [m.content for m in messages[::2]] == [t.question.prompt_text for t in turns]


def test_overflowing_history_is_compacted_for_good_then_stable() -> None:
    turns = _turns(6)
    budget = 200
    messages, window = fit_history(turns, HistoryWindow(), budget, count)
    assert window.compact
    cost = sum(count(m.content) + 8 for m in messages)
    assert cost <= budget // 2
    assert all("evidence" not in m.content for m in messages)
    assert messages[-1].content == "answer 5"  # the newest turns survive

    more = _turns(7)
    next_messages, next_window = fit_history(more, window, budget, count)
    assert next_window == window  # unchanged window: the earlier prompt is a prefix
    assert next_messages[: len(messages)] == messages
    assert next_messages[-2].content == "question 6"  # the new turn joins in compact form


def test_compact_history_drops_its_oldest_turns_only_when_full() -> None:
    window = HistoryWindow(compact=True)
    budget = 120  # each compact turn costs 2 * (2 + 8) = 20 tokens
    starts = []
    for turn_count in range(1, 15):
        _, window = fit_history(_turns(turn_count), window, budget, count)
        starts.append(window.start)
    # The window moves rarely (drops go down to half the budget), not at every turn.
    assert len(set(starts)) <= 4
    assert starts[-1] > 1


def test_a_tiny_budget_drops_all_history() -> None:
    messages, window = fit_history(_turns(2), HistoryWindow(), 5, count)
    assert messages == []
    assert window.start > 3


def test_budget_left_over_widens_the_best_passages_with_their_neighbours() -> None:
    matched = replace(
        hit(1, "The fuel selector was set to the empty tank."),
        before="The engine lost power after takeoff.",
        after="The pilot landed in a field.",
    )
    other = replace(hit(2, "The weather was clear."), before="", after="Winds were calm.")
    plain = fit_evidence([matched, other], 10_000, count)
    assert plain[0].text == (
        "The engine lost power after takeoff. The fuel selector was set to the empty tank. "
        "The pilot landed in a field."
    )
    assert plain[1].text == "The weather was clear. Winds were calm."
    tight = count(format_passage(Source.from_hit(1, matched))) + 2
    assert fit_evidence([matched], tight, count)[0].text == matched.text  # no room: unwidened


def test_a_neighbour_already_shown_as_a_passage_is_not_added_twice() -> None:
    first = replace(hit(1, "Alpha sentence here."), after="Beta sentence here.")
    second = hit(2, "Beta sentence here.")
    sources = fit_evidence([first, second], 10_000, count)
    assert [source.text for source in sources] == ["Alpha sentence here.", "Beta sentence here."]
