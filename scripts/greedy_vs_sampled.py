"""Greedy against sampled held-out math accuracy of finished runs, at the start and at the end.

What it measures: for each run folder, the run's own held-out split of a math domain (drawn by the
project's `task_source` from `run.seed`, `domains.<d>.eval.prompts` prompts, rendered and tokenized
as the rollout engine does), decoded by two models with plain transformers on the CPU: the model
the run started from (`model` section of its config, read from the model cache, never built here)
and `<run>/final_model`. Each is decoded twice, with the run's response length limit and EOS:
greedily (one argmax response per prompt) and by sampling as the run's evals do
(`eval.samples_per_prompt` responses at `eval.temperature`, top_p 1, no top_k; mean correctness is
pass@1), and every response is scored by the domain's own reward (`score_group`, math-verify).

Why: the run's evals sample, so its accuracy curve mixes what the policy knows with how peaked
its distribution is. RL sharpens the distribution, which raises sampled accuracy even where the
most likely answer gets no better; a greedy fall beside a sampled rise says the run bought its
figure by sharpening, not by learning the answers. The run's own recorded figures (first and last
eval, vLLM) are printed beside the sampled ones: the two are independent draws of one figure on
the same prompts, so they differ by sampling noise (the ± is one standard error of a sampled
figure; two draws differ by about 1.4 times it), not by method. Greedy figures have no noise.

    .venv/bin/python scripts/greedy_vs_sampled.py /tmp/stale/runs/staleness0-seed0 ...
"""

from __future__ import annotations

import argparse
import json
import statistics
from itertools import groupby
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from counterpoint.config import config_from_dict
from counterpoint.rollout.config import KINDS
from counterpoint.rollout.domains import build_domain, kinds_of, task_source
from counterpoint.trainer.chat import prompt_counter, rendered_sources
from counterpoint.trainer.models import resolve_model
from counterpoint.trainer.sampling import engine_options, fits, prompt_limit, sampling_key
from counterpoint.trainer.tiny_model import cached_model_dir


def start_model(cfg) -> Path:
    """The folder of the model the run started from; a tiny model that is not cached stops here
    rather than being built (a build would take minutes and might not be the run's model)."""
    if cfg.model.source == "tiny":
        kinds = [k for k in kinds_of(cfg.domains) if k in KINDS]
        folder = cached_model_dir(Path(cfg.model.cache_dir), cfg.model.tiny, kinds)
        if not (folder / "build_info.json").exists():
            raise SystemExit(f"the run's start model {folder} is not in the cache; this script does not build it")
    return resolve_model(cfg.model, kinds_of(cfg.domains))


def held_out(cfg, domain: str, tokenizer, model_dir: Path) -> list[tuple]:
    """(prompt, token ids) of the domain's held-out split, as the run's engine gets them: through
    the chat template when one is applied, raw text otherwise, over-long prompts skipped."""
    source = rendered_sources(
        {domain: task_source(domain, cfg.domains[domain], cfg.run.seed)}, tokenizer, cfg.model.chat_template
    )[domain]
    positions = json.loads((model_dir / "config.json").read_text()).get("max_position_embeddings", 2048)
    limit = prompt_limit(cfg, domain, min(positions, sum(cfg.max_tokens())))
    prompts = [p for p in source.eval_prompts() if fits(prompt_counter(tokenizer), limit, p)]
    # as `RolloutEngine._input`: a rendered prompt without special tokens, raw text with the defaults
    ids = [tokenizer(p.rendered, add_special_tokens=False) if p.rendered else tokenizer(p.text) for p in prompts]
    return [(p, i["input_ids"]) for p, i in zip(prompts, ids)]


@torch.no_grad()
def responses(model, tokenizer, encoded: list[tuple], n: int, temperature: float | None, max_tokens: int) -> list:
    """`n` decoded responses per prompt (temperature None: one greedy response). Prompts of one
    length go in one batch, so nothing is padded and no pad token can change a result."""
    sampling = {"do_sample": False}
    if temperature is not None:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
    out: dict[int, list[str]] = {}
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][1]))
    for length, group in groupby(order, key=lambda i: len(encoded[i][1])):
        group = list(group)
        ids = torch.tensor([encoded[i][1] for i in group])
        generated = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_tokens,
            pad_token_id=tokenizer.pad_token_id,
            num_return_sequences=n,
            **sampling,
        )
        texts = tokenizer.batch_decode(generated[:, length:], skip_special_tokens=True)  # as the engine decodes
        for k, i in enumerate(group):
            out[i] = texts[k * n : (k + 1) * n]
    return [out[i] for i in range(len(encoded))]


