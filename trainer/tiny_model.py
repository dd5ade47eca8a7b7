"""The built-in tiny model: a byte-level BPE tokenizer trained here and a small Qwen2.

Built once from the synthetic domains' demonstrations, warm-started by a short supervised pass
(`warm_start.py`) and cached under the model cache folder keyed by a hash of everything that
shapes it, so later runs reuse it. Nothing is fetched from a model hub.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

EOS = "<|endoftext|>"
BUILD_VERSION = 1
"""Bump when the corpus, tokenizer or warm-start recipe changes, to invalidate cached models."""


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with digits split one per token (arithmetic is learnable per digit)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=EOS)


def build_model(tokenizer, cfg, seed: int):
    """A fresh Qwen2 causal LM sized by `cfg` (a TinyModelConfig)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    eos = tokenizer.convert_tokens_to_ids(EOS)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.hidden_size * 4,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        torch_dtype="float32",
    )
    return Qwen2ForCausalLM(config)


def cache_key(cfg, kinds: list[str]) -> str:
    # The key is still spelled "domains": for the default run (kinds = names) the hash, and so the
    # cached model, stays the same as when the tiny model was built from domain names.
    # `prebuilt` says where the weights come from, not what they are: it is not part of the key
    # (so a shipped model is found under the key it was built with).
    shape = cfg.model_dump(mode="json", exclude={"prebuilt"})
    payload = json.dumps({"v": BUILD_VERSION, "cfg": shape, "domains": sorted(kinds)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def model_name(cfg, kinds: list[str]) -> str:
    """The folder name of the model `cfg` builds: a model built here with `prebuilt: false` is
    cached apart from a shipped copy of the same key, so turning `prebuilt` off really rebuilds."""
    return f"tiny-{cache_key(cfg, kinds)}" + ("" if cfg.prebuilt else "-local")


def cached_model_dir(cache_dir: Path, cfg, kinds: list[str]) -> Path:
    return cache_dir.expanduser() / "models" / model_name(cfg, kinds)
