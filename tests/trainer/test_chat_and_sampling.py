"""Chat templates (`model.chat_template`) and per-domain sampling (`domains.<d>.sampling`): prompts
rendered once in the driver and tokenized as the engine tokenizes them, one engine call per
sampling setting, over-long prompts skipped and counted."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from counterpoint.config import config_from_dict
from counterpoint.rollout.domains import task_source
from counterpoint.rollout.engine import RolloutEngine
from counterpoint.trainer.batch import encode_demonstration
from counterpoint.trainer.chat import chat_renderer, check_chat_template, prompt_counter, rendered_sources
from counterpoint.trainer.config import ChatTemplateConfig
from counterpoint.trainer.curriculum.plan import StageKind, StepPlan
from counterpoint.trainer.evaluation import eval_record
from counterpoint.trainer.loop import LoopState, train_step
from counterpoint.trainer.run_folder import RunFolder

from .fakes import FakeRollout, fake_config, fake_parts

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]


def tokenizer(template: str | None = TEMPLATE) -> PreTrainedTokenizerFast:
    """A word-level tokenizer that adds BOS to raw text (as Llama-style ones do), built here."""
    words = ["What", "is", "2", "plus", "?", "Be", "brief", "."]
    vocab = {t: i for i, t in enumerate([*SPECIALS, "[UNK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(r"<\|[a-z]+\|>", "isolated"), pre_tokenizers.WhitespaceSplit()]
    )
    tok.add_special_tokens(SPECIALS)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="[UNK]")
    fast.chat_template = template
    return fast


def test_prompts_are_rendered_through_the_template_and_tokenized_once():
    tok = tokenizer()
    render = chat_renderer(tok, ChatTemplateConfig(system_prompt="Be brief ."))
    assert render("What is 2 plus 2 ?") == "<|system|>Be brief .<|end|><|user|>What is 2 plus 2 ?<|end|><|assistant|>"
    assert chat_renderer(tok, ChatTemplateConfig(apply=False)) is None
    assert chat_renderer(tokenizer(None), ChatTemplateConfig()) is None  # auto: no template, raw text
    with pytest.raises(
        ValueError, match=r"model.chat_template.apply: true, but the tokenizer of m has no chat template"
    ):
        check_chat_template(tokenizer(None), ChatTemplateConfig(apply=True), "m")
    check_chat_template(tok, ChatTemplateConfig(apply=True), "m")

    cfg = fake_config(1)
    sources = rendered_sources({"math": task_source("math", cfg.domains["math"], 0)}, tok, ChatTemplateConfig())
    ((prompt, demo),) = sources["math"].next_batch(1)
    assert prompt.rendered == f"<|user|>{prompt.text}<|end|><|assistant|>" and prompt.model_input == prompt.rendered
    assert all(p.rendered.startswith("<|user|>") for p in sources["math"].eval_prompts())
    assert sources["math"].state_dict() == {"cursor": 1, "seed": 0}

    # the engine, the learner's SFT path and the length check see the same ids: no BOS before the template's
    engine = RolloutEngine.__new__(RolloutEngine)
    engine.llm = SimpleNamespace(get_tokenizer=lambda: tok)
    ids = engine._input(prompt)["prompt_token_ids"]
    template_start = tok.convert_tokens_to_ids("<|user|>")
    assert ids[0] == template_start and tok.bos_token_id not in ids
    assert encode_demonstration(tok, prompt.model_input, demo)[0] == ids
    assert prompt_counter(tok)(prompt) == len(ids)
    raw = prompt.__class__("math", "x", "What is 2 plus 2 ?")
    assert engine._input(raw) == raw.text and prompt_counter(tok)(raw) == 1 + 6  # raw text: BOS + 6 words


class RecordingRollout(FakeRollout):
    def __init__(self):
        super().__init__()
        self.calls = []

    def generate(self, prompts, *, samples_per_prompt, max_tokens, temperature, **sampling):
        self.calls.append(({p.domain for p in prompts}, max_tokens, sampling))
        return super().generate(
            prompts, samples_per_prompt=samples_per_prompt, max_tokens=max_tokens, temperature=temperature
        )


def test_each_sampling_setting_is_its_own_engine_call_and_long_prompts_are_skipped(tmp_path):
    base = fake_config(1).model_dump()
    base["domains"]["creative"]["sampling"] = {"top_p": 0.9, "top_k": 20, "stop": ["\n"], "max_response_tokens": 3}
    base["domains"]["math"]["sampling"] = {"max_prompt_tokens": 100}
    cfg = config_from_dict(base)
    run = RunFolder(tmp_path / "run")
    parts = fake_parts(cfg, run)
    parts.rollout = RecordingRollout()
    parts.prompt_tokens = lambda p: 1000 if "gets" in p.text else 10  # the "add" problems are too long
    plan = StepPlan(
        step=1,
        status="train",
        schedule_version=1,
        stage="s",
        kind=StageKind.RL,
        prompts_per_domain={"math": 6, "creative": 3},
        entropy_targets={},
        reason="test",
    )
    record, _ = train_step(cfg, parts, LoopState(0, 0), plan)
    assert sorted(parts.rollout.calls, key=lambda c: c[1]) == [
        ({"creative"}, 3, {"top_p": 0.9, "top_k": 20, "stop": ["\n"]}),
        ({"math"}, 5, {}),  # generation's defaults, and nothing the fake rollout does not know
    ]
    math = record["domains"]["math"]
    assert math["samples"] == 6 * 4 and math["prompts_skipped_too_long"] > 0
    assert record["prompts_skipped_too_long"] == math["prompts_skipped_too_long"]
    assert record["domains"]["creative"]["prompts_skipped_too_long"] == 0
    evaluated = eval_record(cfg, parts, ["math", "creative"], LoopState(1, 1))
    assert evaluated["domains"]["math"]["prompts_skipped_too_long"] == sum(
        "gets" in p.text for p in parts.sources["math"].eval_prompts()
    )


def test_a_prompt_longer_than_any_step_can_take_stops_the_step(tmp_path):
    base = fake_config(1).model_dump()
    base["domains"]["math"]["sampling"] = {"max_prompt_tokens": 5}
    cfg = config_from_dict(base)
    parts = fake_parts(cfg, RunFolder(tmp_path / "run"))
    parts.prompt_tokens = lambda p: 10
    plan = StepPlan(
        step=1,
        status="train",
        schedule_version=1,
        stage="s",
        kind=StageKind.RL,
        prompts_per_domain={"math": 2},
        entropy_targets={},
        reason="test",
    )
    with pytest.raises(RuntimeError, match=r"raise domains.math.sampling.max_prompt_tokens"):
        train_step(cfg, parts, LoopState(0, 0), plan)
