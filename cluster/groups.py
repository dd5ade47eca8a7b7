"""Ray actor groups behind the loop's interfaces: rollout engines, reward pools, learner ranks.

Actor bodies are the plain classes from rollout/ and trainer/; wrapping them is one `ray.remote`
line each, here. Nothing else in the project imports Ray for these parts.
"""

from __future__ import annotations

import socket
import time
from collections import defaultdict

import ray

from counterpoint.cluster.errors import LearnerFailure
from counterpoint.rollout.engine import RolloutEngine
from counterpoint.rollout.records import Prompt, Sample, ScoredSample, Scoring
from counterpoint.rollout.rewards.reward_worker import RewardWorker
from counterpoint.trainer.batch import UpdatePlan
from counterpoint.trainer.curriculum.plan import StageKind
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


RECOVERABLE = (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError)
"""A dead actor (RayActorError covers died and unavailable) or a hung call."""

# Ray restarts a dead actor (max_restarts) by running its constructor again; the groups here
# reissue the lost call themselves (max_task_retries=0), so every recovery is seen and logged.
RESTARTABLE = {"max_restarts": 3, "max_task_retries": 0}


def collect(actor, ref, reissue, *, what: str, on_event, retries: int = 3, timeout_s: float | None = None):
    """`ray.get(ref)`; if the actor died or hung, wait for Ray to restart it, `reissue()` the call
    and try again (at most `retries` times). Every recovery is reported through `on_event`."""
    for attempt in range(retries + 1):
        try:
            return ray.get(ref, timeout=timeout_s)
        except RECOVERABLE as err:
            # A RayTaskError is an answer from a live actor, or an argument that failed upstream
            # (a dead learner rank's weights): nothing here died, so nothing to restart.
            if attempt == retries or isinstance(err, ray.exceptions.RayTaskError):
                raise
            if isinstance(err, ray.exceptions.GetTimeoutError):
                on_event("actor_hung", actor=what, seconds=timeout_s)
                ray.kill(actor, no_restart=False)  # a hung worker is replaced like a dead one
            _await_restart(actor)  # raises if Ray will not restart it (its restarts are spent)
            on_event("actor_recovered", actor=what, attempt=attempt + 1, error=type(err).__name__)
            ref = reissue()
    raise AssertionError("unreachable")


def _await_restart(actor, timeout_s: float = 300.0) -> None:
    """Block until Ray has restarted `actor` (calls on a restarting actor fail at once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=max(1.0, deadline - time.monotonic()))
            return
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _no_events(kind: str, **fields) -> None:
    pass


class RayRollout:
    """Round-robins prompts over the rollout engines and gathers their samples in order.

    Keeps the latest weights (by object reference) and version: an engine that died and was
    restarted comes back with the base model, so it is given the current weights before its
    lost chunk is generated again, and no sample from a stale policy reaches the learner.
    """

    def __init__(
        self,
        engines: list,
        on_event=_no_events,
        *,
        generate_timeout_s: float | None = None,
        weights_timeout_s: float | None = None,
    ):
        self.engines = engines
        self.on_event = on_event
        self.generate_timeout_s, self.weights_timeout_s = generate_timeout_s, weights_timeout_s
        """A call taking longer is treated as hung: the engine is killed, restarted and asked again."""
        self.weights_ref, self.version = None, 0

    def generate(
        self, prompts: list[Prompt], *, samples_per_prompt: int, max_tokens: int, temperature: float, **sampling
    ) -> list[Sample]:
        """`sampling`: a domain's top_p, top_k, stop, passed to every engine as they are."""
        kwargs = dict(samples_per_prompt=samples_per_prompt, max_tokens=max_tokens, temperature=temperature, **sampling)
        # The version the engines hold as this call is issued. With rollouts made ahead, new
        # weights may be pushed (from the loop's thread) while it runs: samples of this version
        # or newer are fine; older ones mean an engine restarted with the base model.
        expected = self.version
        calls = [
            (e, c, e.generate.remote(c, **kwargs))
            for e, c in zip(self.engines, _split(prompts, len(self.engines)))
            if c
        ]
        out = []
        for i, (engine, chunk, ref) in enumerate(calls):

            def reissue(engine=engine, chunk=chunk):
                if self.weights_ref is not None:
                    ray.get(
                        engine.update_weights.remote(self.weights_ref, self.version), timeout=self.weights_timeout_s
                    )
                return engine.generate.remote(chunk, **kwargs)

            def gather(ref, engine=engine, reissue=reissue, i=i):
                return collect(
                    engine, ref, reissue, what=f"rollout-{i}", on_event=self.on_event, timeout_s=self.generate_timeout_s
                )

            samples = gather(ref)
            if self.weights_ref is not None and any(x.policy_version < expected for x in samples):
                # Ray restarted this engine between calls (its constructor loaded the base model):
                # give it the current weights and generate the chunk again.
                self.on_event(
                    "engine_reloaded",
                    actor=f"rollout-{i}",
                    stale_version=min(x.policy_version for x in samples),
                    version=self.version,
                )
                samples = gather(reissue())
            out += samples
        return out

    def load_weights(self, weights_ref, version: int) -> float:
        self.weights_ref, self.version = weights_ref, version
        refs = [e.update_weights.remote(weights_ref, version) for e in self.engines]
        return max(
            collect(
                e,
                r,
                lambda e=e: e.update_weights.remote(weights_ref, version),
                what=f"rollout-{i}",
                on_event=self.on_event,
                timeout_s=self.weights_timeout_s,
            )
            for i, (e, r) in enumerate(zip(self.engines, refs))
        )


