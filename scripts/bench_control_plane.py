"""How much do 200 concurrent REST readers slow a live training run?

What it really does: starts a training run (`counterpoint run`, the real embedded path) and the
control plane (`counterpoint serve`, uvicorn on 127.0.0.1) over the same runs folder; records
the run's step times for a quiet window, then keeps 200 concurrent readers (GET status,
schedule and metrics in a loop, bounded in count and time) busy for the next window, and prints
latency percentiles, requests per second and the step time in both windows. Loopback only.
Prints figures; it is not a test.

    .venv/bin/python scripts/bench_control_plane.py --steps 40 --readers 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "bench-viewer-token-0123456789"
ERRORS: list[float] = []
"""Requests that got no answer (transport error) or a 5xx."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def steps(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == "train"]


def wait_steps(run_dir: Path, count: int, proc: subprocess.Popen, timeout_s: float = 900) -> None:
    deadline = time.time() + timeout_s
    while len(steps(run_dir)) < count:
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"the run stopped or stalled before step {count}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="steps of the run (two windows of steps/2 - 2)")
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--set", dest="extra", action="append", default=[])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cp-bench-"))
    runs = work / "runs"
    env = {**os.environ, "COUNTERPOINT_VIEWER_TOKEN": TOKEN, "COUNTERPOINT_OPERATOR_TOKEN": TOKEN[::-1]}
    cli = [sys.executable, "-m", "counterpoint"]
    run = subprocess.Popen(
        [
            *cli,
            "run",
            "-q",
            "--steps",
            str(args.steps),
            "--output-dir",
            str(runs),
            "--set",
            "run.name=bench",
            "--set",
            "run.eval_every_steps=0",
            *sum((["--set", x] for x in args.extra), []),
        ],
        env=env,
    )
    port = free_port()
    serve = subprocess.Popen(
        [*cli, "serve", "--runs-dir", str(runs), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 600
        while not list(runs.glob("bench-*/controller.json")):
            if run.poll() is not None or time.time() > deadline:
                raise RuntimeError("the run did not start")
            time.sleep(0.5)
        run_dir = next(runs.glob("bench-*"))
        half = args.steps // 2
        wait_steps(run_dir, 2, run)  # skip warm-up steps
        wait_steps(run_dir, half, run)
        quiet = [r["seconds"]["step"] for r in steps(run_dir)[2:half]]
        task_started = time.time()
        collected: list[float] = []
        latencies = asyncio.run(_run_window(f"http://127.0.0.1:{port}", run_dir, args, run, collected))
        elapsed = time.time() - task_started
        loaded_steps = [r["seconds"]["step"] for r in steps(run_dir)[half : args.steps - 1]]
        lat = sorted(latencies)
        print(
            f"readers: {args.readers} concurrent, {len(lat)} answered requests in {elapsed:.1f}s = "
            f"{len(lat) / elapsed:.0f} req/s; {len(ERRORS)} without an answer or with a 5xx"
        )
        if lat:
            print(f"latency p50 {1000 * lat[len(lat) // 2]:.1f} ms, p99 {1000 * lat[int(len(lat) * 0.99)]:.1f} ms")
        print(f"step time quiet  : mean {statistics.mean(quiet):.2f}s over {len(quiet)} steps")
        print(
            f"step time loaded : mean {statistics.mean(loaded_steps):.2f}s over {len(loaded_steps)} steps "
            f"({100 * (statistics.mean(loaded_steps) / statistics.mean(quiet) - 1):+.0f}%)"
        )
    finally:
        serve.terminate()
        run.terminate()
        serve.wait(timeout=30)
        run.wait(timeout=120)


async def _run_window(url: str, run_dir: Path, args, run: subprocess.Popen, collected: list[float]) -> list[float]:
    stop_at = time.time() + 600
    task = asyncio.create_task(_collect(url, run_dir.name, args.readers, stop_at, args.max_requests, collected))
    while len(steps(run_dir)) < args.steps - 1 and run.poll() is None and time.time() < stop_at:
        await asyncio.sleep(0.5)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return collected


async def _collect(url, run_id, n, until, max_requests, out: list[float]) -> None:
    paths = [f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/schedule", f"/v1/runs/{run_id}/metrics?since=0&limit=20"]
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits, timeout=30
    ) as client:

        async def one(i: int) -> None:
            k = 0
            while time.time() < until and len(out) < max_requests:
                started = time.perf_counter()
                k += 1
                try:
                    r = await client.get(paths[(i + k) % len(paths)])
                except httpx.TransportError:  # e.g. a keep-alive connection the server just closed
                    ERRORS.append(time.perf_counter() - started)
                    continue
                if r.status_code >= 500:
                    ERRORS.append(time.perf_counter() - started)
                    continue
                r.raise_for_status()
                out.append(time.perf_counter() - started)

        await asyncio.gather(*(one(i) for i in range(n)))


if __name__ == "__main__":
    main()