def accuracy(scorer, encoded: list[tuple], texts: list[list[str]]) -> tuple[float, float | None]:
    """Mean correctness over all responses, and its sampling standard error on these prompts (None
    for one response per prompt: argmax decoding has no noise); each prompt's mean of n responses
    has variance p(1-p)/n, estimated without bias by m(1-m)/(n-1)."""
    means = [statistics.mean(s.correct for s in scorer.score_group(p, t)) for (p, _), t in zip(encoded, texts)]
    n = len(texts[0])
    se = None if n == 1 else sum(m * (1 - m) / (n - 1) for m in means) ** 0.5 / len(means)
    return statistics.mean(means), se


def recorded(run_dir: Path, domain: str) -> list[tuple[int, float]]:
    """(step, accuracy) of the run's first and last eval records."""
    evals = [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    return [(r["step"], r["domains"][domain]["accuracy"]) for r in (evals[0], evals[-1])]


def _cell(value: float, se: float | None) -> str:
    return f"{value:8.3f}" + (f" ±{se:.3f}" if se is not None else " " * 6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--domain", default="math", help="a math-kind domain of the runs")
    parser.add_argument("--seed", type=int, default=0, help="torch seed set before each model's sampling")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    verdicts = []
    for run_dir in args.run_dirs:
        cfg = config_from_dict(json.loads((run_dir / "config.json").read_text()))
        options = engine_options(sampling_key(cfg, args.domain))
        max_tokens = options.pop("max_tokens")
        if options:
            raise SystemExit(f"{run_dir}: domains.{args.domain}.sampling sets {sorted(options)}; not supported here")
        spec, scorer = cfg.domains[args.domain].eval, build_domain(args.domain, cfg.domains[args.domain])
        figures = {}
        for side, model_dir in (("start", start_model(cfg)), ("end", run_dir / "final_model")):
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
            encoded = held_out(cfg, args.domain, tokenizer, model_dir)
            greedy = accuracy(scorer, encoded, responses(model, tokenizer, encoded, 1, None, max_tokens))
            torch.manual_seed(args.seed)
            sampled_texts = responses(model, tokenizer, encoded, spec.samples_per_prompt, spec.temperature, max_tokens)
            figures[side] = {"model": model_dir, "greedy": greedy, "sampled": accuracy(scorer, encoded, sampled_texts)}
        (first_step, first), (last_step, last) = recorded(run_dir, args.domain)
        start, end = figures["start"], figures["end"]
        print(
            f"== {run_dir.name}: {args.domain}, {len(encoded)} held-out prompts (run.seed {cfg.run.seed}), "
            f"responses up to {max_tokens} tokens"
        )
        print(f"   start {start['model']}\n   end   {end['model']}")
        print(f"   {'':34}{'start':>14}{'end':>14}{'change':>9}")
        rows = [
            ("greedy (argmax, 1 per prompt)", start["greedy"], end["greedy"]),
            (
                f"sampled ({spec.samples_per_prompt} at T={spec.temperature:g}, pass@1)",
                start["sampled"],
                end["sampled"],
            ),
            (f"run eval, vLLM (step {first_step} -> {last_step})", (first, None), (last, None)),
        ]
        for label, (a, sa), (b, sb) in rows:
            print(f"   {label:34}{_cell(a, sa)}{_cell(b, sb)}{b - a:+9.3f}")
        verdicts.append((run_dir.name, end["greedy"][0] < start["greedy"][0], end["sampled"][0] > start["sampled"][0]))
    print("\ngreedy lower at the end while sampled higher? (± above: one sampling standard error, these prompts)")
    for name, greedy_fell, sampled_rose in verdicts:
        print(
            f"   {name}: greedy fell {'yes' if greedy_fell else 'no'}, sampled rose {'yes' if sampled_rose else 'no'}"
            f" -> {'yes' if greedy_fell and sampled_rose else 'no'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
