"""Ray actor groups behind the loop's interfaces: rollout engines, reward pools, learner ranks.

Actor bodies are the plain classes from rollout/ and trainer/; wrapping them is one `ray.remote`
line each, here. Nothing else in the project imports Ray for these parts.
"""

from __future__ import annotations

import socket
from collections import defaultdict

import ray

from counterpoint.rollout.engine import RolloutEngine
from counterpoint.rollout.records import Prompt, Sample, ScoredSample
from counterpoint.rollout.reward_worker import RewardWorker
from counterpoint.trainer.batch import UpdatePlan
from counterpoint.trainer.learner import Learner
from counterpoint.trainer.metrics import merge_learner_sums

RolloutActor = ray.remote(RolloutEngine)
RewardActor = ray.remote(RewardWorker)
LearnerActor = ray.remote(Learner)


def _split(items: list, parts: int) -> list[list]:
    """Contiguous, near-equal chunks (keeps prompt order, so outputs concatenate back in order)."""
    k, r = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + k + (i < r)
        out.append(items[start:end])
        start = end
    return out


class RayRollout:
    """Round-robins prompts over the rollout engines and gathers their samples in order."""

    def __init__(self, engines: list):
        self.engines = engines

    def generate(self, prompts: list[Prompt], *, samples_per_prompt: int, max_tokens: int, temperature: float) -> list[Sample]:
        chunks = _split(prompts, len(self.engines))
        refs = [
            e.generate.remote(c, samples_per_prompt=samples_per_prompt, max_tokens=max_tokens, temperature=temperature)
            for e, c in zip(self.engines, chunks)
            if c
        ]
        return [s for part in ray.get(refs) for s in part]

    def load_weights(self, weights_ref, version: int) -> float:
        return max(ray.get([e.update_weights.remote(weights_ref, version) for e in self.engines]))


class RayRewards:
    """Routes each prompt group to its domain's pool of reward actors."""

    def __init__(self, pools: dict[str, list]):
        self.pools = pools

    def score(self, samples: list[Sample]) -> tuple[list[ScoredSample], dict[str, float]]:
        groups: dict[str, list[tuple[Prompt, list[int]]]] = defaultdict(list)
        index: dict[str, int] = {}
        for i, s in enumerate(samples):
            pid = s.prompt.prompt_id
            if pid not in index:
                index[pid] = len(groups[s.prompt.domain])
                groups[s.prompt.domain].append((s.prompt, []))
            groups[s.prompt.domain][index[pid]][1].append(i)
        calls = []
        for domain, domain_groups in groups.items():
            if domain not in self.pools:
                raise KeyError(f"no reward workers for domain {domain!r}")
            pool = self.pools[domain]
            for worker, chunk in zip(pool, _split(domain_groups, len(pool))):
                if chunk:
                    payload = [(p, [samples[i].response_text for i in idx]) for p, idx in chunk]
                    calls.append((domain, chunk, worker.score.remote(payload)))
        scores = [None] * len(samples)
        seconds: dict[str, float] = defaultdict(float)
        for (domain, chunk, _), (group_scores, spent) in zip(calls, ray.get([c[2] for c in calls])):
            seconds[domain] = max(seconds[domain], spent)  # pool members run in parallel
            for (_, idx), s_list in zip(chunk, group_scores):
                for i, score in zip(idx, s_list):
                    scores[i] = score
        return [ScoredSample(s, sc) for s, sc in zip(samples, scores)], dict(seconds)


class RayLearnerGroup:
    """DeepSpeed ranks as resident actors; rank 0 is created first and gives the master address."""

    def __init__(self, ranks: list, rollout: RayRollout):
        self.ranks = ranks
        self.rollout = rollout

    @classmethod
    def create(cls, world_size: int, rollout: RayRollout, *, loopback: bool, **learner_kwargs) -> tuple["RayLearnerGroup", list[dict]]:
        rank0 = LearnerActor.options(num_cpus=1, name=None).remote(0, world_size, **learner_kwargs)
        address, port = ray.get(rank0.__ray_call__.remote(_master_address, loopback))
        others = [LearnerActor.options(num_cpus=1).remote(r, world_size, **learner_kwargs) for r in range(1, world_size)]
        ranks = [rank0, *others]
        infos = ray.get([r.setup.remote(address, port) for r in ranks])
        return cls(ranks, rollout), infos

    @property
    def world_size(self) -> int:
        return len(self.ranks)

    def train_step(self, plan: UpdatePlan, entropy_coefs) -> dict:
        results = ray.get([r.train_step.remote(plan.shards[i], plan.counts, entropy_coefs) for i, r in enumerate(self.ranks)])
        return {"domains": merge_learner_sums(results), "grad_norm": results[0]["grad_norm"],
                "optimizer_steps": results[0]["optimizer_steps"]}

    def sync_weights(self, version: int) -> float:
        refs = [r.export_weights.remote() for r in self.ranks]
        ray.wait(refs[1:], num_returns=len(refs) - 1)  # all ranks join a ZeRO-3 gather
        return self.rollout.load_weights(refs[0], version)  # rank 0's dict goes by reference

    def save_checkpoint(self, directory, client_state: dict) -> None:
        ray.get([r.save_checkpoint.remote(str(directory), client_state) for r in self.ranks])

    def load_checkpoint(self, directory) -> dict:
        return ray.get([r.load_checkpoint.remote(str(directory)) for r in self.ranks])[0]

    def save_model(self, directory) -> None:
        ray.get([r.save_hf_model.remote(str(directory)) for r in self.ranks])


def _master_address(_actor, loopback: bool) -> tuple[str, int]:
    """Runs inside rank 0: the address other ranks dial, and a free port on it."""
    host = "127.0.0.1" if loopback else ray.util.get_node_ip_address()
    with socket.socket() as s:
        s.bind((host, 0))
        return host, s.getsockname()[1]
