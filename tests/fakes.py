"""Fakes shared by test files: actor bodies that duck-type the real ones and do trivial,
deterministic work, so the Ray layer (cluster/groups.py) can be tested in seconds.

- `FakeEngine` stands for rollout/engine.py `RolloutEngine`: fixed token ids, every sample tagged
  with the policy version (and weights) it has loaded; built again by Ray after a crash, it comes
  back with the base weights (version 0), as the real engine does.
- `FakeRewardWorker` stands for the reward worker: its `Score.info` names its domain and itself.
- `FakeLearnerRank` stands for trainer/learner.py `Learner`: records its setup and steps.

Faults are armed from the test through flag files in a folder the actor is given (`arm`): the
actor consumes the flag (one `os.remove`, so exactly one call trips, and a restarted actor runs
normally) and then exits its process, hangs, or raises. Import as `from tests.fakes import ...`
(pytest's importlib mode resolves `tests` from the rootdir).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from counterpoint.rollout.records import Prompt, Sample, Score, WorkerScores

ACTIONS = ("exit", "hang", "raise")
HANG_S = 300.0
"""A hung call sleeps this long: far past any timeout a test waits for."""


class FakeFault(RuntimeError):
    """What an armed "raise" flag raises inside the actor."""


def arm(flags_dir: str | Path, name: str, method: str, action: str) -> Path:
    """Make the next `method` call of the fake called `name` exit, hang or raise (once)."""
    assert action in ACTIONS, action
    flag = Path(flags_dir) / f"{name}.{method}.{action}"
    flag.touch()
    return flag


def started(flags_dir: str | Path, name: str, method: str) -> Path:
    """The file a hanging call writes once it is inside the call (the moment to kill it)."""
    return Path(flags_dir) / f"{name}.{method}.started"


def wait_for_file(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout_s}s")
        time.sleep(0.05)


def _trip(flags_dir: str | None, name: str, method: str) -> None:
    """Exit, hang or raise if the test armed this call; otherwise nothing."""
    if flags_dir is None:
        return
    for action in ACTIONS:
        try:
            os.remove(Path(flags_dir) / f"{name}.{method}.{action}")
        except FileNotFoundError:
            continue
        if action == "exit":
            os._exit(1)
        if action == "hang":
            started(flags_dir, name, method).write_text(str(os.getpid()))
            time.sleep(HANG_S)
        raise FakeFault(f"{name}.{method}: armed to raise")


class FakeEngine:
    """Duck-types RolloutEngine. A sample's text is `name|weights tag|prompt id|k`."""

    TOKENS = (11, 12, 13, 14)
    PROMPT_TOKENS = (1, 2, 3)

    def __init__(self, name: str, flags_dir: str | None = None):
        self.name, self.flags_dir = name, flags_dir
        self.policy_version, self.weights_tag = 0, "base"  # what the real constructor loads
        self.generate_calls = self.update_calls = 0

    def generate(
        self, prompts: list[Prompt], *, samples_per_prompt: int, max_tokens: int, temperature: float
    ) -> list[Sample]:
        self.generate_calls += 1
        _trip(self.flags_dir, self.name, "generate")
        ids = list(self.TOKENS[:max_tokens])
        return [
            Sample(
                prompt=p,
                prompt_token_ids=list(self.PROMPT_TOKENS),
                response_token_ids=ids,
                response_logprobs=[-0.5] * len(ids),
                response_text=f"{self.name}|{self.weights_tag}|{p.prompt_id}|{k}",
                finish_reason="length",
                policy_version=self.policy_version,
            )
            for p in prompts
            for k in range(samples_per_prompt)
        ]

    def update_weights(self, weights: dict, version: int) -> float:
        self.update_calls += 1
        _trip(self.flags_dir, self.name, "update_weights")
        self.weights_tag, self.policy_version = weights["tag"], version
        return 0.001

    def state(self) -> dict:
        return {
            "pid": os.getpid(),
            "version": self.policy_version,
            "tag": self.weights_tag,
            "generate_calls": self.generate_calls,
            "update_calls": self.update_calls,
        }


class FakeRewardWorker:
    """Duck-types the reward worker: `score(groups, diversity) -> WorkerScores` (no diversity measures).

    reward = the response's length; info names the worker's domain, the worker, the prompt and
    the response it scored, so a test can check where each group went and that it came back."""

    def __init__(self, domain: str, name: str | None = None, flags_dir: str | None = None):
        self.domain, self.name, self.flags_dir = domain, name or f"reward-{domain}", flags_dir

    def score(self, groups: list[tuple[Prompt, list[str]]], diversity=None) -> WorkerScores:
        _trip(self.flags_dir, self.name, "score")
        scores = [
            [
                Score(
                    float(len(r)),
                    None,
                    {"domain": self.domain, "worker": self.name, "prompt_id": p.prompt_id, "response": r},
                )
                for r in responses
            ]
            for p, responses in groups
        ]
        return WorkerScores(scores, 0.01, [{} for _ in groups], {"total": 0.0, "embedding": 0.0})

    def state(self) -> dict:
        return {"pid": os.getpid(), "domain": self.domain}


class FakeLearnerRank:
    """Duck-types Learner. Rank 0 exports weights tagged with its step count (others None)."""

    SUM_KEYS = ("tokens", "entropy_sum", "loss_sum", "mismatch_max")

    def __init__(
        self, rank: int, world_size: int, *, name: str | None = None, flags_dir: str | None = None, **learner_kwargs
    ):
        self.rank, self.world_size = rank, world_size
        self.name, self.flags_dir = name or f"learner-{rank}", flags_dir
        self.kwargs = learner_kwargs
        self.master, self.steps, self.shards = None, 0, []

    def setup(self, master_addr: str, master_port: int) -> dict:
        self.master = (master_addr, master_port)
        return {"rank": self.rank, "setup_s": 0.0}

    def train_step(
        self, minis: list, counts: list, entropy_coefs, kind: str = "rl", measure_rank: bool = False
    ) -> dict:
        _trip(self.flags_dir, self.name, "train_step")
        self.steps += 1
        self.shards.append(list(minis))
        sums = {"tokens": 10.0, "entropy_sum": 2.0 * (self.rank + 1), "loss_sum": 1.0, "mismatch_max": 0.1 * self.rank}
        return {"domains": {"math": sums}, "grad_norm": 0.5 + self.rank, "optimizer_steps": len(minis)}

    def export_weights(self) -> dict | None:
        _trip(self.flags_dir, self.name, "export_weights")
        return {"tag": f"step-{self.steps}"} if self.rank == 0 else None

    def weights_digest(self) -> str | None:
        return f"digest-{self.steps}" if self.rank == 0 else None

    def save_checkpoint(self, directory: str, client_state: dict) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        state = {"steps": self.steps, "client_state": client_state}
        (Path(directory) / f"rank{self.rank}.json").write_text(json.dumps(state))

    def load_checkpoint(self, directory: str) -> dict:
        state = json.loads((Path(directory) / f"rank{self.rank}.json").read_text())
        self.steps = state["steps"]
        return state["client_state"]

    def save_hf_model(self, directory: str) -> None:
        if self.rank == 0:
            Path(directory).mkdir(parents=True, exist_ok=True)
            (Path(directory) / "model.json").write_text(json.dumps({"steps": self.steps}))

    def state(self) -> dict:
        return {
            "pid": os.getpid(),
            "rank": self.rank,
            "master": self.master,
            "steps": self.steps,
            "shards": self.shards,
            "kwargs": self.kwargs,
        }