class RayRewards:
    """Routes each prompt group to its domain's pool of reward actors."""

    def __init__(self, pools: dict[str, list], on_event=_no_events, timeout_s: float | None = 600.0):
        self.pools = pools
        self.on_event = on_event
        self.timeout_s = timeout_s
        """A reward call taking longer than this is treated as hung: the actor is replaced."""

    def score(self, samples: list[Sample], diversity: dict | None = None) -> Scoring:
        """Each domain's groups split over its pool; with `diversity` (`DiversityConfig.options`),
        each group's diversity measures as well, taken by the worker that scored it."""
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
            for w, (worker, chunk) in enumerate(zip(pool, _split(domain_groups, len(pool)))):
                if chunk:
                    payload = [(p, [samples[i].response_text for i in idx]) for p, idx in chunk]
                    ref = worker.score.remote(payload, diversity)
                    calls.append((f"reward-{domain}-{w}", domain, worker, chunk, payload, ref))
        scores = [None] * len(samples)
        seconds: dict[str, float] = defaultdict(float)
        measured: dict[str, list[dict]] = defaultdict(list)
        measure_seconds: dict[str, dict[str, float]] = defaultdict(lambda: {"total": 0.0, "embedding": 0.0})
        for name, domain, worker, chunk, payload, ref in calls:
            # A crashed or hung reward actor is replaced and its groups scored again: never a
            # silent 0 for samples nobody checked.
            result = collect(
                worker,
                ref,
                lambda w=worker, p=payload: w.score.remote(p, diversity),
                what=name,
                on_event=self.on_event,
                timeout_s=self.timeout_s,
            )
            seconds[domain] = max(seconds[domain], result.seconds)  # pool members run in parallel
            if result.diversity_seconds["total"] > measure_seconds[domain]["total"]:  # the slowest worker's
                measure_seconds[domain] = dict(result.diversity_seconds)
            measured[domain] += result.diversity
            for (_, idx), s_list in zip(chunk, result.scores):
                for i, score in zip(idx, s_list):
                    scores[i] = score
        scored = [ScoredSample(s, sc) for s, sc in zip(samples, scores)]
        return Scoring(scored, dict(seconds), dict(measured), dict(measure_seconds))


