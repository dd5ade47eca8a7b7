"""Compare the learner's entropy controls on the default tiny setup, same seeds for each.

What it really does: runs `counterpoint run` (the real path: embedded Ray, vLLM, reward actors,
2-rank DeepSpeed) once per variant and seed with everything but the learner's loss held fixed
(`COMMON`: the same mini-batches, epochs, learning rate and batch for every variant),
then plots each domain's token entropy and reward per step (the first seed) and prints a table
of held-out results: per seed, and with several seeds their mean and range. Not a test: it
prints figures. About 2-3 minutes per variant and seed on 2 cores; finished runs are reused.

    .venv/bin/python scripts/compare_entropy_controls.py --steps 60 --seeds 0 1 2 --out runs/compare
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

COMMON: list[str] = ["learner.mini_batches=2", "learner.epochs=1"]
"""Held equal for every variant: two optimizer steps per rollout (KL-Cov's penalty has no gradient
on the first, on-policy one, and clip-higher never clips there), one epoch, and the default
learning rate and batch. Each variant then changes only its loss or its entropy control."""

VARIANTS: dict[str, list[str]] = {
    "baseline": ["learner.loss={type: ppo_clip}"],
    "kl_cov": ["learner.loss={type: kl_cov, select_fraction: 0.02, kl_coef: 1.0}"],
    "clip_cov": ["learner.loss={type: clip_cov, select_fraction: 0.02, cov_low: 0.0, cov_high: 5.0}"],
    "gppo": ["learner.loss={type: gppo}"],
    "adaptive_entropy": [
        "learner.entropy={adaptive: true, target: 0.3, step_size: 0.001, max_coef: 0.01}",
        "learner.per_domain={creative: {entropy: {adaptive: true, target: 1.0, step_size: 0.001, max_coef: 0.01}}}",
    ],
}


def run_variants(names: list[str], steps: int, out: Path, extra: list[str], seed: int) -> None:
    from counterpoint.cluster.launch import run_training
    from counterpoint.config import load_config
    from counterpoint.trainer.run_folder import RunFolder

    for name in names:
        folder = out / name
        if (folder / "summary.json").exists():
            logging.info("%s, seed %d: already done, reusing %s", name, seed, folder)
            continue
        cfg = load_config(overrides=[f"run.steps={steps}", f"run.seed={seed}", *COMMON, *VARIANTS[name], *extra])
        logging.info("variant %s, seed %d", name, seed)
        run_training(cfg, RunFolder(folder))


def load(folder: Path) -> tuple[list[dict], dict]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "train"], json.loads((folder / "summary.json").read_text())


def plot(names: list[str], out: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {n: load(out / n)[0] for n in names}
    domains = sorted(runs[names[0]][0]["domains"])
    fig, axes = plt.subplots(2, len(domains), figsize=(4.5 * len(domains), 7), squeeze=False)
    for col, domain in enumerate(domains):
        for name, steps in runs.items():
            x = [r["step"] for r in steps]
            axes[0][col].plot(x, _smooth([r["domains"][domain]["entropy_mean"] for r in steps]), label=name)
            axes[1][col].plot(x, _smooth([r["domains"][domain]["reward_mean"] for r in steps]), label=name)
        axes[0][col].set_title(f"{domain}: token entropy")
        axes[1][col].set_title(f"{domain}: reward (train samples)")
        axes[1][col].set_xlabel("step")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Entropy controls on the default tiny setup ({out.name}; 5-step moving average)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)


def _smooth(values: list[float], k: int = 5) -> list[float]:
    return [sum(values[max(0, i - k + 1) : i + 1]) / len(values[max(0, i - k + 1) : i + 1]) for i in range(len(values))]


def table(names: list[str], out: Path) -> str:
    rows = [
        "| variant | domain | eval start | eval end | entropy first 5 | entropy last 5 | tokens touched/step | s/step |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        steps, summary = load(out / name)
        for domain, ev in summary["eval"].items():
            key = "accuracy" if ev["end"]["accuracy"] is not None else "reward_mean"
            ent = [r["domains"][domain]["entropy_mean"] for r in steps]
            m = [r["domains"][domain] for r in steps]
            touched = sum(x.get("cov_selected_tokens", 0) + x.get("gppo_preserved_tokens", 0) for x in m) / len(m)
            sec = sum(r["seconds"]["step"] for r in steps) / len(steps)
            rows.append(
                f"| {name} | {domain} | {ev['start'][key]:.3f} | {ev['end'][key]:.3f} | "
                f"{sum(ent[:5]) / 5:.3f} | {sum(ent[-5:]) / 5:.3f} | {touched:.1f} | {sec:.2f} |"
            )
    return "\n".join(rows)


def seed_table(names: list[str], outs: dict[int, Path]) -> str:
    """Held-out score at the end and entropy over the last 5 steps: mean and range over seeds."""
    rows = [
        f"| variant | domain | eval end, mean of {len(outs)} seeds | range | entropy last 5, mean | range |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        runs = [load(out / name) for out in outs.values()]
        for domain, ev in runs[0][1]["eval"].items():
            key = "accuracy" if ev["end"]["accuracy"] is not None else "reward_mean"
            ends = [summary["eval"][domain]["end"][key] for _, summary in runs]
            ents = [sum(r["domains"][domain]["entropy_mean"] for r in steps[-5:]) / 5 for steps, _ in runs]
            rows.append(
                f"| {name} | {domain} | {sum(ends) / len(ends):.3f} | {min(ends):.3f}-{max(ends):.3f} | "
                f"{sum(ents) / len(ents):.3f} | {min(ents):.3f}-{max(ents):.3f} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--png", type=Path, default=Path("docs/results/entropy_controls.png"))
    parser.add_argument(
        "--set", dest="extra", action="append", default=[], help="extra config override for every variant"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="run.seed values; runs go to OUT/seed<N>/<variant>"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("ray", "vllm", "deepspeed", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    outs = {seed: args.out / f"seed{seed}" for seed in args.seeds}
    for seed, out in outs.items():
        run_variants(args.variants, args.steps, out, args.extra, seed)
    plot(args.variants, outs[args.seeds[0]], args.png)
    for seed, out in outs.items():
        print(f"seed {seed}:")
        print(table(args.variants, out))
    if len(outs) > 1:
        print(seed_table(args.variants, outs))
    print(f"figure: {args.png}")


if __name__ == "__main__":
    main()
