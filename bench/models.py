"""Build the benchmark's two models and its prompt set from a fixed recipe (project venv).

    python bench/models.py [--out DIR]      # default ~/.cache/counterpoint/bench

DIR/small, DIR/medium: Hugging Face model folders (random-init fp32 Qwen2, untied embeddings,
vocab 512) sharing one byte-level BPE tokenizer; DIR/prompts.jsonl (train prompts) and
DIR/eval.jsonl (the few held-out rows Counterpoint's start and end evaluations read). Both
systems load these very folders, so they train byte-identical models. Idempotent: DIR/recipe.json
holds the recipe's hash, and a folder built from the same recipe is left as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from pathlib import Path

DEFAULT_OUT = Path("~/.cache/counterpoint/bench")
EOS, PAD = "<|endoftext|>", "<|pad|>"
RECIPE_VERSION = 1
"""Bump when anything below changes what is built."""

MODELS = {
    "small": {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },  # fmt: skip
    "medium": {
        "hidden_size": 512,
        "intermediate_size": 1536,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
    },  # fmt: skip
}
VOCAB = 512
MAX_POSITIONS = 256
TOKENIZER_TEXTS, TOKENIZER_SEED = 5000, 0
PROMPTS, PROMPT_SEED = 2000, 1
EVAL_PROMPTS, EVAL_SEED = 4, 2


def recipe() -> dict:
    import tokenizers
    import torch
    import transformers

    return {
        "version": RECIPE_VERSION,
        "models": MODELS,
        "vocab": VOCAB,
        "max_position_embeddings": MAX_POSITIONS,
        "tokenizer": {"texts": TOKENIZER_TEXTS, "seed": TOKENIZER_SEED, "special": [EOS, PAD]},
        "prompts": {"train": [PROMPTS, PROMPT_SEED], "eval": [EVAL_PROMPTS, EVAL_SEED]},
        "init_seed": 0,
        # the random init's bytes depend on these
        "libraries": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
    }


def recipe_hash(r: dict) -> str:
    return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:16]


def tokenizer_corpus() -> list[str]:
    rng = random.Random(TOKENIZER_SEED)
    texts = []
    for _ in range(TOKENIZER_TEXTS):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        texts.append(f"Q: {a}+{b}= A: {a + b}")
    return texts


def train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=[EOS, PAD],  # ids 0 and 1
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(), trainer)
    assert tok.token_to_id(EOS) == 0 and tok.token_to_id(PAD) == 1, "special token ids"
    assert tok.get_vocab_size() == VOCAB, f"tokenizer vocab {tok.get_vocab_size()} != {VOCAB}"
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD)


def build_model(shape: dict):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=VOCAB,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
        dtype="float32",
        **shape,
    )
    return Qwen2ForCausalLM(config).to(torch.float32)


def prompt_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        rows.append({"prompt": f"Q: {a}+{b}= A:", "answer": a + b, "a": a, "b": b})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def build(out: Path = DEFAULT_OUT, quiet: bool = False) -> dict:
    """Build (or reuse) everything under `out`; returns the recipe file's content."""
    out = out.expanduser().resolve()
    r = recipe()
    key = recipe_hash(r)
    recipe_file = out / "recipe.json"
    if recipe_file.is_file():
        done = json.loads(recipe_file.read_text())
        if done.get("hash") == key and all((out / name / "model.safetensors").is_file() for name in MODELS):
            if not quiet:
                for name, info in done["built"].items():
                    print(f"models: {name} already built ({info['parameters']:,} params) in {out / name}")
            return done
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    built = {}
    for name, shape in MODELS.items():
        model = build_model(shape)
        params = sum(p.numel() for p in model.parameters())
        embedding = model.get_input_embeddings().weight.numel()
        target, tmp = out / name, out / f"{name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        info = {"parameters": params, "input_embedding_parameters": embedding, "recipe_hash": key, "shape": shape}
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        built[name] = info
        print(f"models: built {name}: {params:,} params ({params / 1e6:.2f}M) in {target}")
    write_jsonl(out / "prompts.jsonl", prompt_rows(PROMPTS, PROMPT_SEED))
    write_jsonl(out / "eval.jsonl", prompt_rows(EVAL_PROMPTS, EVAL_SEED))
    done = {"hash": key, "recipe": r, "built": built}
    recipe_file.write_text(json.dumps(done, indent=2))
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to build into (default %(default)s)")
    args = ap.parse_args()
    build(args.out)


if __name__ == "__main__":
    main()
