"""The parts of a domain's config slice that every kind shares (its eval spec, its data `source`,
its `sampling` options), and the `python` kind, whose reward is a function of the user's.

`rollout/config.py` assembles these into the `DomainConfig` union; docs/data.md describes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from counterpoint.configbase import Section

DomainKind = Literal["math", "code", "creative", "python"]


def _absolute(path: Path) -> Path:
    """Relative paths are read from the working directory of the process that loads the config
    (the driver), so the resolved config, reward workers and a resume all see the same file."""
    return path.expanduser().absolute()


DataPath = Annotated[Path, AfterValidator(_absolute)]


class EvalSpec(Section):
    """A domain's held-out split and how it is decoded."""

    prompts: int = Field(32, ge=1)
    """Size of the held-out eval split (a file source's eval split: at most this many of its rows,
    in file order)."""
    samples_per_prompt: int = Field(1, ge=1)
    """Responses per eval prompt: 1 (greedy) for checkable domains; a group for open-ended ones,
    whose novelty reward is only defined against other samples."""
    temperature: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    """0 decodes greedily."""


class EvalFraction(Section):
    """The held-out split is a seeded share of the source's rows, chosen by a hash of each row's
    prompt text (so the same text is never on both sides, and the split does not move when rows
    are added or reordered)."""

    fraction: float = Field(0.1, gt=0.0, lt=1.0, allow_inf_nan=False)
    """Share of the rows held out."""
    seed: int = 0
    """Salt of the hash: another seed, another split."""


class EvalFile(Section):
    """The held-out split is another file (or saved dataset), read like the source itself."""

    path: DataPath
    """The held-out rows: a file of the source's format (type file), or a saved dataset (hf_disk)."""


class EvalSplitName(Section):
    """The held-out split is another split of the same saved dataset (hf_disk sources only)."""

    split: str
    """The split's name in the `DatasetDict`, e.g. "test"."""


class _FieldMap(Section):
    """Which field of a row holds what (only the fields a domain's kind uses are read)."""

    prompt: str = "prompt"
    """The prompt text (every kind)."""
    answer: str = "answer"
    """math: the gold answer, checked with math-verify exactly like the synthetic math suite."""
    tests: str = "tests"
    """code: the tests, either HumanEval-style source defining `check(candidate)` (each top-level
    assert one test) or a list of `[args, expected]` pairs."""
    entry_point: str = "entry_point"
    """code: the name of the function the tests call."""
    topic: str | None = None
    """creative: a topic word the quality gate wants present (None: no topic)."""
    demonstration: str | None = None
    """A correct response, for SFT stages (None: the domain has none and cannot be in an SFT stage)."""
    eval: EvalFraction | EvalFile | EvalSplitName = EvalFraction()
    """The held-out split: `{fraction: 0.1}` (a seeded share of the rows), `{path: other_file}`,
    or, for hf_disk, `{split: test}`."""


class FileSource(_FieldMap):
    """Rows from a data file, by extension: .jsonl, .json (a list of objects), .csv, .parquet."""

    type: Literal["file"] = "file"
    """A data file."""
    path: DataPath
    """The file (relative paths: from the working directory)."""


class HfDiskSource(_FieldMap):
    """A Hugging Face `datasets` dataset saved with `save_to_disk` (a Dataset or a DatasetDict)."""

    type: Literal["hf_disk"] = "hf_disk"
    """A saved dataset folder."""
    path: DataPath
    """The folder `save_to_disk` wrote."""
    split: str = "train"
    """The split to train on when the folder holds a DatasetDict (a single Dataset has no splits)."""


def _default_source_type(value):
    """`type` defaults to "file"."""
    return {**value, "type": "file"} if isinstance(value, dict) and "type" not in value else value


SourceConfig = Annotated[FileSource | HfDiskSource, Field(discriminator="type"), BeforeValidator(_default_source_type)]
"""Where a domain's rows come from, by `type` (default "file")."""


class SamplingConfig(Section):
    """How this domain's prompts are sampled; None: as `generation` says (or vLLM's default)."""

    top_p: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    """Nucleus sampling (None: 1, off)."""
    top_k: int | None = Field(None, ge=1)
    """Sample among the k likeliest tokens (None: all)."""
    stop: list[str] = []
    """Strings that end a response (not included in it)."""
    max_prompt_tokens: int | None = Field(None, ge=1)
    """Longest prompt in tokens (None: `generation.max_prompt_tokens`); longer ones are skipped and
    counted (`prompts_skipped_too_long`), never truncated."""
    max_response_tokens: int | None = Field(None, ge=1)
    """Longest response in tokens (None: `generation.max_response_tokens`)."""


class _Domain(Section):
    """What every domain has, whatever its kind."""

    kind: DomainKind
    """What the domain is: "math", "code", "creative" or "python" (its rewards and suites). May be
    left out when the domain's name is a kind."""
    weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Share of each step's prompts given to this domain (weights are normalised over domains)."""
    reward_workers: int = Field(1, ge=1)
    """Reward actors serving this domain."""
    eval: EvalSpec = EvalSpec()
    """The held-out split and how it is decoded."""
    source: SourceConfig | None = None
    """The user's rows (docs/data.md); None: the kind's `suite`. Not together with a suite other
    than "synthetic"."""
    sampling: SamplingConfig = SamplingConfig()
    """Sampling options of this domain's prompts (training and eval)."""


class PythonReward(Section):
    """A reward written in Python by the user, run in a child process of each reward worker."""

    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """`module:function`, importable from the run's working directory or PYTHONPATH; called as
    `function(prompt: str, response: str, row: dict)` and returning a float or a `Score`."""
    timeout_seconds: float = Field(5.0, gt=0.0, allow_inf_nan=False)
    """Wall-clock limit of one call; past it the child is killed and replaced, and the sample is a
    `plugin_timeout`."""
    startup_seconds: float = Field(60.0, gt=0.0, allow_inf_nan=False)
    """How long the child may take to import the module."""


class PythonDomainConfig(_Domain):
    """A domain of kind python: the user's rows, scored by the user's function."""

    kind: Literal["python"] = "python"
    """Always "python" here; may be left out when the domain is named "python"."""
    source: SourceConfig
    """The user's rows (required: this kind has no built-in suite). A row is passed whole to the
    reward function."""
    reward: PythonReward
    """The reward function and its deadline."""
