"""Every adjustment Counterpoint makes to DeepSpeed, in one place, checked against its version."""

from __future__ import annotations

import os
from pathlib import Path

TESTED_VERSIONS = ("0.19.",)


def prepare_deepspeed(cache_dir: str | Path):
    """Import DeepSpeed set up for CPU gloo learners; returns the module.

    - Its shared-memory comm op is compiled with g++ on first use (66-90 s on 2 cores) and is not
      needed with gloo: mark it incompatible so `init_distributed` skips it.
    - Ops it does compile land in a project cache rather than ~/.cache/torch_extensions.
    """
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(cache_dir).expanduser() / "torch_extensions"))
    import deepspeed

    if not deepspeed.__version__.startswith(TESTED_VERSIONS):
        raise RuntimeError(
            f"deepspeed {deepspeed.__version__} is untested here (tested: {TESTED_VERSIONS}); "
            "check trainer/deepspeed_compat.py still applies, then add the version"
        )
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    return deepspeed
