"""One learner rank: a DeepSpeed engine over the policy, stepping on its shard of each batch.

A plain class: the cluster layer wraps it in a Ray actor (one per rank, rank 0 gives the master
address); a test may build a single rank directly. All ranks run `train_step` together, each on
its own shards of the same mini-batches; the objective (`objective.py`) is normalised by global
counts and DeepSpeed averages gradients over ranks, so each rank multiplies its loss by the
world size and the update is that of the global batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import torch

from counterpoint.trainer.algo.effective_rank import effective_ranks
from counterpoint.trainer.algo.entropy import logprobs_and_entropy
from counterpoint.trainer.algo.objective import DomainLoss, ObjectiveSettings, merge_sums, objective
from counterpoint.trainer.algo.off_policy import behaviour_weights
from counterpoint.trainer.batch import TrainBatch
from counterpoint.trainer.curriculum.plan import StageKind
from counterpoint.trainer.deepspeed_compat import prepare_deepspeed


def objective_settings(cfg, domains: list[str], max_response_tokens: int) -> ObjectiveSettings:
    """The learner config's per-domain losses as explicit names and scalars."""
    losses = {}
    for d in domains:
        spec = cfg.loss_for(d).model_dump()
        losses[d] = DomainLoss(spec.pop("type"), spec)
    return ObjectiveSettings(
        losses,
        cfg.aggregation.type,
        cfg.domain_normalisation,
        cfg.aggregation.norm_constant(max_response_tokens),
        cfg.reference_kl_coef,
    )


