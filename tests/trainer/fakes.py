"""In-process fakes of the loop's parts (engine, rewards, learner) and the config and parts the
trainer tests build from them. Named as fakes: they test the loop's logic (planning, grouping,
metrics, versions, evaluation, resume, the run folder), not generation or learning, which the
integration tests cover."""

import json
import random

from counterpoint.config import config_from_dict
from counterpoint.rollout.domains import build_domain, task_source
from counterpoint.rollout.records import Sample, Score, ScoredSample, Scoring
from counterpoint.rollout.rewards.measure import GroupMeasurer
from counterpoint.trainer.algo.entropy_control import DomainEntropyCoefficients
from counterpoint.trainer.curriculum.controller import ScheduleController
from counterpoint.trainer.curriculum.planner import SchedulePlanner
from counterpoint.trainer.loop import RunParts
from counterpoint.trainer.metrics import merge_learner_sums


def fake_encode(prompt, demo):
    """A fake tokenizer: one id per character."""
    return [ord(c) % 50 for c in prompt], [ord(c) % 50 for c in demo] + [0]


class FakeRollout:
    """Answers math prompts with the right answer half the time; random words elsewhere. Each
    sample is a function of (prompt, sample index, policy version), so a resumed run that sees
    the same prompts at the same versions gets the same samples."""

    def __init__(self):
        self.version = 0

    def generate(self, prompts, *, samples_per_prompt, max_tokens, temperature):
        out = []
        for p in prompts:
            for k in range(samples_per_prompt):
                rng = random.Random(f"{p.prompt_id}:{k}:{self.version}")
                if p.domain == "math":
                    text = " " + (p.reference["answer"] if rng.random() < 0.5 else "0")
                else:
                    text = " " + " ".join(rng.choice(["sea", "moon", "glass", "pale", "wind"]) for _ in range(6))
                ids = [rng.randrange(5, 50) for _ in range(rng.randrange(1, max_tokens + 1))]
                out.append(Sample(p, [1, 2, 3], ids, [-1.0] * len(ids), text, "stop", self.version))
        return out


class FakeRewards:
    """The domains' real reward functions, one sample at a time. `failures` is a failing mode:
    {domain: (reason, share)} replaces the real Score of the first `share` of that domain's
    samples in each call with reward 0 and that `RewardError` (e.g. a verifier timeout)."""

    def __init__(self, domains, failures=None):
        self.domains = {d: build_domain(d) for d in domains}
        self.failures = failures or {}

    def score(self, samples, diversity=None):
        scored = []
        for i in range(0, len(samples), 1):
            s = samples[i]
            scored.append(ScoredSample(s, self.domains[s.prompt.domain].score_group(s.prompt, [s.response_text])[0]))
        measured = {d: [] for d in self.domains}
        groups: dict[str, list[ScoredSample]] = {}
        for row in scored:
            groups.setdefault(row.sample.prompt.prompt_id, []).append(row)
        for rows in groups.values():  # the real measures (no encoder: `semantic_groups` is taken as 0)
            domain = rows[0].domain
            options = dict(diversity, semantic_groups=0) if diversity else None
            per_group, _ = GroupMeasurer(self.domains[domain]).measure(
                [(rows[0].sample.prompt, [r.sample.response_text for r in rows])], [[r.score for r in rows]], options
            )
            measured[domain] += per_group
        for domain, (reason, share) in self.failures.items():
            rows = [i for i, r in enumerate(scored) if r.domain == domain]
            for i in rows[: round(share * len(rows))]:
                failed = Score(0.0, False if scored[i].score.correct is not None else None, {"detail": "fake"}, reason)
                scored[i] = ScoredSample(scored[i].sample, failed)
        seconds = {d: {"total": 0.0, "embedding": 0.0} for d in self.domains}
        return Scoring(scored, {d: 0.0 for d in self.domains}, measured, seconds)


