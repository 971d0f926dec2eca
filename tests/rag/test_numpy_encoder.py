"""The torch-free query path gives sentence-transformers' vectors and the same search results.

Everything runs the real models: the bundled MiniLM, the tiny BERT of the embedding-switch tests,
sentence-transformers as the reference, PDFs of the shared corpus as text and as a library.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import rag.embedder
from rag.embedder import Embedder, resolve_model
from rag.library import Library
from rag.loaders import load_document
from rag.numpy_encoder import load_encoder
from tests.fixtures_embedders import tiny_embedder

REPO_ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
"""Largest difference allowed per vector component (both sides are float32 unit vectors)."""
QUESTIONS = (
    "How does TraceMonkey start a trace tree?",
    "what happens at a side exit",
    "type-specialized native code for hot loops",
    "Who wrote Free Culture?",
    "the crazy ones, the misfits, the rebels",
    "an outline with sections and subsections",
    "form fields in a PDF made with pdflatex",
)


def _corpus_texts(pdf_corpus: Path) -> list[str]:
    """Real passages of every length: whole pages (past the 256-token limit), lines, words."""
    texts: list[str] = []
    for name in ("tracemonkey.pdf", "habibi.pdf", "pdflatex-outline.pdf"):
        pages = [page.text for page in load_document(pdf_corpus / "clean" / name).pages]
        texts += pages[:3]
        texts += [line for page in pages[:2] for line in page.splitlines() if line.strip()][:15]
    return texts + ["  padded with spaces  ", "", "東京の天気は晴れです", "naïve café — ﬁne"]


@pytest.fixture(scope="module")
def reference() -> Callable[[str, list[str]], np.ndarray]:
    """sentence-transformers' own vectors for a model folder."""
    from sentence_transformers import SentenceTransformer

    models: dict[str, SentenceTransformer] = {}

    def encode(folder: str, texts: list[str]) -> np.ndarray:
        model = models.setdefault(folder, SentenceTransformer(folder, device="cpu"))
        return np.asarray(model.encode(texts, normalize_embeddings=True, batch_size=8))

    return encode


def test_bundled_model_vectors_match_sentence_transformers(
    pdf_corpus: Path, reference: Callable[[str, list[str]], np.ndarray]
) -> None:
    folder = resolve_model("all-MiniLM-L6-v2")
    encoder = load_encoder(Path(folder))
    assert encoder is not None
    texts = _corpus_texts(pdf_corpus)
    ours = encoder.encode(texts)
    theirs = reference(folder, texts)
    assert ours.shape == theirs.shape == (len(texts), 384)
    assert float(np.abs(ours - theirs).max()) < TOLERANCE


def test_another_bert_model_matches_too(
    tmp_path: Path, pdf_corpus: Path, reference: Callable[[str, list[str]], np.ndarray]
) -> None:
    folder = tiny_embedder(tmp_path / "tiny")
    encoder = load_encoder(folder)
    assert encoder is not None
    texts = _corpus_texts(pdf_corpus)[:12]
    assert float(np.abs(encoder.encode(texts) - reference(str(folder), texts)).max()) < TOLERANCE


def _tiny_xlm_roberta(folder: Path, texts: list[str]) -> Path:
    """An XLM-RoBERTa encoder (positions after the padding id, a SentencePiece Unigram
    tokenizer trained on ``texts``, CLS pooling): the layout of bge-m3 and of e5's tokenizer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import (  # type: ignore[attr-defined]  # exported lazily
        XLMRobertaConfig,
        XLMRobertaModel,
        XLMRobertaTokenizerFast,
    )

    specials = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>"}
    specials |= {"unk_token": "<unk>", "mask_token": "<mask>", "cls_token": "<s>"}
    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(
        texts,
        vocab_size=300,
        special_tokens=list(dict.fromkeys(specials.values())),
        unk_token="<unk>",
    )
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=unigram._tokenizer, sep_token="</s>", **specials
    )
    torch.manual_seed(3)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
    )
    base = folder.with_name(folder.name + "-base")
    XLMRobertaModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    modules = [Transformer(str(base), max_seq_length=128), Pooling(32, pooling_mode="cls")]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


def test_an_xlm_roberta_model_matches_too(
    tmp_path: Path, pdf_corpus: Path, reference: Callable[[str, list[str]], np.ndarray]
) -> None:
    texts = _corpus_texts(pdf_corpus)
    folder = _tiny_xlm_roberta(tmp_path / "xlmr", texts)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "xlm-roberta"
    encoder = load_encoder(folder)
    assert encoder is not None
    sample = texts[:6] + texts[-4:]  # whole pages (truncated at 128) and short lines
    assert float(np.abs(encoder.encode(sample) - reference(str(folder), sample)).max()) < TOLERANCE


def test_chunking_offsets_match_the_transformers_tokenizer(
    tmp_path: Path, pdf_corpus: Path
) -> None:
    from transformers import AutoTokenizer

    texts = _corpus_texts(pdf_corpus)
    for folder in (
        resolve_model("all-MiniLM-L6-v2"),
        str(_tiny_xlm_roberta(tmp_path / "x", texts)),
    ):
        expected = AutoTokenizer.from_pretrained(folder)(
            texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        ours = Embedder(folder).token_offsets(texts)
        assert ours == [[(int(a), int(b)) for a, b in spans] for spans in expected], folder
        assert max(len(spans) for spans in ours) > 256  # a whole page: chunking truncates nothing


def test_a_layout_it_does_not_reproduce_is_left_to_sentence_transformers(tmp_path: Path) -> None:
    folder = tiny_embedder(tmp_path / "tiny")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    embedder = Embedder(str(folder))
    assert load_encoder(folder) is None and embedder.query_encoder is None
    assert embedder.embed_query("still embedded").shape == (32,)
    assert load_encoder(tmp_path / "no-such-model") is None


def test_search_results_are_those_of_the_sentence_transformers_path(
    make_library: Callable[..., Library],
    pdf_corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library = make_library()
    names = ("tracemonkey.pdf", "crazyones-pdfa.pdf", "pdflatex-outline.pdf", "pdflatex-forms.pdf")
    library.ingest([pdf_corpus / "clean" / name for name in names])
    ours = {question: library.search(question, k=5) for question in QUESTIONS}

    monkeypatch.setattr(rag.embedder, "load_encoder", lambda folder: None)
    torch_queries = Embedder("all-MiniLM-L6-v2")
    assert torch_queries.query_encoder is None
    library.use_embedder(torch_queries)
    for question, hits in ours.items():
        theirs = library.search(question, k=5)
        assert [hit.chunk_id for hit in hits] == [hit.chunk_id for hit in theirs], question
        assert [hit.score for hit in hits] == pytest.approx([hit.score for hit in theirs], abs=1e-5)


def test_search_from_the_command_line_imports_no_torch(tmp_path: Path, pdf_corpus: Path) -> None:
    """The point of the NumPy path: a one-shot search never pays for torch's import."""
    home = tmp_path / "home"
    script = (
        "import sys\n"
        "from assistant.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    ingest = ["--home", str(home), "ingest", str(pdf_corpus / "clean" / "pdflatex-outline.pdf")]
    subprocess.run([sys.executable, "-m", "assistant", *ingest], check=True, capture_output=True)
    search = ["--home", str(home), "search", "sections and subsections", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", script, *search], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert "HEAVY [] 0" in done.stderr, done.stderr
    assert json.loads(done.stdout)[0]["file"].endswith("pdflatex-outline.pdf")