class RayLearnerGroup:
    """DeepSpeed ranks as resident actors; rank 0 is created first and gives the master address."""

    def __init__(self, ranks: list, rollout: RayRollout, *, timeout_s: float | None = None, on_event=_no_events):
        self.ranks = ranks
        self.rollout = rollout
        self.timeout_s = timeout_s
        """Every rank's part of one call must end within this; past it the ranks count as hung."""
        self.on_event = on_event

    @classmethod
    def create(
        cls,
        world_size: int,
        rollout: RayRollout,
        *,
        loopback: bool,
        name_prefix: str,
        gpus_per_rank: float = 0.0,
        timeout_s: float | None = None,
        on_event=_no_events,
        runtime_env: dict | None = None,
        **learner_kwargs,
    ) -> tuple[RayLearnerGroup, list[dict]]:
        extra = {"runtime_env": runtime_env} if runtime_env else {}
        rank0 = LearnerActor.options(
            num_cpus=1, num_gpus=gpus_per_rank, name=f"{name_prefix}-learner-0", **extra
        ).remote(0, world_size, **learner_kwargs)
        address, port = ray.get(rank0.__ray_call__.remote(_master_address, loopback))
        others = [
            LearnerActor.options(num_cpus=1, num_gpus=gpus_per_rank, name=f"{name_prefix}-learner-{r}", **extra).remote(
                r, world_size, **learner_kwargs
            )
            for r in range(1, world_size)
        ]
        ranks = [rank0, *others]
        infos = ray.get([r.setup.remote(address, port) for r in ranks])
        return cls(ranks, rollout, timeout_s=timeout_s, on_event=on_event), infos

    @property
    def world_size(self) -> int:
        return len(self.ranks)

    def _all(self, refs: list) -> list:
        """Every rank's result; a rank that dies, raises or hangs (no answer within `timeout_s`)
        fails the whole step cleanly (the others would block in a collective), as a
        LearnerFailure the launcher recovers from by restarting from the last checkpoint."""
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        pending = list(refs)
        while pending:  # one by one: a survivor may block in a collective its failed peer left
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = ray.wait(pending, num_returns=1, timeout=left)
            if not done:
                self.on_event("actor_hung", actor="learner", seconds=self.timeout_s, waiting_for=len(pending))
                self._kill_ranks()
                raise LearnerFailure(f"a learner rank gave no answer within {self.timeout_s:g} s (hung)")
            try:
                ray.get(done[0])
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as err:
                self._kill_ranks()
                if isinstance(err, ray.exceptions.RayActorError):
                    raise LearnerFailure(f"a learner rank died: {type(err).__name__}") from err
                raise LearnerFailure(f"a learner rank raised {type(err.cause).__name__}: {err.cause}") from err
        return ray.get(refs)

    def _kill_ranks(self) -> None:
        for rank in self.ranks:
            ray.kill(rank, no_restart=True)  # the survivors hold a broken process group

    def train_step(self, plan: UpdatePlan, entropy_coefs, kind: StageKind, measure_rank: bool = False) -> dict:
        results = self._all(
            [
                r.train_step.remote(plan.shards[i], plan.counts, entropy_coefs, kind, measure_rank)
                for i, r in enumerate(self.ranks)
            ]
        )
        return {
            "domains": merge_learner_sums(results),
            "grad_norm": results[0]["grad_norm"],
            "optimizer_steps": results[0]["optimizer_steps"],
            "rank_seconds": max(r.get("rank_seconds", 0.0) for r in results),  # ranks run in parallel
        }

    def sync_weights(self, version: int) -> float:
        refs = [r.export_weights.remote() for r in self.ranks]
        # Every rank joins a ZeRO-3 gather, and a rank dying in it is a LearnerFailure. Rank 0's dict
        # stays in the store: for rank 0, a no-op call queued behind its export is waited on instead.
        self._all([*refs[1:], self.ranks[0].__ray_ready__.remote()])
        return self.rollout.load_weights(refs[0], version)  # rank 0's dict goes by reference

    def save_checkpoint(self, directory, client_state: dict) -> None:
        self._all([r.save_checkpoint.remote(str(directory), client_state) for r in self.ranks])

    def load_checkpoint(self, directory) -> dict:
        return self._all([r.load_checkpoint.remote(str(directory)) for r in self.ranks])[0]

    def weights_digest(self) -> str:
        return self._all([r.weights_digest.remote() for r in self.ranks])[0]

    def save_model(self, directory) -> None:
        self._all([r.save_hf_model.remote(str(directory)) for r in self.ranks])


def _master_address(_actor, loopback: bool) -> tuple[str, int]:
    """Runs inside rank 0: the address other ranks dial, and a free port on it."""
    host = "127.0.0.1" if loopback else ray.util.get_node_ip_address()
    with socket.socket() as s:
        s.bind((host, 0))
        return host, s.getsockname()[1]
