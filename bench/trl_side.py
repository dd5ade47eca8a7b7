"""The TRL side of the benchmark: TRL's GRPOTrainer on a bench model folder (runs in bench/.venv-trl).

    bench/.venv-trl/bin/python bench/trl_side.py --model DIR --prompts FILE --json OUT [--steps 18]

Per step: 8 prompts x 4 generations (one generation batch of 32 completions, one optimizer step
on it), at most 32 new tokens, temperature 1, AdamW at a constant 1e-5, beta 0 (no reference
model), HF generate (no vLLM), fp32 on the CPU with 2 torch threads. The reward is
bench/arith_reward.py's, as on the Counterpoint side. Writes per-step wall seconds (a callback's
on_step_begin -> on_step_end), the time from process start to the end of step 1 and the peak RSS.
Per step also the seconds of HF `generate` and of the whole rollout (`_generate_and_score_completions`:
generation, reward, advantages), timed by wrapping those two calls; the rest of a step is the
loss, backward and optimizer step.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

PROCESS_START = psutil.Process().create_time()
torch.set_num_threads(2)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arith_reward import trl_reward  # noqa: E402


def timed(obj, name: str) -> list[float]:
    """Wrap `obj.name` (on the instance) so that each call's wall seconds are appended to a list."""
    inner, seconds = getattr(obj, name), []

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    setattr(obj, name, wrapper)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--prompts", type=Path, required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--prompts-per-step", type=int, default=8)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--max-completion-length", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rows = [json.loads(line) for line in args.prompts.read_text().splitlines() if line.strip()]
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    completions = args.prompts_per_step * args.generations

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.begin = None
            self.seconds: list[float] = []
            self.ends: list[float] = []
            self.logs: list[dict] = []

        def on_step_begin(self, targs, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_step_end(self, targs, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.begin)
            self.ends.append(time.time())

        def on_log(self, targs, state, control, logs=None, **kwargs):
            if logs:
                self.logs.append({k: v for k, v in logs.items() if isinstance(v, int | float)})

    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as tmp:
        config = GRPOConfig(
            output_dir=tmp,
            max_steps=args.steps,
            per_device_train_batch_size=completions,
            generation_batch_size=completions,
            gradient_accumulation_steps=1,
            num_generations=args.generations,
            num_iterations=1,
            max_completion_length=args.max_completion_length,
            temperature=1.0,
            learning_rate=args.learning_rate,
            lr_scheduler_type="constant",
            warmup_steps=0,
            beta=0.0,
            use_vllm=False,
            use_cpu=True,
            bf16=False,
            fp16=False,
            report_to="none",
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=args.seed,
            model_init_kwargs={"dtype": "float32"},
        )
        trainer = GRPOTrainer(
            model=str(args.model),
            reward_funcs=trl_reward,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[timer],
        )
        params = sum(p.numel() for p in trainer.model.parameters())
        generate_seconds = timed(trainer.model, "generate")
        rollout_seconds = timed(trainer, "_generate_and_score_completions")
        trainer.train()

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "system": "trl",
        "versions": {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__},
        "torch_threads": torch.get_num_threads(),
        "model": str(args.model),
        "parameters": params,
        "completions_per_step": completions,
        "step_seconds": [round(s, 4) for s in timer.seconds],
        "generate_seconds": [round(s, 4) for s in generate_seconds],
        "rollout_seconds": [round(s, 4) for s in rollout_seconds],
        # wall between consecutive step ends (includes what the trainer does between steps: logging)
        "step_interval_seconds": [round(b - a, 4) for a, b in zip(timer.ends, timer.ends[1:])],
        "time_to_first_step_seconds": round(timer.ends[0] - PROCESS_START, 3) if timer.ends else None,
        "total_seconds": round(time.time() - PROCESS_START, 3),
        "peak_rss_mib": round(own / 1024, 1),
        "peak_rss_children_mib": round(children / 1024, 1),
        "logs": timer.logs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"trl: median step {sorted(timer.seconds)[len(timer.seconds) // 2]:.3f}s -> {args.json}")


if __name__ == "__main__":
    main()
