"""Starting or joining Ray. The only place the driver calls `ray.init`."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager

log = logging.getLogger(__name__)

WORKER_ENV = {
    # One BLAS/OpenMP thread per actor: the machine's cores are shared by every actor, and
    # oversubscription made vLLM several times slower in measurements here.
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
}


def start_ray(cfg, *, log_to_driver: bool = False) -> str:
    """Embedded local cluster when `cfg.address` is None, else join that cluster.

    The embedded cluster binds to 127.0.0.1 only and runs with Ray auth disabled, which is safe
    only because nothing outside this machine can reach it; a joined cluster uses token auth
    (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH must be set). Returns a description for the log.
    """
    import ray

    with _keep_sigterm_handler():
        return _init(ray, cfg, log_to_driver)


@contextmanager
def _keep_sigterm_handler():
    """ray.init installs a SIGTERM handler that aborts the process; put back the caller's (the
    CLI's turns SIGTERM into an orderly stop that records the event and shuts Ray down)."""
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main else None
    try:
        yield
    finally:
        if on_main and callable(previous):
            signal.signal(signal.SIGTERM, previous)


def _init(ray, cfg, log_to_driver: bool) -> str:
    runtime_env = {"env_vars": dict(WORKER_ENV)}
    if cfg.address is None:
        os.environ["RAY_AUTH_MODE"] = "disabled"
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        dashboard = cfg.dashboard
        context = ray.init(
            address="local",  # never attach to another cluster on this host
            num_cpus=cfg.num_cpus,
            num_gpus=0,
            object_store_memory=cfg.object_store_mib * 2**20,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",  # loopback only, like the rest of the embedded cluster
            _node_ip_address="127.0.0.1",
            runtime_env=runtime_env,
            log_to_driver=log_to_driver,
            configure_logging=False,
        )
        _start_watchdog(ray)  # the dashboard is one of the node's processes, so it is watched too
        where = f"embedded on 127.0.0.1, {cfg.num_cpus} logical CPUs, auth disabled (loopback only)"
        url = getattr(context, "dashboard_url", None) if dashboard else None
        return f"{where}, dashboard at http://{url}" if url else where
    if cfg.auth_mode == "token":
        os.environ["RAY_AUTH_MODE"] = "token"
        if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
            raise RuntimeError("cluster.auth_mode is 'token': set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH")
    else:
        os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(address=cfg.address, runtime_env=runtime_env, log_to_driver=log_to_driver, configure_logging=False)
    return f"joined {cfg.address}, auth {cfg.auth_mode}"


_watchdog: subprocess.Popen | None = None


def _start_watchdog(ray) -> None:
    """The embedded cluster's watchdog (cluster/watchdog.py): if this driver dies, it ends the
    Ray processes the driver started and everything below them, by PID."""
    global _watchdog
    node = ray._private.worker._global_node  # the Ray processes this driver started
    roots = [
        info.process.pid
        for infos in getattr(node, "all_processes", {}).values()
        for info in infos
        if getattr(info, "process", None) is not None
    ]
    if not roots:
        log.warning("ray %s: found no processes of the embedded cluster; no watchdog", ray.__version__)
        return
    _watchdog = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "counterpoint.cluster.watchdog",
            "--driver",
            str(os.getpid()),
            "--roots",
            ",".join(map(str, roots)),
        ],
        start_new_session=True,  # not in the driver's process group: a Ctrl-C there does not end it
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_ray() -> None:
    """Shut down the cluster this process started (or disconnect from a joined one)."""
    import ray

    global _watchdog
    if ray.is_initialized():
        ray.shutdown()
    if _watchdog is not None:  # the cluster is down: nothing left to watch
        _watchdog.terminate()
        _watchdog.wait(timeout=10)
        _watchdog = None