class Learner:
    def __init__(
        self,
        rank: int,
        world_size: int,
        model_dir: str | Path,
        cfg,
        *,
        domains: list[str],
        max_response_tokens: int,
        micro_batches: int,
        seed: int,
        cache_dir: str | Path,
        threads: int = 1,
    ):
        self.rank, self.world_size = rank, world_size
        self.model_dir, self.cfg = str(model_dir), cfg
        self.settings = objective_settings(cfg, domains, max_response_tokens)
        self.sft_settings = dataclasses.replace(
            self.settings, losses={d: DomainLoss("sft") for d in domains}, reference_kl_coef=0.0
        )
        self.micro_batches = micro_batches
        """Forward/backward passes per optimizer step (DeepSpeed's gradient accumulation)."""
        self.seed, self.cache_dir, self.threads = seed, cache_dir, threads
        self.generator = torch.Generator().manual_seed(seed * 1000 + rank)  # Clip-Cov's choices
        self.engine = None
        self.reference = None
        self.zero_stage = cfg.zero_stage if world_size > 1 else 0
        """ZeRO partitions over ranks: one rank has nothing to partition, and stage 1's flat
        buffers cost it 40% of an update of a 13M model (docs/performance.md), so it runs 0."""

    def setup(self, master_addr: str, master_port: int) -> dict:
        """Join the process group and build the DeepSpeed engine; every rank calls this at once."""
        started = time.time()
        os.environ.update(
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
            RANK=str(self.rank),
            WORLD_SIZE=str(self.world_size),
            LOCAL_RANK="0",
            LOCAL_WORLD_SIZE="1",
        )
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        deepspeed = prepare_deepspeed(self.cache_dir)
        # NCCL between GPUs; gloo on CPU machines (DeepSpeed picks its CPU accelerator there).
        deepspeed.init_distributed(
            dist_backend="nccl" if torch.cuda.is_available() else "gloo", auto_mpi_discovery=False
        )
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        if self.cfg.reference_kl_coef > 0:
            self.reference = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32).eval()
            if torch.cuda.is_available():
                self.reference.to("cuda")
            self.reference.requires_grad_(False)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay)
        ds_config = {
            "train_micro_batch_size_per_gpu": self.cfg.micro_batch_sequences,
            "gradient_accumulation_steps": self.micro_batches,
            "train_batch_size": self.cfg.micro_batch_sequences * self.micro_batches * self.world_size,
            "gradient_clipping": self.cfg.grad_clip,
            "zero_optimization": {"stage": self.zero_stage},
            "bf16": {"enabled": self.cfg.dtype == "bfloat16"},
            "steps_per_print": 10**9,
            "wall_clock_breakdown": False,
        }
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
        return {
            "rank": self.rank,
            "deepspeed": deepspeed.__version__,
            "zero_stage": self.zero_stage,
            "setup_s": round(time.time() - started, 2),
        }

    def _forward(self, model, mb: TrainBatch, hidden: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-target log-probs and entropies; with a `hidden` list, the last layer's hidden
        states (B, T, d) are appended to it (the same forward pass, nothing recomputed)."""
        mb = mb.to(self.engine.device)
        out = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask, output_hidden_states=hidden is not None)
        if hidden is not None:
            hidden.append(out.hidden_states[-1])
        return logprobs_and_entropy(out.logits[:, :-1], mb.input_ids[:, 1:])

    @torch.no_grad()
    def _old_logprobs(self, minis: list[TrainBatch]) -> list[torch.Tensor | None]:
        """logp_old per mini-batch. None means "the detached logp of the update's own forward",
        exact and free when there is one optimizer step per rollout."""
        if self.cfg.logp_old == "engine":
            return [m.engine_logprobs for m in minis]
        if self.cfg.mini_batches * self.cfg.epochs == 1:
            return [None] * len(minis)
        return [self._forward(self.engine.module, m)[0] if len(m) else m.engine_logprobs for m in minis]

    def train_step(
        self,
        minis: list[TrainBatch],
        counts: list[tuple[torch.Tensor, torch.Tensor]],
        entropy_coefs: torch.Tensor,
        kind: StageKind = StageKind.RL,
        measure_rank: bool = False,
    ) -> dict:
        """Passes over this rank's shards of the step's mini-batches, one optimizer step per
        mini-batch. Returns per-domain metric sums (first epoch) and the last grad norm.

        `kind` picks the objective, nothing else: RL runs the domains' policy losses for
        `epochs` passes; SFT (demonstrations of an SFT stage) the supervised NLL, one pass.
        `measure_rank`: also sum each response's hidden-state effective rank per domain (first
        epoch, from the update's own forward pass) and time it (`rank_seconds`)."""
        sft = kind is StageKind.SFT
        settings, epochs = (self.sft_settings, 1) if sft else (self.settings, self.cfg.epochs)
        old = [None] * len(minis) if sft else self._old_logprobs(minis)
        sums: dict[str, dict[str, float]] = {}
        grad_norms = []
        self.rank_seconds = 0.0
        for epoch in range(epochs):
            for k, mini in enumerate(minis):
                for rows in torch.arange(len(mini)).tensor_split(self.micro_batches):
                    rank = measure_rank and epoch == 0
                    part = self._micro_step(mini, rows, old[k], counts[k], entropy_coefs, settings, rank)
                    if epoch == 0:
                        merge_sums(sums, part)
                norm = self.engine.get_global_grad_norm()
                grad_norms.append(float(norm) if norm is not None else float("nan"))
        return {
            "domains": sums,
            "grad_norm": grad_norms[-1] if grad_norms else None,
            "optimizer_steps": len(grad_norms),
            "rank_seconds": self.rank_seconds,
        }

    def _micro_step(
        self,
        mini: TrainBatch,
        rows: torch.Tensor,
        old: torch.Tensor | None,
        counts,
        entropy_coefs,
        settings: ObjectiveSettings,
        measure_rank: bool = False,
    ) -> dict:
        if len(rows) == 0:  # an empty shard still joins the gradient all-reduce
            zero = sum(p.sum() for p in self.engine.module.parameters()) * 0.0
            self.engine.backward(zero, scale_wrt_gas=False)
            self.engine.step()
            return {}
        mb = mini.select(rows).to(self.engine.device)
        hidden = [] if measure_rank else None
        logp, entropy = self._forward(self.engine, mb, hidden)
        logp_old = logp.detach() if old is None else old[rows][:, : logp.shape[1]].to(logp.device)
        counts = tuple(c.to(logp.device) for c in counts)
        entropy_coefs = entropy_coefs.to(logp.device)
        behaviour = None
        if bool((mb.lag > 0).any()):  # rows an older policy generated (asynchronous rollouts)
            # the proximal policy is the ratio's own logp_old (the learner before this update's
            # first optimizer step); with logp_old: engine the ratio is already taken against the
            # behaviour policy and the weight is 1
            off = self.cfg.off_policy
            behaviour = behaviour_weights(
                logp_old, mb.engine_logprobs, mb.response_mask, mb.lag, correction=off.correction, cap=off.cap
            )
        logp_ref = None
        if self.reference is not None:
            with torch.no_grad():
                logp_ref = self._forward(self.reference, mb)[0]
        loss, sums = objective(
            logp,
            entropy,
            mb,
            logp_old,
            settings=settings,
            counts=counts,
            entropy_coefs=entropy_coefs,
            generator=self.generator,
            logp_ref=logp_ref,
            behaviour=behaviour,
        )
        self.engine.backward(loss * self.world_size, scale_wrt_gas=False)  # DeepSpeed averages ranks
        self.engine.step()
        if hidden:
            self._add_ranks(sums, mb, hidden[0])
        return sums

    def _add_ranks(self, sums: dict, mb: TrainBatch, hidden: torch.Tensor) -> None:
        """Each response's effective rank (its tokens' last-layer states: position t+1 holds the
        response token the target mask marks at t), summed per domain into `sums`."""
        started = time.perf_counter()
        ranks = effective_ranks(hidden.detach()[:, 1:], mb.response_mask.bool())
        for d, name in enumerate(mb.domains):
            values = [r for r, row in zip(ranks, (mb.domain_ids == d).tolist()) if row and r is not None]
            if values and name in sums:
                sums[name]["rank_sum"] = float(sum(values))
                sums[name]["rank_count"] = float(len(values))
        self.rank_seconds += time.perf_counter() - started

    def export_weights(self) -> dict | None:
        """Full weights with HF names on rank 0 (None elsewhere); every rank must call it.

        A parameter that owns its storage goes as it is: Ray copies it once into the object
        store as this call returns, before anything can update it. One that is a view into a
        larger buffer (ZeRO-1/2 flatten the parameters into one) is copied first, since
        serialising a view writes its whole storage; so are ZeRO-3's gathered parameters,
        freed when the gather ends."""
        module = self.engine.module
        if self.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
                state = {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}
        else:
            state = {k: _compact(v.detach().float().cpu()) for k, v in module.state_dict().items()}
        return state if self.rank == 0 else None

    def weights_digest(self) -> str | None:
        """SHA-256 over the full weights (names, dtypes, shapes, bytes) on rank 0, None elsewhere;
        every rank must call it (ZeRO-3 gathers)."""
        state = self.export_weights()
        if state is None:
            return None
        h = hashlib.sha256()
        for name in sorted(state):
            tensor = state[name].cpu().contiguous()
            h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            h.update(tensor.numpy().tobytes())
        return h.hexdigest()

    def save_checkpoint(self, directory: str | Path, client_state: dict) -> None:
        """DeepSpeed checkpoint (weights, optimizer) plus `client_state`; every rank calls it."""
        client_state = {**client_state, "clip_cov_generator": self.generator.get_state()}
        self.engine.save_checkpoint(str(directory), tag="learner", client_state=client_state)

    def load_checkpoint(self, directory: str | Path) -> dict:
        _, client_state = self.engine.load_checkpoint(str(directory), tag="learner")
        client_state = client_state or {}
        if "clip_cov_generator" in client_state:
            self.generator.set_state(client_state["clip_cov_generator"])
        return client_state

    def save_hf_model(self, directory: str | Path) -> None:
        """Rank 0 writes the policy as a Hugging Face model folder; every rank calls it."""
        state = self.export_weights()
        if self.rank == 0:
            self.engine.module.save_pretrained(str(directory), state_dict=state, safe_serialization=True)


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` itself when it spans its whole storage, else a copy that does."""
    if tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size() and tensor.is_contiguous():
        return tensor
    return tensor.clone()
