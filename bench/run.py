"""Counterpoint vs TRL's GRPOTrainer, side by side on this machine (project venv).

    python bench/run.py [--models small,medium] [--repeats 2] [--steps 18] [--warmup 3]
                        [--set KEY=VALUE ...] [--json OUT]

Builds the two bench models (bench/models.py), ensures bench/.venv-trl (bench/setup_trl.sh), then
per model alternates TRL and Counterpoint runs (TRL, CP, TRL, CP, ... `--repeats` of each) on
the same model folder and prompts: 8 prompts x 4 samples x at most 32 tokens a step, constant lr
1e-5. Prints per model each system's median step seconds (over the measured steps, pooled
across repeats), completions per second, the ratio Counterpoint/TRL in completions per second
(> 1: Counterpoint is faster), Counterpoint's phase medians, the time to the first step, the peak
memory, and the physical floor of a step on one core (6 x params x tokens for training, 2 x params
x generated tokens for generation, over a measured one-thread fp32 matmul throughput).
`--set` goes to `counterpoint run` (e.g. --set learner.ranks=1); `--ref REV` measures the Counterpoint
code of commit REV instead of the working tree (counterpoint_side.py). Everything lands in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import counterpoint_side  # noqa: E402
import models  # noqa: E402
from procmon import run_watched  # noqa: E402

TRL_PYTHON = BENCH / ".venv-trl" / "bin" / "python"
PHASES = ("generate", "score", "update", "sync")


def _on_thread(p: dict) -> float:
    """The seconds of a step's phases that ran in the loop's thread."""
    if "wait" in p:  # made ahead: generate and score overlapped the update before
        return p["wait"] + p.get("update", 0.0) + p.get("sync", 0.0)
    return sum(p.get(ph, 0.0) for ph in PHASES)


def ensure_trl_venv() -> None:
    subprocess.run(["bash", str(BENCH / "setup_trl.sh")], check=True)


def matmul_gflops(threads: int, n: int = 1024, reps: int = 20) -> float:
    """Best fp32 GFLOPS of an n x n matmul on `threads` torch threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best / 1e9
    finally:
        torch.set_num_threads(before)


def mean_prompt_tokens(model_dir: Path, prompts: Path) -> float:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = [json.loads(line) for line in prompts.read_text().splitlines() if line.strip()]
    return statistics.fmean(len(tok(r["prompt"])["input_ids"]) for r in rows)


