"""How many torch threads each engine and learner rank gets: the cores where the work is.

On an embedded (one-machine) run the phases of a step share the machine's cores. Strictly
on-policy (`generation.max_staleness` 0) they run one after another, so the learner ranks split
every core while they train; with rollouts made ahead, generation runs during the update and the
engines' share (`generate_share`) is taken out first, each side keeping at least one thread. An
engine gets one thread unless `generation.threads` says more: vLLM's CPU worker binds its threads
when it starts, and decoding models of this size is bound by per-step overhead, not arithmetic
(docs/performance.md). A number in `generation.threads` or `learner.threads` overrides the split.
Reward workers keep one thread each. Each actor is started with its count in its environment
(`thread_env`): the OpenMP and MKL pools are sized when a process starts. `oversubscribed` says
when the threads that run at once exceed the cores (slower, not wrong). `split_cores` is pure:
the core count comes in as an argument.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreSplit:
    cores: int
    engine_threads: int
    learner_threads: int
    overlapped: bool
    """Generation and the update run at the same time (asynchronous rollouts)."""
    engines: int = 1
    ranks: int = 1

    @property
    def oversubscribed(self) -> bool:
        generating, training = self.engine_threads * self.engines, self.learner_threads * self.ranks
        busiest = generating + training if self.overlapped else max(generating, training)
        return busiest > self.cores

    def describe(self) -> str:
        mode = "overlapped" if self.overlapped else "one phase at a time"
        warn = ", oversubscribed" if self.oversubscribed else ""
        return (
            f"{self.cores} cores: {self.engines}x{self.engine_threads} engine threads, "
            f"{self.ranks}x{self.learner_threads} learner threads ({mode}{warn})"
        )


def machine_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split_cores(
    cores: int,
    *,
    engines: int,
    ranks: int,
    overlapped: bool,
    engine_threads: int | str = "auto",
    learner_threads: int | str = "auto",
    generate_share: float = 0.5,
) -> CoreSplit:
    """Threads per engine and per rank on `cores` cores (see the module docstring)."""
    if cores < 1 or engines < 1 or ranks < 1:
        raise ValueError(f"cores, engines and ranks must be >= 1, got {cores}, {engines}, {ranks}")
    if not 0.0 < generate_share < 1.0:
        raise ValueError(f"generate_share must be in (0, 1), got {generate_share}")
    # auto gives an engine one thread: vLLM's CPU worker binds its threads when it starts (they
    # cannot change later), and decoding these models is bound by per-step overhead, not
    # arithmetic: a 0.4M model decoded 15% slower on 2 threads, a 13M one within 10% (measured)
    e = engine_threads if isinstance(engine_threads, int) else 1
    # the ranks split every core when they train alone, what generation's share leaves otherwise
    learner_cores = cores
    if overlapped and cores > 1:
        learner_cores = cores - min(cores - 1, max(1, round(cores * generate_share)))
    r = learner_threads if isinstance(learner_threads, int) else max(1, learner_cores // ranks)
    return CoreSplit(cores, e, r, overlapped, engines, ranks)


def plan_threads(cfg) -> CoreSplit | None:
    """The split for a run's config (see the module docstring): on an embedded run from this
    machine's cores; on a remote cluster only when the config names the numbers (auto leaves each
    actor the one thread per Ray CPU it was given): None."""
    gen, lcfg = cfg.generation, cfg.learner
    if cfg.cluster.address is not None and gen.threads == "auto" and lcfg.threads == "auto":
        return None
    return split_cores(
        machine_cores(),
        engines=gen.engines,
        ranks=lcfg.ranks,
        overlapped=gen.max_staleness > 0,
        engine_threads=gen.threads,
        learner_threads=lcfg.threads,
    )


def thread_env(base: dict[str, str], threads: int) -> dict:
    """A Ray actor's runtime_env whose OpenMP and MKL pools have `threads` threads. The pools are
    sized when the process starts: raising torch's thread count later, in a process started with
    OMP_NUM_THREADS=1, left a 13M update 35-65% slower than the same count set at start
    (docs/performance.md), so each actor is started with its own."""
    return {"env_vars": {**base, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}}
