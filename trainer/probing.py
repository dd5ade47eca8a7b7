"""Transfer probes, the measuring half of the BWT-guided ordering (`schedule.policy: bwt`).

Before the run trains, short probe stages measure how training on one domain moves another
domain's held-out score; the run then trains its domains one stage each, in the order with the
best predicted final score (`curriculum.order.best_order`, docs/research.md §5; Omni-Thinker,
arXiv 2507.14783, whose own estimation procedure is *unverified*).

For domains D (T of them) and K probe steps per stage:

    snapshot "base"
    for i in D:
        restore "base" (unless the weights are there already); train i for K steps
        score i                                   → after_own[i]
        snapshot "own"
        for j in D \\ {i}:
            restore "own" (unless there already); train j for K steps
            score i                               → after_pair[(i, j)]
    restore "base"

T² · K probe steps and T² one-domain evaluations (plus one of every domain at the base). The
learner's weights and optimizer come back from the "base" snapshot, so probing changes the order
the run trains in and nothing else.

`measure_transfer` is the procedure over four callables (pure logic, tested with fakes);
`probe_run` wires it to a run's parts (the learner's checkpoints, the loop's step and eval) and
writes `<run>/probes.jsonl` (every probe step and eval) and `<run>/transfer.json`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import permutations

from counterpoint.trainer.curriculum.order import best_order, estimate_transfer, predicted_score
from counterpoint.trainer.curriculum.plan import StageKind, StepPlan
from counterpoint.trainer.evaluation import eval_record
from counterpoint.trainer.loop import LoopState, driver_state, restore_driver_state, train_step

log = logging.getLogger(__name__)

PROBES_FILE = "probes.jsonl"
TRANSFER_FILE = "transfer.json"


@dataclass
class TransferProbe:
    domains: list[str]
    probe_steps: int
    base: dict[str, float]
    """Each domain's score before any probe."""
    after_own: dict[str, float]
    after_pair: dict[str, dict[str, float]]
    """after_pair[i][j]: i's score after i's probe stage then j's."""
    transfer: dict[str, dict[str, float]]
    """B[i][j] = after_pair[i][j] − after_own[i]: what training j did to i."""
    order: list[str]
    predicted: dict[str, float]
    """Every order's predicted score (orders joined by '>'), best first; for T ≤ 6."""

    def to_json(self) -> dict:
        return asdict(self)


def measure_transfer(
    domains: Sequence[str],
    *,
    train: Callable[[str, str], None],
    score: Callable[[str, str], float],
    snapshot: Callable[[str], None],
    restore: Callable[[str], None],
) -> tuple[dict, dict, dict]:
    """Run the probe procedure above. `train(d, stage)`: K steps on domain d alone, as probe
    stage `stage` ("math" from the base, "math>code" after math's own stage); `score(d, stage)`:
    d's held-out score now, after `stage` ("base" before any); `snapshot(name)` /
    `restore(name)`: save and load the learner's state (weights and optimizer).
    Returns (base, after_own, after_pair) with after_pair keyed (i, j)."""
    domains = list(domains)
    if len(domains) < 2 or len(set(domains)) != len(domains):
        raise ValueError(f"transfer probes need two or more distinct domains, got {domains}")
    base = {d: score(d, "base") for d in domains}
    snapshot("base")
    at = "base"
    after_own: dict[str, float] = {}
    after_pair: dict[tuple[str, str], float] = {}
    for i in domains:
        if at != "base":
            restore("base")
        train(i, i)
        after_own[i] = score(i, i)
        snapshot("own")
        at = "own"
        for j in domains:
            if j == i:
                continue
            if at != "own":
                restore("own")
            at = f"{i}>{j}"
            train(j, at)
            after_pair[(i, j)] = score(i, at)
    restore("base")
    return base, after_own, after_pair


def summarise(domains: Sequence[str], probe_steps: int, base: dict, after_own: dict, after_pair: dict) -> TransferProbe:
    transfer = estimate_transfer(after_own, after_pair)
    order = best_order(domains, transfer)
    predicted = {}
    if len(domains) <= 6:
        ranked = sorted(permutations(domains), key=lambda o: -predicted_score(o, transfer))
        predicted = {">".join(o): round(predicted_score(o, transfer), 6) for o in ranked}
    return TransferProbe(
        list(domains),
        probe_steps,
        base,
        after_own,
        {i: {j: v for (a, j), v in after_pair.items() if a == i} for i in domains},
        transfer,
        order,
        predicted,
    )