def run_trl(model_dir: Path, data_dir: Path, work: Path, steps: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out = work / "trl.json"
    cmd = [str(TRL_PYTHON), str(BENCH / "trl_side.py"), "--model", str(model_dir)]
    cmd += ["--prompts", str(data_dir / "prompts.jsonl"), "--json", str(out), "--steps", str(steps)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    watched = run_watched(cmd, cwd=work, env=env, log_path=work / "trl.log")
    if watched["rc"] != 0 or not out.is_file():
        tail = (work / "trl.log").read_text(errors="replace").splitlines()[-30:]
        raise RuntimeError(f"trl_side.py exited {watched['rc']}; log {work}/trl.log:\n" + "\n".join(tail))
    result = json.loads(out.read_text())
    keep = ("peak_tree_rss_mib", "wall_seconds", "tree_cpu_seconds", "other_cpu_seconds", "load_average_1m")
    result.update(command=cmd, **{k: watched[k] for k in keep})
    return result


def median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 4) if xs else None


def summarise(model: str, info: dict, trl_runs: list, cp_runs: list, warmup: int, floor_in: dict) -> dict:
    measured = slice(warmup, None)
    trl_steps = [s for r in trl_runs for s in r["step_seconds"][measured]]
    cp_steps = [s for r in cp_runs for s in r["step_seconds"][measured]]
    cp_phases = [p for r in cp_runs for p in r["phase_seconds"][measured]]
    trl_med, cp_med = median(trl_steps), median(cp_steps)
    completions = cp_runs[0]["completions_per_step"] if cp_runs else 32
    trl_rollouts = [x for r in trl_runs for x in list(zip(r["step_seconds"], r.get("rollout_seconds", [])))[measured]]
    trl_phases = {
        "generate": median([x for r in trl_runs for x in r.get("generate_seconds", [])[measured]]),
        "rollout": median([g for _, g in trl_rollouts]),
        "train": median([s - g for s, g in trl_rollouts]),
    }
    phases = {ph: median([p.get(ph, 0.0) for p in cp_phases]) for ph in PHASES}
    # With asynchronous rollouts (generation.max_staleness > 0) a step's batch was generated and
    # scored on a background thread during the update before it: the loop's thread only waited
    # for it (`wait`), and that wait, the update and the sync make up its step.
    phases["wait"] = median([p.get("wait", 0.0) for p in cp_phases])
    phases["rest"] = median([p["step"] - _on_thread(p) for p in cp_phases])
    # the rest is the step's other timed phases (plan, advantages); engine_weight_load is part of sync
    phases["rest_of_which"] = {ph: median([p.get(ph, 0.0) for p in cp_phases]) for ph in ("plan", "advantages")}
    phases["sync_of_which"] = {"engine_weight_load": median([p.get("engine_weight_load", 0.0) for p in cp_phases])}
    # The floor: one core at the measured matmul rate; embedding lookups are not matmuls.
    n = info["parameters"] - info["input_embedding_parameters"]
    lengths = [x for r in cp_runs for x in r["response_length_mean"][measured] if x is not None]
    key = "completions/mean_length"
    lengths += [g[key] for r in trl_runs for g in r["logs"][measured] if key in g]
    gen_tokens = statistics.fmean(lengths) if lengths else 32.0
    seq_tokens = floor_in["prompt_tokens"] + gen_tokens
    train_flop = 6 * n * completions * seq_tokens
    gen_flop = 2 * n * completions * gen_tokens
    rate = floor_in["gflops_1_thread"] * 1e9
    floor = {
        "matmul_params": n,
        "prompt_tokens_mean": round(floor_in["prompt_tokens"], 2),
        "completion_tokens_mean": round(gen_tokens, 2),
        "train_gflop": round(train_flop / 1e9, 3),
        "generate_gflop": round(gen_flop / 1e9, 3),
        "update_floor_seconds": round(train_flop / rate, 5),
        "generate_floor_seconds": round(gen_flop / rate, 5),
        "step_floor_seconds": round((train_flop + gen_flop) / rate, 5),
    }
    floor["times_floor"] = {
        "counterpoint_step": _ratio(cp_med, floor["step_floor_seconds"]),
        "trl_step": _ratio(trl_med, floor["step_floor_seconds"]),
        "counterpoint_generate": _ratio(phases["generate"], floor["generate_floor_seconds"]),
        "trl_generate": _ratio(trl_phases["generate"], floor["generate_floor_seconds"]),
        "counterpoint_update": _ratio(phases["update"], floor["update_floor_seconds"]),
        "trl_train": _ratio(trl_phases["train"], floor["update_floor_seconds"]),
    }

    def side(runs: list, steps: list, med: float | None, memory_key: str) -> dict:
        return {
            "median_step_seconds": med,
            "completions_per_second": round(completions / med, 2) if med else None,
            "median_step_interval_seconds": median([s for r in runs for s in r["step_interval_seconds"][warmup - 1 :]]),
            "time_to_first_step_seconds": [r["time_to_first_step_seconds"] for r in runs],
            "peak_memory_mib": [r[memory_key] for r in runs],
            "total_seconds": [r.get("total_seconds") for r in runs],
            # CPU seconds the rest of the machine used during each run (0: it had the machine alone)
            "other_cpu_seconds": [r.get("other_cpu_seconds") for r in runs],
            "measured_steps": len(steps),
        }

    return {
        "model": model,
        "parameters": info["parameters"],
        "trl": side(trl_runs, trl_steps, trl_med, "peak_tree_rss_mib"),
        "counterpoint": side(cp_runs, cp_steps, cp_med, "peak_tree_rss_mib"),
        "ratio_counterpoint_over_trl_completions_per_second": _ratio(trl_med, cp_med),
        "counterpoint_phase_medians": phases,
        # TRL: HF generate; the whole rollout (generate, reward, advantages); the rest (loss, backward, step)
        "trl_phase_medians": trl_phases,
        "floor": floor,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def report(s: dict, gflops: dict) -> str:
    t, c, ph, fl = s["trl"], s["counterpoint"], s["counterpoint_phase_medians"], s["floor"]
    tp = s["trl_phase_medians"]
    lines = [
        f"== {s['model']} ({s['parameters'] / 1e6:.2f}M params), median of {t['measured_steps']} TRL / "
        f"{c['measured_steps']} Counterpoint measured steps",
        f"  TRL          {t['median_step_seconds']:.3f} s/step  {t['completions_per_second']:7.2f} completions/s   "
        f"first step at {_list(t['time_to_first_step_seconds'])} s   peak RSS {_list(t['peak_memory_mib'])} MiB",
        f"  Counterpoint {c['median_step_seconds']:.3f} s/step  {c['completions_per_second']:7.2f} completions/s   "
        f"first step at {_list(c['time_to_first_step_seconds'])} s   peak RSS {_list(c['peak_memory_mib'])} MiB",
        f"  Counterpoint/TRL completions per second: {s['ratio_counterpoint_over_trl_completions_per_second']}"
        f"   (step-to-step wall: TRL {t['median_step_interval_seconds']} s, Counterpoint "
        f"{c['median_step_interval_seconds']} s)",
        "  Counterpoint phases (median s): "
        + "  ".join(f"{k} {ph[k]:.4f}" for k in (*PHASES, "wait", "rest"))
        + "   (rest: "
        + ", ".join(f"{k} {v:.4f}" for k, v in ph["rest_of_which"].items())
        + f"; sync's engine_weight_load {ph['sync_of_which']['engine_weight_load']:.4f})",
        "  TRL phases (median s): "
        + "  ".join(f"{k} {v:.4f}" for k, v in tp.items() if v is not None)
        + "   (rollout: generate + reward + advantages; train: the rest of the step)",
        f"  floor on 1 core at {gflops['gflops_1_thread']:.1f} GFLOPS ({fl['matmul_params']:,} matmul params, "
        f"{fl['prompt_tokens_mean']:.1f}+{fl['completion_tokens_mean']:.1f} tokens a sequence): "
        f"generate {fl['generate_floor_seconds']:.4f} s, update {fl['update_floor_seconds']:.4f} s, "
        f"step {fl['step_floor_seconds']:.4f} s",
        "  x floor: " + "  ".join(f"{k} {v}" for k, v in fl["times_floor"].items()),
        f"  CPU seconds used by other processes during the runs: TRL {_list(t['other_cpu_seconds'])}, "
        f"Counterpoint {_list(c['other_cpu_seconds'])}",
    ]
    return "\n".join(lines)


def default_run(args) -> None:
    """The default run (5 steps) for the working tree and each given commit, alternated
    `--repeats` times: time to the first step and peak memory of its process tree."""
    out_dir = BENCH / "out" / time.strftime("%Y%m%d-%H%M%S")
    refs = [None, *args.default_run]
    results = {str(r): [] for r in refs}
    for k in range(args.repeats):
        for ref in refs:
            label = ref or "working tree"
            print(f"bench: default run, {label}, repeat {k + 1}/{args.repeats} ...", flush=True)
            work = out_dir / f"default-{ref or 'tree'}-{k + 1}"
            results[str(ref)].append(counterpoint_side.run_default(work, sets=args.sets, ref=ref))
    for ref in refs:
        rs = results[str(ref)]
        print(
            f"== default run, {ref or 'working tree'}: time to first step "
            f"{_list([r['time_to_first_step_seconds'] for r in rs])} s, peak RSS "
            f"{_list([r['peak_tree_rss_mib'] for r in rs])} MiB (other processes' CPU "
            f"{_list([r['other_cpu_seconds'] for r in rs])} s)",
            flush=True,
        )
    json_path = args.json or out_dir / "default-run.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    print(f"bench: figures in {json_path}")


def _list(xs: list) -> str:
    return "/".join(f"{x:.0f}" if isinstance(x, int | float) and x >= 100 else f"{x}" for x in xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="small,medium", help="comma-separated, of: " + ", ".join(models.MODELS))
    ap.add_argument("--repeats", type=int, default=2, help="runs of each system per model")
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--warmup", type=int, default=3, help="leading steps of each run not measured")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a Counterpoint config override, repeatable")  # fmt: skip
    ap.add_argument("--ref", default=None, help="Counterpoint code of this commit (default: the working tree)")
    ap.add_argument("--json", type=Path, default=None, help="default: bench/out/<time>/bench.json")
    ap.add_argument("--model-dir", type=Path, default=models.DEFAULT_OUT, help="where the models are built")
    ap.add_argument("--default-run", nargs="*", metavar="REF", default=None,
                    help="instead: the default run's time to first step and peak memory, for the working "
                    "tree and each commit REF given (e.g. --default-run c899a13)")  # fmt: skip
    args = ap.parse_args()
    if args.default_run is not None:
        default_run(args)
        return
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in models.MODELS]
    if unknown or args.warmup >= args.steps:
        ap.error(f"unknown models {unknown}" if unknown else "--warmup must be below --steps")

    built = models.build(args.model_dir)
    data_dir = args.model_dir.expanduser().resolve()
    ensure_trl_venv()
    gflops = {"gflops_1_thread": round(matmul_gflops(1), 2), "gflops_2_threads": round(matmul_gflops(2), 2)}
    print(f"bench: fp32 1024x1024 matmul: {gflops['gflops_1_thread']} GFLOPS on 1 thread, "
          f"{gflops['gflops_2_threads']} on 2", flush=True)  # fmt: skip
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = BENCH / "out" / stamp
    result = {
        "started": stamp,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cpu_count": os.cpu_count(),
        "matmul": gflops,
        "recipe_hash": built["hash"],
        "counterpoint_code": counterpoint_side.code_state(args.ref),
        "models": {},
    }
    code = result["counterpoint_code"]
    changed = f" + {len(code['changed_files'])} changed files" if code.get("changed_files") else ""
    print(f"bench: Counterpoint code: {code['code']} {code['commit'][:12]}{changed}", flush=True)
    json_path = args.json or out_dir / "bench.json"
    for name in names:
        model_dir = data_dir / name
        floor_in = {**gflops, "prompt_tokens": mean_prompt_tokens(model_dir, data_dir / "prompts.jsonl")}
        trl_runs, cp_runs = [], []
        for r in range(args.repeats):
            print(f"bench: {name} repeat {r + 1}/{args.repeats}: TRL ...", flush=True)
            trl_runs.append(run_trl(model_dir, data_dir, out_dir / f"{name}-trl-{r + 1}", args.steps))
            print(f"bench: {name} repeat {r + 1}/{args.repeats}: Counterpoint ...", flush=True)
            work = out_dir / f"{name}-cp-{r + 1}"
            cp_runs.append(counterpoint_side.run(model_dir, data_dir, work, args.steps, args.sets, args.ref))
        summary = summarise(name, built["built"][name], trl_runs, cp_runs, args.warmup, floor_in)
        result["models"][name] = {"summary": summary, "trl_runs": trl_runs, "counterpoint_runs": cp_runs}
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
        print(report(summary, gflops), flush=True)
    print(f"bench: figures in {json_path}")


if __name__ == "__main__":
    main()
