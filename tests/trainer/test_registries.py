"""The config's discriminated unions and the algorithm registries name the same variants, so a
name the config accepts always has an implementation, and an implementation is reachable."""

from typing import get_args

import pytest

from counterpoint.trainer.algo.advantages import ADVANTAGES
from counterpoint.trainer.algo.aggregation import AGGREGATIONS, DIVIDES_BY
from counterpoint.trainer.algo.losses import POLICY_LOSSES
from counterpoint.trainer.config import Advantage, Aggregation, PolicyLoss


def _tags(union) -> set[str]:
    members = get_args(get_args(union)[0])
    return {m.model_fields["type"].default for m in members}


@pytest.mark.parametrize(
    ("union", "registry", "extra"),
    [
        (Advantage, ADVANTAGES, set()),
        (Aggregation, AGGREGATIONS, set()),
        (PolicyLoss, POLICY_LOSSES, {"sft"}),  # SFT stages use the "sft" loss; no config selects it
    ],
)
def test_union_tags_match_the_registry(union, registry, extra):
    assert _tags(union) | extra == set(registry)


def test_every_aggregation_declares_its_denominator():
    assert set(DIVIDES_BY) == set(AGGREGATIONS)
    assert DIVIDES_BY["token-mean"] == "tokens" and DIVIDES_BY["seq-mean-token-sum"] == "sequences"
