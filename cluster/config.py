"""Config of where the run executes: an embedded Ray cluster or an existing one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from counterpoint.configbase import Section


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
    gpus_per_engine: float = Field(0.0, ge=0.0)
    """GPUs each rollout engine asks Ray for (1 on a GPU cluster; vLLM then runs on it)."""
    gpus_per_learner_rank: float = Field(0.0, ge=0.0)
    """GPUs each learner rank asks for (1 on a GPU cluster: one DeepSpeed rank per GPU)."""
    sandbox_resource: str | None = None
    """A custom Ray resource that only nodes able to run the code sandbox advertise (the k8s
    CPU worker group's `counterpoint_sandbox`); code reward actors then land only there."""
