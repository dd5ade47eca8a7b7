"""A weight update must not leave the engine decoding from KV computed under the old weights.

vLLM keeps prefix caching on by default and `reload_weights` does not clear it, so a prompt the
engine saw before the update would reuse the old weights' KV blocks. The engine (no Ray) generates
greedily, takes new weights, generates the same prompts again, and must agree token for token and
log-prob for log-prob with a fresh engine built on a folder holding the new weights. Two in-process
engines coexist fine (the second starts in about a second; deleting both tears vLLM's process group
down). About a minute on 2 cores, of which ~20 s is the session's tiny-model build.
"""

import gc
import json
import shutil

import pytest
import torch

from counterpoint.rollout.engine import VLLM_ENV, RolloutEngine
from counterpoint.rollout.records import Prompt

# Shared few-shot lines, then a different request each: ~146 tokens a prompt, more than one KV
# block (128 tokens on the CPU build, 16 on GPUs): the prompts' full blocks are what the cache keeps.
PREFIX = (
    "Write a bright line about the river.\nLine: under the river the dark glass hums\n"
    "Write a cold line about the snow.\nLine: the dark snow drifts at dawn\n"
) * 3
REQUESTS = [("pale", "city"), ("warm", "sea"), ("quiet", "forest")]
PROMPTS = [
    Prompt("creative", f"prefix/{i}", f"{PREFIX}Write a {mood} line about the {topic}.\nLine:")
    for i, (mood, topic) in enumerate(REQUESTS)
]
NOISE = 0.2  # per tensor, relative to its std: log-probs move ~0.04, the outputs stay sane


def _generate(engine: RolloutEngine):
    return engine.generate(PROMPTS, samples_per_prompt=1, max_tokens=16, temperature=0.0)


def _block_size(engine: RolloutEngine) -> int:
    cache_config = getattr(getattr(engine.llm.llm_engine, "vllm_config", None), "cache_config", None)
    return getattr(cache_config, "block_size", None) or 16


@pytest.mark.integration
def test_weight_update_invalidates_the_prefix_cache(tmp_path, model_cache, monkeypatch):
    from transformers import AutoModelForCausalLM

    for key, value in VLLM_ENV.items():  # the engine sets these; keep them out of later tests
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(model_cache / "vllm"))
    base = next((model_cache / "models").glob("tiny-*"))
    positions = json.loads((base / "config.json").read_text()).get("max_position_embeddings", 2048)
    settings = dict(max_model_len=min(positions, 256), kv_cache_mib=16, max_num_seqs=8, seed=0, cache_dir=model_cache)

    # New weights: the base model's with noise, saved with the tokenizer for the fresh engine.
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point() and tensor.numel() > 1:
                tensor.add_(NOISE * tensor.std() * torch.randn(tensor.shape, generator=rng))
    new_dir = tmp_path / "new-weights"
    model.save_pretrained(new_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (base / name).exists():
            shutil.copy(base / name, new_dir / name)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    del model

    engine = RolloutEngine(base, **settings)
    fresh = None
    try:
        before = _generate(engine)
        assert all(len(s.prompt_token_ids) >= _block_size(engine) for s in before), "prompts must fill a KV block"
        engine.update_weights(weights, version=1)
        after = _generate(engine)

        fresh = RolloutEngine(new_dir, **settings)
        expected = _generate(fresh)
    finally:
        del engine, fresh
        gc.collect()

    assert [s.policy_version for s in after] == [1, 1, 1]
    for old, got, want in zip(before, after, expected):
        assert got.prompt_token_ids == want.prompt_token_ids == old.prompt_token_ids
        # the update matters: the new weights' log-probs are far from the old ones'
        shared = min(len(old.response_logprobs), len(want.response_logprobs))
        assert max(abs(a - b) for a, b in zip(old.response_logprobs[:shared], want.response_logprobs[:shared])) > 1e-3
        # and the updated engine is the fresh one: same tokens, same log-probs
        assert got.response_token_ids == want.response_token_ids, got.prompt.prompt_id
        assert got.response_logprobs == pytest.approx(want.response_logprobs, abs=1e-4), got.prompt.prompt_id


def test_a_prefix_cache_vllm_cannot_reset_stops_the_update():
    """vLLM answers False while blocks are held: the engine raises before loading anything."""

    class HeldCache:
        def reset_prefix_cache(self):
            return False

        def collective_rpc(self, *args, **kwargs):
            raise AssertionError("weights loaded under a stale prefix cache")

    engine = RolloutEngine.__new__(RolloutEngine)  # no vLLM: only the update path
    engine.llm, engine.policy_version = HeldCache(), 3
    with pytest.raises(RuntimeError, match="could not reset its prefix cache"):
        engine.update_weights({}, version=4)
    assert engine.policy_version == 3
