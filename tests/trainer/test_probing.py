"""Transfer probes (schedule.policy: bwt): the procedure with fakes, then wired to the loop with
the in-process fakes of test_loop. The real actors are covered by tests/cluster/test_bwt_probe.py."""

import dataclasses
import hashlib
import json

import pytest

from counterpoint.trainer.probing import PROBES_FILE, TRANSFER_FILE, measure_transfer, probe_run, summarise
from counterpoint.trainer.run_folder import RunFolder

from .fakes import FakeLearner, FakeRollout, fake_config, fake_parts


class FakeModel:
    """A fake learner state: the domains trained so far, in order. Scores follow a made-up
    transfer table: each own step +0.5, and each later step of another domain adds `effect`."""

    EFFECT = {
        ("math", "code"): 0.1,
        ("math", "creative"): -0.4,
        ("code", "math"): 0.0,
        ("code", "creative"): -0.2,
        ("creative", "math"): 0.05,
        ("creative", "code"): 0.0,
    }

    def __init__(self):
        self.trained: list[str] = []
        self.saved: dict[str, list[str]] = {}
        self.calls: list[tuple] = []

    def train(self, domain, stage):
        self.calls.append(("train", domain, stage))
        self.trained.append(domain)

    def score(self, domain, stage):
        self.calls.append(("score", domain, stage))
        if domain not in self.trained:
            return 0.0
        first = self.trained.index(domain)
        return 0.5 + sum(self.EFFECT[(domain, d)] for d in self.trained[first + 1 :] if d != domain)

    def snapshot(self, name):
        self.calls.append(("snapshot", name))
        self.saved[name] = list(self.trained)

    def restore(self, name):
        self.calls.append(("restore", name))
        self.trained = list(self.saved[name])


def test_measure_transfer_probes_every_ordered_pair_and_ends_at_the_base():
    model = FakeModel()
    domains = ["math", "code", "creative"]
    base, own, pair = measure_transfer(
        domains, train=model.train, score=model.score, snapshot=model.snapshot, restore=model.restore
    )
    assert base == {"math": 0.0, "code": 0.0, "creative": 0.0}
    assert own == {"math": 0.5, "code": 0.5, "creative": 0.5}
    assert pair == {(i, j): pytest.approx(0.5 + FakeModel.EFFECT[(i, j)]) for i in domains for j in domains if i != j}
    assert model.trained == []  # back at the base
    trains = [c for c in model.calls if c[0] == "train"]
    assert len(trains) == 9  # T² probe stages
    assert [c[2] for c in trains[:3]] == ["math", "math>code", "math>creative"]
    # no restore where the weights are already right: the base before the first domain, the
    # own snapshot before the first pair
    assert model.calls[:6] == [
        ("score", "math", "base"),
        ("score", "code", "base"),
        ("score", "creative", "base"),
        ("snapshot", "base"),
        ("train", "math", "math"),
        ("score", "math", "math"),
    ]
    assert model.calls[6:8] == [("snapshot", "own"), ("train", "code", "math>code")]
    assert model.calls[-1] == ("restore", "base")


def test_summary_orders_domains_by_predicted_score():
    model = FakeModel()
    domains = ["creative", "code", "math"]
    result = summarise(
        domains,
        3,
        *measure_transfer(
            domains, train=model.train, score=model.score, snapshot=model.snapshot, restore=model.restore
        ),
    )
    assert result.transfer["math"] == pytest.approx({"code": 0.1, "creative": -0.4})
    # creative hurts what came before it, math helps: creative first, then math (helps creative),
    # and code before math? B[code→math] = 0, B[math→code] = 0.1: math before code.
    # creative > math > code: B[c→m] + B[c→code] + B[m→code] = 0.05 + 0 + 0.1 = 0.15, the best
    assert result.order == ["creative", "math", "code"]
    best = next(iter(result.predicted))
    assert best == "creative>math>code" and result.predicted[best] == pytest.approx(0.15)
    assert len(result.predicted) == 6 and list(result.predicted.values()) == sorted(
        result.predicted.values(), reverse=True
    )


def test_measure_transfer_needs_two_distinct_domains():
    model = FakeModel()
    for domains in (["math"], ["math", "math"]):
        with pytest.raises(ValueError, match="two or more distinct domains"):
            measure_transfer(
                domains, train=model.train, score=model.score, snapshot=model.snapshot, restore=model.restore
            )


