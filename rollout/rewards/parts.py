"""Per-domain means of the reward parts a reward reports per sample, for the step metrics. Pure.

A creative reward puts its parts under `Score.info["parts"]` (quality, fluency, topic, form,
novelty, diversity, judge) and `Score.info["fluency_failed"]`; `part_metrics` averages each
numeric part over the samples that report it, as `reward_<part>_mean`, and gives
`fluency_failed_fraction` over the samples that ran the fluency check. A domain whose samples
report parts gets every name (None for a part no sample reports, as `accuracy` is None for
creative); samples without parts (math, code) add nothing, so those domains are unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

PART_NAMES = ("quality", "fluency", "topic", "form", "novelty", "diversity", "judge")
"""The parts a creative reward reports; `reward_<part>_mean` is a per-domain metric for each."""
PART_METRICS = {
    **{
        f"reward_{p}_mean": f"mean of the reward's `{p}` part over the samples reporting it (creative)"
        for p in PART_NAMES
    },
    "fluency_failed_fraction": "share of the samples that failed the fluency check (creative)",
}
"""The metrics `part_metrics` can produce, with their meaning."""


def part_metrics(scores: Iterable) -> dict[str, float | None]:
    """`reward_<part>_mean` for each known part (None where no score's `info["parts"]` has it) and
    `fluency_failed_fraction`, when any score reports parts; {} otherwise."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    checked = failed = 0
    for score in scores:
        info = getattr(score, "info", None) or {}
        for name, value in (info.get("parts") or {}).items():
            if name in PART_NAMES and isinstance(value, int | float) and not isinstance(value, bool):
                sums[name] += float(value)
                counts[name] += 1
        if "fluency_failed" in info:
            checked += 1
            failed += bool(info["fluency_failed"])
    if not counts and not checked:
        return {}  # not a domain whose reward reports parts
    out: dict[str, float | None] = {
        f"reward_{name}_mean": sums[name] / counts[name] if counts[name] else None for name in PART_NAMES
    }
    out["fluency_failed_fraction"] = failed / checked if checked else None
    return out
