"""Prompts through the model's chat template (`model.chat_template`), rendered in the driver.

Every prompt a source yields (train, eval, and the prompts of SFT demonstrations) gets
`Prompt.rendered`: `tokenizer.apply_chat_template([system?, user], tokenize=False,
add_generation_prompt=True)`. The engine tokenizes a rendered prompt without special tokens (the
template wrote its own), as the SFT path does, so every side sees the same ids. Rewards keep
reading `Prompt.text`, the task itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from counterpoint.rollout.records import Prompt


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def check_chat_template(tokenizer, cfg, where: str) -> None:
    """`apply: true` on a tokenizer without a template is an error (`where`: the model's folder)."""
    if cfg.apply is True and not has_chat_template(tokenizer):
        raise ValueError(
            f"model.chat_template.apply: true, but the tokenizer of {where} has no chat template; "
            "set it to auto or false (raw text), or use a model whose tokenizer has one"
        )


def chat_renderer(tokenizer, cfg) -> Callable[[str], str] | None:
    """The function that renders a prompt text, or None when no template is applied."""
    if cfg.apply is False or not has_chat_template(tokenizer):
        return None
    system = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []

    def render(text: str) -> str:
        messages = [*system, {"role": "user", "content": text}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    return render


def prompt_counter(tokenizer) -> Callable[[Prompt], int]:
    """A prompt's length in tokens as the engine tokenizes it: a rendered prompt without special
    tokens, raw text with the tokenizer's default ones (vLLM's default)."""

    def count(prompt: Prompt) -> int:
        if prompt.rendered is not None:
            return len(tokenizer(prompt.rendered, add_special_tokens=False)["input_ids"])
        return len(tokenizer(prompt.text)["input_ids"])

    return count


class RenderedSource:
    """A task source whose prompts come rendered; cursor, state and domain are the source's."""

    def __init__(self, source, render: Callable[[str], str]):
        self.source = source
        self.render = render
        self._eval: list[Prompt] | None = None

    @property
    def domain(self):
        return self.source.domain

    def _rendered(self, prompt: Prompt) -> Prompt:
        return replace(prompt, rendered=self.render(prompt.text))

    def next_batch(self, n: int) -> list[tuple[Prompt, str]]:
        return [(self._rendered(p), demo) for p, demo in self.source.next_batch(n)]

    def eval_prompts(self) -> list[Prompt]:
        if self._eval is None:
            self._eval = [self._rendered(p) for p in self.source.eval_prompts()]
        return self._eval

    def state_dict(self) -> dict:
        return self.source.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.source.load_state_dict(state)


def rendered_sources(sources: dict, tokenizer, cfg) -> dict:
    """`sources` with their prompts rendered through the chat template, when one is applied."""
    render = chat_renderer(tokenizer, cfg)
    return sources if render is None else {d: RenderedSource(s, render) for d, s in sources.items()}
