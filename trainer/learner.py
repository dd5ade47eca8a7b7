"""One learner rank: a DeepSpeed engine over the policy, stepping on its shard of each batch.

A plain class: the cluster layer wraps it in a Ray actor (one per rank, rank 0 gives the master
address); a test may build a single rank directly. All ranks run `train_step` together with
their own shard; DeepSpeed averages gradients over ranks, so each rank scales its loss by the
world size over the global token count and the sum equals the token mean of the global batch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from counterpoint.trainer.batch import TrainBatch
from counterpoint.trainer.deepspeed_compat import prepare_deepspeed
from counterpoint.trainer.entropy import logprobs_and_entropy
from counterpoint.trainer.losses import ppo_clip_loss

DOMAIN_SUMS = ("tokens", "entropy_sum", "clipped_sum", "mismatch_sum", "mismatch_max", "loss_sum")


class Learner:
    def __init__(self, rank: int, world_size: int, model_dir: str | Path, cfg, *, micro_batches_per_step: int, seed: int, cache_dir: str | Path, threads: int = 1):
        self.rank, self.world_size = rank, world_size
        self.model_dir, self.cfg = str(model_dir), cfg
        self.micro_batches = micro_batches_per_step
        self.seed, self.cache_dir, self.threads = seed, cache_dir, threads
        self.engine = None

    def setup(self, master_addr: str, master_port: int) -> dict:
        """Join the process group and build the DeepSpeed engine; every rank calls this at once."""
        started = time.time()
        os.environ.update(MASTER_ADDR=master_addr, MASTER_PORT=str(master_port), RANK=str(self.rank),
                          WORLD_SIZE=str(self.world_size), LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        deepspeed = prepare_deepspeed(self.cache_dir)
        deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay)
        ds_config = {
            "train_micro_batch_size_per_gpu": self.cfg.micro_batch_sequences,
            "gradient_accumulation_steps": self.micro_batches,
            "train_batch_size": self.cfg.micro_batch_sequences * self.micro_batches * self.world_size,
            "gradient_clipping": self.cfg.grad_clip,
            "zero_optimization": {"stage": self.cfg.zero_stage},
            "bf16": {"enabled": self.cfg.dtype == "bfloat16"},
            "steps_per_print": 10**9,
            "wall_clock_breakdown": False,
        }
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
        return {"rank": self.rank, "deepspeed": deepspeed.__version__, "setup_s": round(time.time() - started, 2)}

    def train_step(self, shard: TrainBatch, global_tokens: float) -> dict:
        """One optimizer step over this rank's shard; returns per-domain sums and the grad norm.

        Uses one mini-batch per rollout, so `logp_old` is the detached `logp` of this very forward:
        exact (no training-inference mismatch enters the ratio) and free.
        """
        cfg = self.cfg.loss
        sums = {d: dict.fromkeys(DOMAIN_SUMS, 0.0) for d in shard.domains}
        chunks = torch.arange(len(shard)).tensor_split(self.micro_batches)
        for rows in chunks:
            mb = shard.select(rows) if len(rows) else None
            if mb is None:  # an empty micro-batch still joins the gradient all-reduce
                loss = sum(p.sum() for p in self.engine.module.parameters()) * 0.0
                self.engine.backward(loss, scale_wrt_gas=False)
                self.engine.step()
                continue
            logits = self.engine(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits[:, :-1]
            logp, entropy = logprobs_and_entropy(logits, mb.input_ids[:, 1:])
            adv = mb.advantages[:, None].expand_as(logp)
            out = ppo_clip_loss(logp, logp.detach(), adv, cfg.clip_low, cfg.clip_high)
            mask = mb.response_mask
            loss = (out.loss * mask).sum() * (self.world_size / max(global_tokens, 1.0))
            self.engine.backward(loss, scale_wrt_gas=False)
            self.engine.step()
            self._accumulate(sums, mb, mask, entropy.detach(), out, logp.detach())
        grad_norm = self.engine.get_global_grad_norm()
        return {"domains": sums, "grad_norm": float(grad_norm) if grad_norm is not None else None}

    @staticmethod
    def _accumulate(sums, mb: TrainBatch, mask, entropy, out, logp) -> None:
        mismatch = (logp - mb.engine_logprobs).abs() * mask
        for i, name in enumerate(mb.domains):
            rows = mb.domain_ids == i
            if not rows.any():
                continue
            m = mask[rows]
            s = sums[name]
            s["tokens"] += float(m.sum())
            s["entropy_sum"] += float((entropy[rows] * m).sum())
            s["clipped_sum"] += float((out.clipped[rows].float() * m).sum())
            s["mismatch_sum"] += float(mismatch[rows].sum())
            s["mismatch_max"] = max(s["mismatch_max"], float(mismatch[rows].max()))
            s["loss_sum"] += float((out.loss[rows].detach() * m).sum())

    def export_weights(self) -> dict | None:
        """Full weights with HF names on rank 0 (None elsewhere); every rank must call it."""
        params = list(self.engine.module.parameters())
        if self.cfg.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
                state = {k: v.detach().float().clone() for k, v in self.engine.module.state_dict().items()}
        else:
            state = {k: v.detach().float().clone() for k, v in self.engine.module.state_dict().items()}
        return state if self.rank == 0 else None

    def save_checkpoint(self, directory: str | Path, client_state: dict) -> None:
        """DeepSpeed checkpoint (weights, optimizer, scheduler) plus `client_state`; all ranks call."""
        self.engine.save_checkpoint(str(directory), tag="learner", client_state=client_state)

    def load_checkpoint(self, directory: str | Path) -> dict:
        _, client_state = self.engine.load_checkpoint(str(directory), tag="learner")
        return client_state or {}

    def save_hf_model(self, directory: str | Path) -> None:
        """Rank 0 writes the policy as a Hugging Face model folder (loadable anywhere)."""
        if self.rank == 0:
            state = self.export_weights()
            self.engine.module.save_pretrained(str(directory), state_dict=state, safe_serialization=True)
        else:
            self.export_weights()
