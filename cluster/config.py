"""Config of where the run executes: an embedded Ray cluster or an existing one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from counterpoint.configbase import Section


class CallTimeouts(Section):
    """How long one actor call may take before its actor counts as hung. A hung rollout engine or
    reward worker is killed by its handle, restarted by Ray and its call issued again; a hung
    learner rank fails the step like a dead one, and the run restarts from its last checkpoint
    (`run.max_restarts`). Each event is in events.jsonl. Raise them for big models or long
    responses: they bound one call, not a step."""

    generate_seconds: float = Field(300.0, gt=0.0)
    """One engine's generate call (its share of a step's prompts, or of an evaluation)."""
    weights_seconds: float = Field(300.0, gt=0.0)
    """One engine loading new weights."""
    reward_seconds: float = Field(300.0, gt=0.0)
    """One reward worker scoring its share of a step's groups."""
    learner_seconds: float = Field(600.0, gt=0.0)
    """Every learner rank's part of one call (an update, a weight export, a checkpoint save)."""


class ClusterConfig(Section):
    """The Ray cluster the run's actors are placed on, and what each actor asks it for."""

    address: str | None = None
    """Ray address to join (e.g. "ray://head:10001" or "auto"); None starts an embedded cluster."""
    num_cpus: int = Field(8, ge=1)
    """Logical CPUs of an embedded cluster. More than the cores, so every actor gets placed."""
    auth_mode: Literal["disabled", "token"] = "disabled"
    """Ray auth: "disabled" is for the embedded loopback-only cluster; join real clusters with "token"."""
    object_store_mib: int = Field(512, ge=128)
    """Object store size of an embedded cluster."""
    dashboard: bool = False
    """Start Ray's dashboard with an embedded cluster, bound to 127.0.0.1 only (port 8265, or the next
    free one; the run's log names the URL); off by default. Like the embedded cluster it has no auth:
    every user of this machine can reach it and its Jobs API. A joined cluster's dashboard is its own."""
    gpus_per_engine: float = Field(0.0, ge=0.0)
    """GPUs each rollout engine asks Ray for (1 on a GPU cluster; vLLM then runs on it)."""
    gpus_per_learner_rank: float = Field(0.0, ge=0.0)
    """GPUs each learner rank asks for (1 on a GPU cluster: one DeepSpeed rank per GPU)."""
    timeouts: CallTimeouts = CallTimeouts()
    """How long actor calls may take before the actor counts as hung."""
    sandbox_resource: str | None = None
    """A custom Ray resource that only nodes able to run the code sandbox advertise (the k8s
    CPU worker group's `counterpoint_sandbox`); code reward actors then land only there."""
