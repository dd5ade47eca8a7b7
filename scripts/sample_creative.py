"""Sample creative lines from a run's final model and check them with the creative reward.

What it really does: reads a run folder's resolved config, loads `<run>/final_model` with plain
transformers on the CPU, samples a group of lines (temperature 1 and the run's response length, as
in training) for each held-out prompt of every creative-kind domain, and scores each group with
the domain's own reward exactly as a reward worker does (the fluency check, the gate, the
configured reward kind). It prints the lines with their reward and fluency verdict, and the share
of lines that read as language. Not a test; the figures go in docs/rewards.md.

    .venv/bin/python scripts/sample_creative.py runs/<run_id> --prompts 8 --samples 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from counterpoint.config import config_from_dict
from counterpoint.rollout.domains import build_domain, task_source


def sample(model, tokenizer, text: str, n: int, max_new_tokens: int, seed: int) -> list[str]:
    torch.manual_seed(seed)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(
        ids,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        max_new_tokens=max_new_tokens,
        num_return_sequences=n,
        pad_token_id=tokenizer.pad_token_id,
    )
    return [tokenizer.decode(o[ids.shape[1] :], skip_special_tokens=True) for o in out]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--prompts", type=int, default=8, help="held-out prompts per creative domain")
    parser.add_argument("--samples", type=int, default=4, help="lines per prompt (one scored group)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = config_from_dict(json.loads((args.run_dir / "config.json").read_text()))
    model_dir = args.run_dir / "final_model"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    creative = [name for name, d in cfg.domains.items() if d.kind == "creative"]
    if not creative:
        raise SystemExit(f"{args.run_dir}: the run has no creative-kind domain")
    summary = {}
    for name in creative:
        domain = build_domain(name, cfg.domains[name])
        prompts = task_source(name, cfg.domains[name], cfg.run.seed).eval_prompts()[: args.prompts]
        fluent = total = 0
        print(f"== {name}")
        for i, prompt in enumerate(prompts):
            lines = sample(
                model, tokenizer, prompt.text, args.samples, cfg.generation.max_response_tokens, args.seed + i
            )
            scores = domain.score_group(prompt, lines)
            print(f"-- {prompt.text.strip()!r}")
            for line, score in zip(lines, scores):
                ok = not score.info.get("fluency_failed", False)
                fluent, total = fluent + ok, total + 1
                verdict = "fluent" if ok else f"not fluent ({score.info.get('fluency')})"
                print(
                    f"   {score.reward:.2f}  {line.strip().splitlines()[0] if line.strip() else '(empty)'!r}  {verdict}"
                )
        summary[name] = {"lines": total, "fluent": fluent, "share": round(fluent / max(total, 1), 3)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
