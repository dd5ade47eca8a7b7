"""Entropy bonus and adaptive, per-domain entropy coefficients. Pure: torch only.

The bonus is a per-token term added to the policy loss before aggregation:
`per_token = policy_loss + entropy_bonus(entropy, coef)`. Aggregation is linear, so for a scalar
alpha this is L_pg - alpha * agg(H) (RESEARCH.md section 3); with one alpha per row (each row's
domain coefficient) and `aggregate_per_domain` it is sum_d w_d * (L_d - alpha_d * agg_d(H)).

Published ablation (2505.22312): a fixed alpha of 1e-4..1e-3 barely moves entropy and 1e-2 makes
it explode, hence the adaptive controller, one per domain, each with its own target entropy.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch


def entropy_bonus(entropy: torch.Tensor, coef: float | torch.Tensor) -> torch.Tensor:
    """Per-token entropy bonus -coef * H_t, to add to a per-token loss before aggregating.

    entropy: (B, T) full-vocabulary entropy of the policy at each token, *with* its gradient
    (`entropy.logprobs_and_entropy`). coef: a float, or (B,) one coefficient per row (e.g.
    `PerDomainEntropyControllers.coefs(domains)[domain_ids]`). Returns (B, T).
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


class PerDomainEntropyControllers:
    """One `AdaptiveEntropyController` per domain, each with its own target ("entropy budget").

    targets: {domain name: target entropy}; step_size and max_coef are shared. Keyed by domain
    name, so checkpoints survive a change of domain order.
    """

    def __init__(self, targets: Mapping[str, float], *, step_size: float = 1e-4, max_coef: float = 5e-3):
        self.controllers = {
            name: AdaptiveEntropyController(target, step_size=step_size, max_coef=max_coef)
            for name, target in targets.items()
        }

    def __getitem__(self, domain: str) -> AdaptiveEntropyController:
        if domain not in self.controllers:
            raise KeyError(f"no entropy controller for domain {domain!r}; known: {sorted(self.controllers)}")
        return self.controllers[domain]

    def update(self, entropies: Mapping[str, float]) -> dict[str, float]:
        """Update the domains measured this step ({name: mean token entropy}); returns their coefs.

        A domain absent from this step's batch keeps its state.
        """
        return {name: self[name].update(h) for name, h in entropies.items()}

    def coefs(self, domains: Sequence[str]) -> torch.Tensor:
        """(D,) float32 coefficients in the order of `domains`, to index with a batch's domain ids."""
        return torch.tensor([self[name].coef for name in domains], dtype=torch.float32)

    def state_dict(self) -> dict[str, dict]:
        return {name: c.state_dict() for name, c in self.controllers.items()}

    def load_state_dict(self, state: Mapping[str, Mapping]) -> None:
        """Restore saved domains; a saved domain with no controller now is an error, a new domain
        (added to the config since) starts fresh."""
        unknown = sorted(set(state) - set(self.controllers))
        if unknown:
            raise KeyError(f"checkpoint has entropy controllers for unknown domains {unknown}")
        for name, s in state.items():
            self.controllers[name].load_state_dict(s)

    def metrics(self) -> dict[str, dict[str, float]]:
        return {name: c.metrics() for name, c in self.controllers.items()}


class DomainEntropyCoefficients:
    """Every domain's entropy-bonus coefficient: a fixed alpha, or an adaptive controller with
    the domain's own target. Lives in the driver; the learner receives plain coefficients.

    fixed: {domain: alpha}; adaptive: {domain: AdaptiveEntropyController}. A domain in neither
    has alpha 0.
    """

    def __init__(self, fixed: Mapping[str, float], adaptive: Mapping[str, AdaptiveEntropyController]):
        overlap = set(fixed) & set(adaptive)
        if overlap:
            raise ValueError(f"domains {sorted(overlap)} are both fixed and adaptive")
        self.fixed, self.adaptive = dict(fixed), dict(adaptive)
        # what the config set, to return to when the schedule drops a domain's target
        self._configured_fixed, self._configured = dict(fixed), dict(adaptive)
        self._configured_targets = {name: c.target for name, c in adaptive.items()}
        self._scheduled: set[str] = set()

    def coef(self, domain: str) -> float:
        if domain in self.adaptive:
            return self.adaptive[domain].coef
        return self.fixed.get(domain, 0.0)

    def coefs(self, domains: Sequence[str]) -> torch.Tensor:
        """(D,) float32 in the order of `domains`."""
        return torch.tensor([self.coef(d) for d in domains], dtype=torch.float32)

    def set_targets(self, targets: Mapping[str, float]) -> None:
        """The live schedule's entropy budgets for this step (all of them: a domain missing here
        has none). A domain given a target becomes adaptive (default step sizes) or has its
        controller's target moved, alpha carrying over; a domain whose target the schedule
        removed goes back to what the config gave it."""
        for name in list(self._scheduled):
            if name not in targets:
                self._scheduled.discard(name)
                configured = self._configured.get(name)
                if configured is None:
                    del self.adaptive[name]
                    self.fixed[name] = self._configured_fixed.get(name, 0.0)
                else:
                    configured.target = self._configured_targets[name]
        for name, target in targets.items():
            if name not in self.adaptive:
                self.fixed.pop(name, None)
                self.adaptive[name] = AdaptiveEntropyController(target)
            self.adaptive[name].target = float(target)
            self._scheduled.add(name)

    def update(self, entropies: Mapping[str, float]) -> None:
        """After a step: feed each adaptive domain its measured mean token entropy."""
        for name, h in entropies.items():
            if name in self.adaptive:
                self.adaptive[name].update(h)

    def metrics(self, domain: str) -> dict[str, float]:
        if domain in self.adaptive:
            return self.adaptive[domain].metrics()
        return {"entropy_coef": self.coef(domain)}

    def state_dict(self) -> dict:
        return {name: c.state_dict() for name, c in self.adaptive.items()}

    def load_state_dict(self, state: Mapping[str, Mapping]) -> None:
        """Restore saved controllers; a domain made adaptive live (a schedule entropy target)
        comes back adaptive, with default step sizes until the schedule sets its target again."""
        for name, s in state.items():
            if name not in self.adaptive:
                self.fixed.pop(name, None)
                self.adaptive[name] = AdaptiveEntropyController()
            self.adaptive[name].load_state_dict(s)