class FakeLearner:
    """Records the update plans; reports a fixed entropy of 0.1 per token."""

    world_size = 2

    def __init__(self, rollout, crash_at_step=None):
        self.rollout = rollout
        self.crash_at_step = crash_at_step
        self.plans, self.coefs, self.kinds = [], [], []

    def train_step(self, plan, entropy_coefs, kind, measure_rank=False):
        if self.crash_at_step is not None and self.rollout.version + 1 == self.crash_at_step:
            raise FakeLearnerCrash(f"the fake learner crashes at step {self.crash_at_step}")
        self.plans.append(plan)
        self.coefs.append(entropy_coefs)
        self.kinds.append(kind)
        per_rank = []
        for shards in plan.shards:
            sums = {}
            for shard in shards:
                for i, d in enumerate(shard.domains):
                    n = float(shard.response_mask[shard.domain_ids == i].sum())
                    if n:
                        sums[d] = {"tokens": n, "entropy_sum": 0.1 * n}
                        if measure_rank:  # a fixed rank of 2 per response
                            responses = float((shard.domain_ids == i).sum())
                            sums[d] |= {"rank_sum": 2.0 * responses, "rank_count": responses}
            per_rank.append({"domains": sums})
        return {
            "domains": merge_learner_sums(per_rank),
            "grad_norm": 1.0,
            "optimizer_steps": len(plan.counts),
            "rank_seconds": 0.0,
        }

    def sync_weights(self, version):
        self.rollout.version = version
        return 0.0

    def save_checkpoint(self, directory, client_state):
        directory.mkdir(parents=True)
        (directory / "fake_learner.json").write_text(json.dumps(client_state))

    def load_checkpoint(self, directory):
        return json.loads((directory / "fake_learner.json").read_text())


class FakeLearnerCrash(RuntimeError):
    """The fake learner's crash, at a step the test chose."""


def fake_config(
    steps, *, schedule=None, eval_every=0, mini_batches=1, checkpoint_every=2, metrics=None, generation=None, **run
):
    """`run`: more fields of the run section (e.g. max_reward_failure_fraction=0.2); `metrics`:
    the metrics section (default: its defaults, without loggers); `generation`: more fields of
    the generation section (e.g. max_staleness=1)."""
    return config_from_dict(
        {
            "metrics": {"report_to": [], **(metrics or {})},
            "run": {
                "steps": steps,
                "eval_every_steps": eval_every,
                "checkpoint_every_steps": checkpoint_every,
                "seed": 0,
                **run,
            },
            "domains": {
                "math": {"weight": 2.0, "eval": {"prompts": 4}},
                "creative": {"weight": 1.0, "eval": {"prompts": 4}},
            },
            "generation": {
                "prompts_per_step": 3,
                "samples_per_prompt": 4,
                "max_response_tokens": 5,
                **(generation or {}),
            },
            "learner": {
                "ranks": 2,
                "mini_batches": mini_batches,
                "per_domain": {
                    "math": {"entropy": {"coef": 0.001}},
                    "creative": {"entropy": {"adaptive": True, "target": 0.5, "step_size": 1e-3}},
                },
            },
            "schedule": {"policy": schedule or "joint"},
        }
    )


def fake_parts(cfg, run, *, crash_at_step=None, reward_failures=None):
    """`reward_failures`: FakeRewards' failing mode, {domain: (reason, share)}."""
    rollout = FakeRollout()
    learner = FakeLearner(rollout, crash_at_step=crash_at_step)
    controller = ScheduleController(run.path, cfg.initial_stages(), domains=list(cfg.domains))
    return RunParts(
        {d: task_source(d, cfg.domains[d], 0) for d in cfg.domains},
        rollout,
        FakeRewards(list(cfg.domains), reward_failures),
        learner,
        pad_token_id=0,
        entropy=DomainEntropyCoefficients({d: cfg.learner.entropy_for(d) for d in cfg.domains}),
        planner=SchedulePlanner(controller, cfg.generation.prompts_per_step),
        encode=fake_encode,
    )
