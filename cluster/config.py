"""Config of where the run executes: an embedded Ray cluster or an existing one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from counterpoint.configbase import Section


class ClusterConfig(Section):
    address: str | None = None
    """Ray address to join (e.g. "ray://head:10001" or "auto"); None starts an embedded cluster."""
    num_cpus: int = Field(8, ge=1)
    """Logical CPUs of an embedded cluster. More than the cores, so every actor gets placed."""
    auth_mode: Literal["disabled", "token"] = "disabled"
    """Ray auth: "disabled" is for the embedded loopback-only cluster; join real clusters with "token"."""
    object_store_mib: int = Field(512, ge=128)
    """Object store size of an embedded cluster."""
