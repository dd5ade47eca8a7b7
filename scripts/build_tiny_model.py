"""Build the tiny model here, from scratch, and ship it, or check it against the shipped copy.

The package ships the default config's tiny model (`trainer/prebuilt/tiny-<cache key>/`), so every
machine starts the default run from the same weights: the warm start trains in float32 on the CPU,
and machines with other CPU features (AVX-512 against AVX2) follow another trajectory and stop at
another step, which gave another start model and another default run (docs/results/default-run.md).

    .venv/bin/python scripts/build_tiny_model.py            # build here, compare with the shipped copy
    .venv/bin/python scripts/build_tiny_model.py --ship     # build here and replace the shipped copy
    .venv/bin/python scripts/build_tiny_model.py --config smoke --set model.tiny.warm_start_max_steps=20

Change the recipe (tiny_model.py, warm_start.py, BUILD_VERSION, the model.tiny defaults) and the
default config's key moves: tests/trainer/test_prebuilt.py then fails until `--ship` builds the new
one. A build takes ~2-3 minutes on 2 cores; run it alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from counterpoint.config import load_config
from counterpoint.rollout.config import KINDS
from counterpoint.rollout.domains import kinds_of
from counterpoint.trainer.tiny_model import model_name
from counterpoint.trainer.warm_start import PREBUILT, build_tiny_model


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a model folder but its SHA256SUMS (whatever save_pretrained wrote)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "SHA256SUMS")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="default", help="a shipped config name or a YAML path (default: default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--ship", action="store_true", help=f"write the build into {PREBUILT}/ with its SHA256SUMS")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.set)
    kinds = [k for k in kinds_of(cfg.domains) if k in KINDS]
    tiny = cfg.model.tiny.model_copy(update={"prebuilt": True})  # the name the shipped copy goes under
    name = model_name(tiny, kinds)
    with tempfile.TemporaryDirectory(prefix="tiny-build-") as tmp:
        built = Path(tmp) / name
        info = build_tiny_model(tiny, kinds, built)
        print(f"built {name} here: {json.dumps(info)}")
        # build_info's `seconds` differs from build to build; the weights and tokenizer must not
        new = digests(built)
        shipped = PREBUILT / name
        if shipped.is_dir():
            old = digests(shipped)
            names = sorted((new.keys() | old.keys()) - {"build_info.json"})
            same = [f for f in names if new.get(f) == old.get(f)]
            differ = [f for f in names if new.get(f) != old.get(f)]
            print(f"against the shipped copy: identical {same or 'none'}; different {differ or 'none'}")
        else:
            differ = None
            print(f"no shipped copy of {name} in {PREBUILT}")
        if args.ship:
            shutil.rmtree(shipped, ignore_errors=True)
            shutil.copytree(built, shipped)
            for f in new:
                (shipped / f).chmod(0o644)
            (shipped / "SHA256SUMS").write_text("".join(f"{digest}  {f}\n" for f, digest in new.items()))
            print(f"shipped {shipped} (commit it)")
    return 1 if differ and not args.ship else 0


if __name__ == "__main__":
    sys.exit(main())
