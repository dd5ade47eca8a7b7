"""The shipped tiny model: the default config finds it, it is intact, and the cache uses it."""

from __future__ import annotations

import json
import shutil

import pytest

from counterpoint.config import load_config
from counterpoint.rollout.config import KINDS
from counterpoint.rollout.domains import kinds_of
from counterpoint.trainer import warm_start
from counterpoint.trainer.tiny_model import cache_key, model_name
from counterpoint.trainer.warm_start import PREBUILT, ensure_tiny_model, verified


def default_tiny():
    cfg = load_config("default")
    return cfg.model.tiny, [k for k in kinds_of(cfg.domains) if k in KINDS]


def test_the_default_config_names_a_shipped_model():
    tiny, kinds = default_tiny()
    name = model_name(tiny, kinds)
    assert (PREBUILT / name).is_dir(), (
        f"the default config's tiny model is now {name}, which is not shipped in {PREBUILT}: the recipe or the "
        "model.tiny defaults changed; run scripts/build_tiny_model.py --ship and commit the new folder"
    )
    info = json.loads((PREBUILT / name / "build_info.json").read_text())
    assert info["kinds"] == kinds
    assert 0.0 < info["math_greedy_accuracy"] < 1.0  # the warm start left headroom above zero and below one


def test_every_shipped_file_matches_its_digest():
    folders = [p for p in PREBUILT.iterdir() if p.is_dir()]
    assert folders
    for folder in folders:
        assert verified(folder) == folder
        listed = {line.split(maxsplit=1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
        assert listed == {p.name for p in folder.iterdir()} - {"SHA256SUMS"}  # nothing shipped unchecked


def test_prebuilt_is_not_part_of_the_key_but_a_local_build_is_cached_apart():
    tiny, kinds = default_tiny()
    local = tiny.model_copy(update={"prebuilt": False})
    assert cache_key(local, kinds) == cache_key(tiny, kinds)
    assert model_name(local, kinds) == model_name(tiny, kinds) + "-local"
    wider = tiny.model_copy(update={"hidden_size": 64})
    assert cache_key(wider, kinds) != cache_key(tiny, kinds)


def test_the_cache_gets_a_verified_copy_without_building(tmp_path, monkeypatch):
    def no_build(*args):
        raise AssertionError("built a model although a shipped one matches")

    monkeypatch.setattr(warm_start, "build_tiny_model", no_build)
    (tmp_path / "models").mkdir()
    tiny, kinds = default_tiny()
    stale = tmp_path / "models" / (model_name(tiny, kinds) + ".partial")
    stale.mkdir()  # a build that crashed half-way
    (stale / "model.safetensors").write_bytes(b"half")
    out = ensure_tiny_model(tiny, kinds, tmp_path)
    assert out == tmp_path / "models" / model_name(tiny, kinds)
    shipped = PREBUILT / out.name
    assert (out / "model.safetensors").read_bytes() == (shipped / "model.safetensors").read_bytes()
    assert not stale.exists()
    assert ensure_tiny_model(tiny, kinds, tmp_path) == out  # the second call reads the cache


def test_a_damaged_shipped_model_is_refused_naming_the_file(tmp_path, monkeypatch):
    tiny, kinds = default_tiny()
    name = model_name(tiny, kinds)
    fake_prebuilt = tmp_path / "prebuilt"
    shutil.copytree(PREBUILT / name, fake_prebuilt / name)
    weights = fake_prebuilt / name / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(warm_start, "PREBUILT", fake_prebuilt)
    with pytest.raises(ValueError, match=r"model\.safetensors.*prebuilt=false"):
        ensure_tiny_model(tiny, kinds, tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / name).exists()  # nothing half-copied looks complete


def test_prebuilt_false_builds_here(tmp_path, monkeypatch):
    calls = []

    def fake_build(cfg, kinds, out):
        calls.append(out.name)
        out.mkdir(parents=True)
        (out / "build_info.json").write_text("{}")
        return {}

    monkeypatch.setattr(warm_start, "build_tiny_model", fake_build)
    tiny, kinds = default_tiny()
    out = ensure_tiny_model(tiny.model_copy(update={"prebuilt": False}), kinds, tmp_path)
    assert out.name.endswith("-local") and calls == [out.name + ".partial"]
