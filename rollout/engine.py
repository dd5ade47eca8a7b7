"""The rollout engine: an in-process vLLM `LLM` that generates samples with their log-probs.

A plain class (constructed by a Ray actor in production, directly in tests). The engine runs in
the caller's process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), eagerly, with an explicit KV-cache
size; new weights are loaded in place with `reload_weights`, and every sample is tagged with the
policy version that produced it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from counterpoint.rollout.records import Prompt, Sample

VLLM_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine in this process: no spawned workers
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


class RolloutEngine:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_model_len: int,
        kv_cache_mib: int,
        max_num_seqs: int,
        seed: int,
        cache_dir: str | Path,
        dtype: str = "float32",
    ):
        for key, value in VLLM_ENV.items():
            os.environ.setdefault(key, value)
        os.environ.setdefault("VLLM_CACHE_ROOT", str(Path(cache_dir).expanduser() / "vllm"))
        from vllm import LLM

        started = time.time()
        self.llm = LLM(
            model=str(model_dir),
            dtype=dtype,
            enforce_eager=True,
            kv_cache_memory_bytes=kv_cache_mib * 2**20,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            seed=seed,
            disable_log_stats=True,
        )
        self.policy_version = 0
        self.startup_s = time.time() - started
        self.generate([Prompt("warmup", "warmup", "Hello")], samples_per_prompt=1, max_tokens=2, temperature=1.0)

    def generate(
        self,
        prompts: list[Prompt],
        *,
        samples_per_prompt: int,
        max_tokens: int,
        temperature: float,
        top_p: float | None = None,
        top_k: int | None = None,
        stop: list[str] | None = None,
    ) -> list[Sample]:
        """`samples_per_prompt` responses per prompt, grouped by prompt in order.

        temperature 0 decodes greedily (eval); `top_p`, `top_k`, `stop` (None: off) as a domain's
        `sampling` says. Log-probs are those of the sampled tokens under the engine's own
        (unscaled) distribution. A prompt rendered through the chat template goes in as token ids
        tokenized without special tokens: the template wrote its own, so no second BOS is added.
        """
        from vllm import SamplingParams

        extra = {k: v for k, v in (("top_p", top_p), ("top_k", top_k), ("stop", stop)) if v}
        # Without stop strings nothing needs text while decoding: vLLM's incremental
        # detokenizer (and the decoding of every sampled token for its log-prob) is skipped and
        # each response is decoded once at the end, as the detokenizer would (special tokens
        # skipped); 15% of a small model's generation time (docs/performance.md).
        detokenize = bool(stop)
        params = SamplingParams(
            n=samples_per_prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            logprobs=0,
            detokenize=detokenize,
            **extra,
        )
        outputs = self.llm.generate([self._input(p) for p in prompts], params, use_tqdm=False)
        completions = [(prompt, out, c) for prompt, out in zip(prompts, outputs) for c in out.outputs]
        if detokenize:
            texts = [c.text for _, _, c in completions]
        else:
            texts = self.llm.get_tokenizer().batch_decode(
                [list(c.token_ids) for _, _, c in completions], skip_special_tokens=True
            )
        samples = []
        for (prompt, out, completion), text in zip(completions, texts):
            ids = list(completion.token_ids)
            logprobs = [lp[tok].logprob for lp, tok in zip(completion.logprobs, ids)]
            samples.append(
                Sample(
                    prompt=prompt,
                    prompt_token_ids=list(out.prompt_token_ids),
                    response_token_ids=ids,
                    response_logprobs=logprobs,
                    response_text=text,
                    finish_reason=str(completion.finish_reason),
                    policy_version=self.policy_version,
                )
            )
        return samples

    def _input(self, prompt: Prompt):
        if prompt.rendered is None:
            return prompt.text  # vLLM tokenizes it as the model's tokenizer does by default
        ids = self.llm.get_tokenizer()(prompt.rendered, add_special_tokens=False)["input_ids"]
        return {"prompt_token_ids": ids}

    def update_weights(self, weights: dict, version: int) -> float:
        """Load new weights in place (HF parameter names); returns the seconds it took.

        The prefix cache is emptied first: `reload_weights` leaves it alone, and a prompt seen
        before would otherwise be decoded from KV blocks computed under the old weights.
        """
        started = time.time()
        self._reset_prefix_cache()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": list(weights.items())})
        self.policy_version = version
        return time.time() - started

    def _reset_prefix_cache(self) -> None:
        """Drop every cached KV block, or raise if vLLM could not.

        vLLM turns prefix caching on by default for decoder models, hashes blocks by their tokens
        only (not the weights that computed them), and keeps them across `reload_weights`.
        Called before the new weights load, so a failure leaves the engine whole at its old
        version. Nothing runs in between: `generate` returns only when all its requests finished,
        and calls to this object (a Ray actor) are serial.
        """
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is None:  # a vLLM without it: only safe if prefix caching is off
            cache_config = getattr(getattr(self.llm.llm_engine, "vllm_config", None), "cache_config", None)
            if getattr(cache_config, "enable_prefix_caching", True):
                raise RuntimeError("this vLLM cannot reset its prefix cache: stale KV would survive a weight update")
            return
        # Older vLLMs return None; newer ones return False when blocks are still held, i.e. a
        # request is in flight. No retry: an in-process engine only advances inside `generate`,
        # so the blocks would still be held (a request a failed `generate` left behind). Sampling
        # the next step's prompts from stale KV is worse than stopping.
        if reset() is False:
            raise RuntimeError(
                "vLLM could not reset its prefix cache (KV blocks still held by unfinished requests); "
                "refusing to load new weights under a stale cache"
            )