class FakeCheckpointLearner(FakeLearner):
    """The loop's fake learner with a fake 'weights' state: the domains trained, in order.
    Checkpoints save and load it; math answers are right after a math step until another domain
    trains (a fake forgetting)."""

    def __init__(self, rollout, *, restores=True):
        super().__init__(rollout)
        self.weights: list[str] = []
        self.restores = restores
        rollout.learner = self

    def train_step(self, plan, entropy_coefs, kind, measure_rank=False):
        self.weights += sorted({d for shards in plan.shards for s in shards for d in s.domains})
        return super().train_step(plan, entropy_coefs, kind)

    def save_checkpoint(self, directory, client_state):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "weights.json").write_text(json.dumps(self.weights))

    def load_checkpoint(self, directory):
        if self.restores:
            self.weights = json.loads((directory / "weights.json").read_text())
        return {}

    def weights_digest(self):
        return hashlib.sha256(json.dumps(self.weights).encode()).hexdigest()


class FakeForgettingRollout(FakeRollout):
    """Right math answers exactly when the fake learner's last step trained math."""

    def generate(self, prompts, *, samples_per_prompt, max_tokens, temperature):
        out = super().generate(
            prompts, samples_per_prompt=samples_per_prompt, max_tokens=max_tokens, temperature=temperature
        )
        knows_math = bool(self.learner.weights) and self.learner.weights[-1] == "math"
        answer = lambda s: " " + (s.prompt.reference["answer"] if knows_math else "0")  # noqa: E731
        return [dataclasses.replace(s, response_text=answer(s)) if s.prompt.domain == "math" else s for s in out]


def _probe_parts(tmp_path, **learner_kwargs):
    parts = fake_parts(fake_config(1), RunFolder(tmp_path / "schedule"))
    parts.rollout = FakeForgettingRollout()
    parts.learner = FakeCheckpointLearner(parts.rollout, **learner_kwargs)
    parts.planner = None  # as in a run: the schedule is made after the probes
    return parts


def test_probe_run_measures_forgetting_and_restores_everything(tmp_path):
    parts = _probe_parts(tmp_path)
    run = RunFolder(tmp_path / "run")
    cursors = {d: s.state_dict() for d, s in parts.sources.items()}
    alpha = parts.entropy.state_dict()
    result = probe_run(fake_config(1), parts, run, ["math", "creative"], probe_steps=2, prompts_per_step=2)

    assert result["after_own"]["math"] == 1.0 and result["base"]["math"] == 0.0
    assert result["after_pair"]["math"]["creative"] == 0.0  # creative's stage made math forget
    assert result["transfer"]["math"]["creative"] == -1.0
    assert result["order"] == ["creative", "math"]  # so math goes last
    assert json.loads((run.path / TRANSFER_FILE).read_text()) == result
    records = [json.loads(line) for line in (run.path / PROBES_FILE).read_text().splitlines()]
    probes = [r for r in records if r["kind"] == "probe"]
    assert len(probes) == 8  # T² stages × 2 steps
    assert [r["probe_stage"] for r in probes[::2]] == ["math", "math>creative", "creative", "creative>math"]
    assert [set(r["domains"]) for r in probes[::2]] == [{"math"}, {"creative"}, {"creative"}, {"math"}]
    evals = [r for r in records if r["kind"] == "probe_eval"]
    assert [(r["probe_stage"], set(r["domains"])) for r in evals] == [
        ("base", {"math"}),
        ("base", {"creative"}),
        ("math", {"math"}),
        ("math>creative", {"math"}),
        ("creative", {"creative"}),
        ("creative>math", {"creative"}),
    ]
    # policy versions only grow while probing (a restore is a new version for the engines)
    versions = [r["policy_version"] for r in records]
    assert versions == sorted(versions)
    # the run starts where it would have without probes
    assert parts.learner.weights == [] and parts.rollout.version == 0
    assert {d: s.state_dict() for d, s in parts.sources.items()} == cursors
    assert parts.entropy.state_dict() == alpha
    assert not (run.path / "probes").exists()  # snapshots removed
    assert not [r for r in run.read_metrics()]  # the run's own metrics are untouched


def test_probe_run_refuses_to_continue_when_the_weights_did_not_come_back(tmp_path):
    parts = _probe_parts(tmp_path, restores=False)
    with pytest.raises(RuntimeError, match="differ from the weights before"):
        probe_run(
            fake_config(1), parts, RunFolder(tmp_path / "run"), ["math", "creative"], probe_steps=1, prompts_per_step=2
        )
