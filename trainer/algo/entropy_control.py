"""Entropy bonus and adaptive, per-domain entropy coefficients. Pure: torch only.

The bonus is a per-token term added to the policy loss before aggregation:
`per_token = policy_loss + entropy_bonus(entropy, coef)`. Aggregation is linear, so for a scalar
alpha this is L_pg - alpha * agg(H) (docs/research.md section 3); with one alpha per row (each row's
domain coefficient) and `aggregate_per_domain` it is sum_d w_d * (L_d - alpha_d * agg_d(H)).

Published ablation (2505.22312): a fixed alpha of 1e-4..1e-3 barely moves entropy and 1e-2 makes
it explode, hence the adaptive controller, one per domain, each with its own target entropy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import torch


def entropy_bonus(entropy: torch.Tensor, coef: float | torch.Tensor) -> torch.Tensor:
    """Per-token entropy bonus -coef * H_t, to add to a per-token loss before aggregating.

    entropy: (B, T) full-vocabulary entropy of the policy at each token, *with* its gradient
    (`entropy.logprobs_and_entropy`). coef: a float, or (B,) one coefficient per row (e.g.
    `DomainEntropyCoefficients.coefs(domains)[domain_ids]`). Returns (B, T).
    """
    if isinstance(coef, torch.Tensor) and coef.dim() == 1:
        coef = coef.to(device=entropy.device, dtype=entropy.dtype)[:, None]
    return -coef * entropy


class AdaptiveEntropyController:
    """Adaptive entropy coefficient of Skywork-OR1 (arXiv 2505.22312).

    alpha starts at 0. After each step, given the step's measured mean token entropy H:
    alpha += step_size if H < target else alpha -= step_size, then clamp to [0, max_coef].
    The coefficient used in the loss, `coef`, is alpha while the last measured H < target and 0
    otherwise (the bonus only applies below target). Defaults: target 0.2, step_size 1e-4,
    max_coef 5e-3. Call `update` once per optimizer step; checkpoint `state_dict()`.
    """

    def __init__(self, target: float = 0.2, step_size: float = 1e-4, max_coef: float = 5e-3):
        if not step_size > 0 or not max_coef >= 0 or not target >= 0:
            raise ValueError(f"need target >= 0, step_size > 0, max_coef >= 0: {target}, {step_size}, {max_coef}")
        self.target, self.step_size, self.max_coef = float(target), float(step_size), float(max_coef)
        self.alpha = 0.0
        self.last_entropy: float | None = None

    @property
    def below_target(self) -> bool:
        return self.last_entropy is not None and self.last_entropy < self.target

    @property
    def coef(self) -> float:
        """The coefficient for the next loss: alpha if the last entropy was below target, else 0."""
        return self.alpha if self.below_target else 0.0

    def update(self, entropy: float) -> float:
        """Apply the rule for one step's measured entropy; returns the new `coef`."""
        self.last_entropy = float(entropy)
        delta = self.step_size if self.below_target else -self.step_size
        self.alpha = min(max(self.alpha + delta, 0.0), self.max_coef)
        return self.coef

    def state_dict(self) -> dict:
        return {"alpha": self.alpha, "last_entropy": self.last_entropy, "target": self.target}

    def load_state_dict(self, state: Mapping) -> None:
        self.alpha = float(state["alpha"])
        self.target = float(state.get("target", self.target))
        self.last_entropy = None if state["last_entropy"] is None else float(state["last_entropy"])

    def metrics(self) -> dict[str, float]:
        entropy = float("nan") if self.last_entropy is None else self.last_entropy
        return {
            "entropy_alpha": self.alpha,
            "entropy_coef": self.coef,
            "entropy_target": self.target,
            "entropy_measured": entropy,
        }


class EntropySpec(Protocol):
    """What a domain's entropy control says (the config's `EntropyControl` has these fields)."""

    coef: float
    adaptive: bool
    step_size: float
    max_coef: float


class DomainEntropyCoefficients:
    """Every domain's entropy-bonus coefficient. Lives in the driver; the learner receives plain
    coefficients.

    `specs`: {domain: its entropy control}. The targets come from the schedule only (its stage's
    `entropy_target`s, given to `set_targets` every step): a domain with a target is adaptive,
    with its spec's step size and cap; a domain without one has its spec's fixed `coef` (0 by
    default, and for a domain configured adaptive whose target an operator cleared). A
    controller keeps its alpha while its target is away and picks up from there when it returns.
    """

    def __init__(self, specs: Mapping[str, EntropySpec]):
        self.specs = dict(specs)
        self.controllers: dict[str, AdaptiveEntropyController] = {}
        self.targeted: set[str] = set()

    def coef(self, domain: str) -> float:
        if domain in self.targeted:
            return self.controllers[domain].coef
        spec = self.specs.get(domain)
        return spec.coef if spec is not None and not spec.adaptive else 0.0

    def coefs(self, domains: Sequence[str]) -> torch.Tensor:
        """(D,) float32 in the order of `domains`."""
        return torch.tensor([self.coef(d) for d in domains], dtype=torch.float32)

    def set_targets(self, targets: Mapping[str, float]) -> None:
        """The schedule's entropy budgets for this step (all of them: a domain missing has none)."""
        for name, target in targets.items():
            if name not in self.controllers:
                self.controllers[name] = self._controller(name, target)
            self.controllers[name].target = float(target)
        self.targeted = set(targets)

    def update(self, entropies: Mapping[str, float]) -> None:
        """After a step: feed each targeted domain its measured mean token entropy."""
        for name, h in entropies.items():
            if name in self.targeted:
                self.controllers[name].update(h)

    def metrics(self, domain: str) -> dict[str, float]:
        if domain in self.targeted:
            return self.controllers[domain].metrics()
        return {"entropy_coef": self.coef(domain)}

    def state_dict(self) -> dict:
        return {
            "controllers": {name: c.state_dict() for name, c in self.controllers.items()},
            "targeted": sorted(self.targeted),
        }

    def load_state_dict(self, state: Mapping) -> None:
        unknown = sorted(set(state["controllers"]) - set(self.specs))
        if unknown:
            raise KeyError(f"the checkpoint has entropy controllers for domains this run does not have: {unknown}")
        self.controllers = {}
        for name, saved in state["controllers"].items():
            self.controllers[name] = self._controller(name, saved["target"])
            self.controllers[name].load_state_dict(saved)
        self.targeted = set(state["targeted"])

    def _controller(self, name: str, target: float) -> AdaptiveEntropyController:
        spec = self.specs.get(name)
        if spec is None:
            raise KeyError(f"no entropy control for domain {name!r}; known: {sorted(self.specs)}")
        return AdaptiveEntropyController(target, step_size=spec.step_size, max_coef=spec.max_coef)
