"""Counterpoint: distributed RL post-training with per-domain entropy control."""

__version__ = "0.1.0"
