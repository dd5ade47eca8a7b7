"""Build the tiny base model: train a tokenizer, then a short supervised pass on demonstrations.

RL needs headroom: the warm start stops as soon as greedy math accuracy on a held-out set reaches
the target (docs/calibration.md: learning is sudden and a fixed step count lands anywhere between 5%
and 90%), so structured accuracy starts well below 100% but above 0, while creative outputs are
still varied. Runs in one process on the CPU; takes a minute or two. The default config's model
is shipped in the package (`PREBUILT`) and copied, so every machine starts from the same weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from pathlib import Path

import torch

from counterpoint.rollout.config import KINDS
from counterpoint.rollout.domains import build_domain
from counterpoint.rollout.tasks import TaskSource
from counterpoint.trainer.batch import encode_demonstration
from counterpoint.trainer.tiny_model import EOS, build_model, cached_model_dir, train_tokenizer

log = logging.getLogger(__name__)

PREBUILT = Path(__file__).parent / "prebuilt"
"""Tiny models shipped in the package, one folder per build config (`tiny-<cache key>`), made by
`scripts/build_tiny_model.py`."""

SFT_SHARE = {"math": 0.6, "code": 0.2, "creative": 0.2}
"""Share of each SFT batch per kind: math is the hardest to learn, so it gets the most."""


def ensure_tiny_model(cfg, kinds: list[str], cache_dir: Path) -> Path:
    """The cached tiny model's folder, putting it there first if it is not there yet: the shipped
    copy when `cfg.prebuilt` and one was built from this config, else built here. `kinds`: the
    kinds of the run's domains, whose synthetic demonstrations it is trained on."""
    out = cached_model_dir(cache_dir, cfg, kinds)
    if (out / "build_info.json").exists():
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a build that crashed
    shipped = PREBUILT / out.name
    if cfg.prebuilt and shipped.is_dir():
        log.info("copying the shipped tiny model %s to %s", out.name, out)
        shutil.copytree(verified(shipped), tmp)
        info = json.loads((tmp / "build_info.json").read_text())
    else:
        log.info("building the tiny base model in %s (once; later runs reuse it)", out)
        info = build_tiny_model(cfg, kinds, tmp)
    tmp.rename(out)  # atomic: a crashed build never leaves a half model that looks complete
    log.info("tiny model ready: %s", info)
    return out


def verified(folder: Path) -> Path:
    """`folder`, once every file its SHA256SUMS lists has that digest (a damaged install fails
    here, naming the file, rather than training from corrupt weights)."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise FileNotFoundError(f"shipped model {folder} has no SHA256SUMS; reinstall counterpoint")
    for line in sums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise ValueError(
                f"shipped model file {path} is missing or does not match its SHA-256 in {sums}; reinstall "
                "counterpoint, or set model.tiny.prebuilt=false to build the model here"
            )
    return folder


def build_tiny_model(cfg, kinds: list[str], out: Path) -> dict:
    start = time.time()
    torch.manual_seed(cfg.seed)
    # One source per kind, on its synthetic suite and named by the kind, whatever the run's domains
    # are called or which suites they draw from; in the registry's order (math, code, creative), so
    # the corpus and the SFT batches, like the cache key, do not depend on the config's order.
    kinds = [k for k in KINDS if k in kinds]
    sources = {k: TaskSource(build_domain(k), seed=10_000 + cfg.seed, eval_size=64) for k in kinds}
    pools = {k: s.next_batch(4000 if k == "math" else 2000) for k, s in sources.items()}
    corpus = [p.text + demo + EOS for pool in pools.values() for p, demo in pool]
    tokenizer = train_tokenizer(corpus, cfg.vocab_size)
    model = build_model(tokenizer, cfg, cfg.seed)
    encoded = {d: [_encode(tokenizer, p.text, demo) for p, demo in pool] for d, pool in pools.items()}
    math_eval = sources["math"].eval_prompts() if "math" in sources else []
    steps, accuracy = _supervised(model, tokenizer, encoded, math_eval, cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    info = {
        "warm_start_steps": steps,
        "math_greedy_accuracy": accuracy,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.time() - start, 1),
        "kinds": kinds,
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=2))
    return info


def _encode(tokenizer, prompt: str, demo: str) -> tuple[list[int], int]:
    p, r = encode_demonstration(tokenizer, prompt, demo)
    return p + r, len(p)


def _batch(items: list[tuple[list[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), width), pad, dtype=torch.long)
    attn = torch.zeros((len(items), width), dtype=torch.long)
    loss_mask = torch.zeros((len(items), width - 1))
    for i, (seq, n_prompt) in enumerate(items):
        ids[i, : len(seq)] = torch.tensor(seq)
        attn[i, : len(seq)] = 1
        loss_mask[i, n_prompt - 1 : len(seq) - 1] = 1.0  # targets are the response tokens
    return ids, attn, loss_mask


def _supervised(model, tokenizer, encoded, math_eval, cfg) -> tuple[int, float]:
    rng = random.Random(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.warm_start_learning_rate, weight_decay=0.0)
    pad = tokenizer.pad_token_id
    accuracy, step = 0.0, 0
    for step in range(1, cfg.warm_start_max_steps + 1):
        items = []
        for d, pool in encoded.items():
            share = SFT_SHARE.get(d, 1.0 / len(encoded))
            items += rng.sample(pool, max(1, round(cfg.warm_start_batch_size * share)))
        ids, attn, loss_mask = _batch(items, pad)
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        )
        loss = (nll * loss_mask.reshape(-1)).sum() / loss_mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if math_eval and step % 50 == 0:
            accuracy = greedy_math_accuracy(model, tokenizer, math_eval)
            log.info("warm start step %d: loss %.3f, math greedy accuracy %.2f", step, loss.item(), accuracy)
            if accuracy >= cfg.warm_start_target_accuracy:
                break
    return step, accuracy


@torch.no_grad()
def greedy_math_accuracy(model, tokenizer, prompts) -> float:
    from counterpoint.rollout.tasks.math import MathDomain

    model.eval()
    tokenizer.padding_side = "left"
    enc = tokenizer([p.text for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    model.train()
    domain = MathDomain()
    return sum(domain.score_group(p, [t])[0].reward for p, t in zip(prompts, texts)) / len(prompts)