def domain_score(metrics: dict) -> float:
    """The held-out score a probe compares: accuracy where defined, else mean reward."""
    return metrics["accuracy"] if metrics.get("accuracy") is not None else metrics["reward_mean"]


def load_transfer(run) -> dict | None:
    """The probes' result of an earlier session of this run (None if they never finished)."""
    path = run.path / TRANSFER_FILE
    return json.loads(path.read_text()) if path.exists() else None


def probe_run(cfg, parts, run, domains: Sequence[str], probe_steps: int, prompts_per_step: int) -> dict:
    """Probe the transfer between `domains` with the run's own actors, before it trains.

    Leaves the learner, the engines (weights as version 0), the task cursors, the entropy
    controllers and the RNG as they were, and checks the learner's weights digest against the
    one it had before probing (RuntimeError if they differ)."""
    folder = run.path / "probes"
    shutil.rmtree(folder, ignore_errors=True)  # a probe cut short by a restart starts over
    (run.path / PROBES_FILE).unlink(missing_ok=True)
    start_state = driver_state(parts, LoopState(step=0, policy_version=0))
    digest = parts.learner.weights_digest()
    counter = {"state": LoopState(step=0, policy_version=0), "stale": False}
    entropy_states: dict[str, dict] = {}

    def sync_if_stale() -> None:  # after a restore, before the engines generate again
        if counter["stale"]:
            state = counter["state"]
            counter["state"] = LoopState(step=state.step, policy_version=state.policy_version + 1)
            parts.learner.sync_weights(counter["state"].policy_version)
            counter["stale"] = False

    run.event("probe_start", domains=list(domains), probe_steps=probe_steps, steps=len(domains) ** 2 * probe_steps)

    def train(domain: str, stage: str) -> None:
        sync_if_stale()
        for _ in range(probe_steps):
            plan = StepPlan(
                step=counter["state"].step + 1,
                status="train",
                schedule_version=0,
                stage=stage,
                kind=StageKind.RL,
                prompts_per_domain={domain: prompts_per_step},
            )
            record, counter["state"] = train_step(cfg, parts, counter["state"], plan)
            run.append(PROBES_FILE, {**record, "kind": "probe", "probe_stage": stage})
            log.info(
                "probe %s, step %d: %s",
                stage,
                counter["state"].step,
                " ".join(f"{d} R {m['reward_mean']:.2f}" for d, m in record["domains"].items()),
            )

    def probe_prompts(domain: str) -> list:
        return parts.sources[domain].probe_prompts(cfg.domains[domain].eval.prompts)

    def score(domain: str, stage: str) -> float:
        sync_if_stale()
        # scored on the domain's probe split (training-side prompts), never on the held-out one
        # the run reports: choosing the order on eval prompts would bias the eval the choice is judged by
        record = eval_record(cfg, parts, [domain], counter["state"], prompts_of=probe_prompts)
        run.append(PROBES_FILE, {**record, "kind": "probe_eval", "probe_stage": stage})
        return domain_score(record["domains"][domain])

    def snapshot(name: str) -> None:
        target = folder / name
        shutil.rmtree(target, ignore_errors=True)
        parts.learner.save_checkpoint(target, {"probe": name})
        entropy_states[name] = parts.entropy.state_dict()  # adaptive coefficients go back too

    def restore(name: str) -> None:
        parts.learner.load_checkpoint(folder / name)
        parts.entropy.load_state_dict(entropy_states[name])
        counter["stale"] = True

    base, after_own, after_pair = measure_transfer(
        domains, train=train, score=score, snapshot=snapshot, restore=restore
    )
    restore_driver_state(parts, start_state)
    if parts.learner.weights_digest() != digest:
        raise RuntimeError("the learner's weights after the transfer probes differ from the weights before them")
    parts.learner.sync_weights(0)  # the engines serve the base weights again
    shutil.rmtree(folder, ignore_errors=True)
    result = summarise(domains, probe_steps, base, after_own, after_pair)
    run.write_json(TRANSFER_FILE, result.to_json())
    run.event("probe_end", order=result.order, transfer=result.transfer)
    log.info(
        "transfer probes: order %s (B[i][j], what training j did to i: %s)",
        " > ".join(result.order),
        {i: {j: round(v, 3) for j, v in row.items()} for i, row in result.transfer.items()},
    )
    return result.to_json()
