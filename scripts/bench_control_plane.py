"""How much do 200 concurrent REST readers, and an open operator page, slow a live training run?

What it really does: starts a training run (`counterpoint run`, the real embedded path) and the
control plane (`counterpoint serve`, uvicorn on 127.0.0.1) over the same runs folder; records
the run's step times for a quiet window, then keeps 200 concurrent readers (GET status,
schedule and metrics in a loop, bounded in count and time) busy for the next window, and prints
latency percentiles, requests per second and the step time in both windows. Loopback only.
Prints figures; it is not a test.

    .venv/bin/python scripts/bench_control_plane.py --steps 40 --readers 200

With `--page` it also opens the real operator page (services/web/) in headless Chromium
(Playwright), signs in with the bench's viewer token through the token form, selects the training
run and leaves it polling (every 2 s, as a person would leave it open). After 2 warm-up steps the
run's steps fall in `--windows` alternating windows of `--window` steps: quiet, page, quiet, ...,
quiet (odd count, quiet first and last, so a linear drift of the step time cancels). In a quiet
window the page stays loaded but paused in the debugger (CDP Debugger.pause: no timer, no poll,
no rendering; the bench counts the requests it sent meanwhile, 0 expected); in a page window it
runs. Chromium stays up all along: only the page's own work is switched on and off. Printed: the
mean step time of each kind with its standard error, their difference, the same difference from
each page window against its two quiet neighbours, and the CPU the page took (Chromium, the
Playwright driver, and `counterpoint serve` answering it). The page's cost is its polling plus
Chromium's rendering, on the same cores as the run. The 200-reader window follows with the page
open too: its DOM is read every second (the run's step as displayed, the error banners), and its
own API requests' latencies (Playwright request timing) are printed, p50/p99.

    .venv/bin/python scripts/bench_control_plane.py --steps 120 --readers 200 --page
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

TOKEN = "bench-viewer-token-0123456789"
ERRORS: list[float] = []
"""Requests that got no answer (transport error) or a 5xx."""
WARMUP = 2
"""Steps left out at the start (compilation, caches)."""
SAMPLE_JS = """() => {
    const $ = (id) => document.getElementById(id);
    const step = document.querySelector('#run-status dd[data-field="step"]');
    const connection = $("connection"), message = $("schedule-message");
    return {
        step: step ? step.textContent : null,
        connection: connection.textContent,
        connectionError: connection.classList.contains("error"),
        signedOut: !$("login-view").hidden,
        scheduleError: !message.hidden && message.classList.contains("error") ? message.textContent : null,
    };
}"""
"""What the page shows: the run's step in its status panel, and any error banner."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StepLog:
    """The run's train records, read incrementally from its metrics.jsonl (cheap to poll often)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "metrics.jsonl"
        self.offset = 0
        self.tail = b""
        self.records: list[dict] = []

    def poll(self) -> list[dict]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.records
        self.offset += len(data)
        *lines, self.tail = (self.tail + data).split(b"\n")
        self.records += [r for r in map(json.loads, filter(None, lines)) if r["kind"] == "train"]
        return self.records

    def seconds(self, first: int, last: int) -> list[float]:
        """Step times of steps first..last (1-based, inclusive)."""
        return [r["seconds"]["step"] for r in self.records[first - 1 : last]]


async def reach(log: StepLog, count: int, proc: subprocess.Popen, timeout_s: float = 900) -> float:
    """Wait until the run has finished `count` steps; the time it was seen."""
    deadline = time.time() + timeout_s
    while len(log.poll()) < count:
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"the run stopped or stalled before step {count}")
        await asyncio.sleep(0.1)
    return time.time()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def mean_se(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0


def chromium_executable(playwright) -> str:
    """As tests/services/test_web.py: COUNTERPOINT_CHROMIUM, a chromium on PATH, or Playwright's own."""
    for candidate in (os.environ.get("COUNTERPOINT_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return playwright.chromium.executable_path


class OperatorPage:
    """The operator page in headless Chromium, signed in with the viewer token, the run selected."""

    def __init__(self, url: str, run_id: str, serve_pid: int):
        self.url, self.run_id = url, run_id
        self.requests: list[tuple[float, float | None]] = []
        """(start, latency) of each API request the page made, from Playwright's request timing."""
        self.bad: list[str] = []
        """API requests that failed or got a status >= 400, and the page's script errors."""
        self.paused: list[list[float]] = []
        """[from, to] of each pause: from the pause's acknowledgement to the resume's request."""
        import psutil

        self.psutil = psutil
        self.serve = psutil.Process(serve_pid)

    async def open(self, stack: AsyncExitStack) -> None:
        from playwright.async_api import async_playwright

        before = {p.pid for p in self.psutil.Process().children()}
        pw = await stack.enter_async_context(async_playwright())
        self.driver = [p for p in self.psutil.Process().children() if p.pid not in before]  # Playwright's node
        browser = await pw.chromium.launch(executable_path=chromium_executable(pw), args=["--no-sandbox"])
        stack.push_async_callback(browser.close)
        page = await browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", lambda r: "/v1/" in r.url and self.bad.append(f"failed {r.url}: {r.failure}"))
        page.on("response", lambda r: "/v1/" in r.url and r.status >= 400 and self.bad.append(f"{r.status} {r.url}"))
        page.on("pageerror", lambda err: self.bad.append(f"page error: {err}"))
        await page.goto(self.url + "/")
        await page.fill("#token", TOKEN)
        await page.click("#login-form button[type=submit]")
        await page.locator("#role-badge", has_text="viewer: read-only").wait_for()  # the CSP forbids eval
        await page.click(f'#runs tr[data-run="{self.run_id}"] button')
        await page.locator("#run-title", has_text=f"Run {self.run_id}").wait_for()
        self.page = page
        self.cdp = await page.context.new_cdp_session(page)

    def _finished(self, request) -> None:
        if "/v1/" not in request.url:
            return
        t = request.timing  # ms; responseEnd is relative to startTime, -1 when unknown
        self.requests.append((t["startTime"] / 1000, t["responseEnd"] / 1000 if t["responseEnd"] >= 0 else None))

    async def pause(self) -> None:
        """Stop the page's script (its timers, its polls, its rendering) where it next runs.

        CDP Page.setWebLifecycleState "frozen" does not stop a headless page's timers (tried: it
        kept polling); a debugger pause does, and the bench counts the requests sent meanwhile."""
        await self.cdp.send("Debugger.enable")
        await self.cdp.send("Debugger.pause")
        self.paused.append([time.time(), math.inf])

    async def resume(self) -> None:
        from playwright.async_api import Error

        if self.paused:
            self.paused[-1][1] = time.time()
        try:
            await self.cdp.send("Debugger.resume")
        except Error:  # not paused yet: no script had run since the pause was asked for
            pass
        await self.cdp.send("Debugger.disable")

    async def sample(self) -> dict:
        return await self.page.evaluate(SAMPLE_JS)

    def cpu(self) -> dict:
        """CPU seconds so far, by (group, pid): Chromium's processes, the Playwright driver, `counterpoint serve`."""
        out: dict = {"at": time.time()}
        groups = [("chromium", [c for d in self.driver for c in d.children(recursive=True)])]
        for group, processes in [*groups, ("driver", self.driver), ("serve", [self.serve])]:
            for p in processes:
                try:
                    t, born = p.cpu_times(), p.create_time()
                except self.psutil.NoSuchProcess:  # a Chromium helper that ended: its last seconds are lost
                    continue
                out[(group, p.pid)] = (t.user + t.system, born)
        return out

    @staticmethod
    def cpu_used(before: dict, after: dict) -> tuple[float, float, float]:
        """CPU seconds between two `cpu()` readings: Chromium, driver, serve. A process first seen in `after`
        counts whole if it started after `before`, else not at all (it was missed, its time is unknown)."""
        used = {"chromium": 0.0, "driver": 0.0, "serve": 0.0}
        for key, (seconds, born) in ((k, v) for k, v in after.items() if k != "at"):
            if key in before:
                used[key[0]] += seconds - before[key][0]
            elif born >= before["at"] - 1:  # create_time has a coarse clock
                used[key[0]] += seconds
        return used["chromium"], used["driver"], used["serve"]

    def latencies(self, start: float, end: float) -> list[float]:
        return [lat for t, lat in self.requests if start <= t < end and lat is not None]

    def count(self, start: float, end: float) -> int:
        return sum(start <= t < end for t, _ in self.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--steps", type=int, default=40, help="steps of the run (without --page: two windows of steps/2 - 2)"
    )
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--set", dest="extra", action="append", default=[])
    parser.add_argument("--page", action="store_true", help="also measure an open operator page (Chromium)")
    parser.add_argument("--window", type=int, default=6, help="with --page: steps per quiet or page window")
    parser.add_argument("--windows", type=int, default=15, help="with --page: windows, odd (quiet first and last)")
    args = parser.parse_args()
    if args.page:
        if args.windows < 3 or args.windows % 2 == 0 or args.window < 2:
            parser.error("--windows must be odd and >= 3 (quiet, page, ..., quiet), --window >= 2")
        needed = WARMUP + args.windows * args.window + 4
        if args.steps < needed:
            parser.error(f"--page with {args.windows} windows of {args.window} steps needs --steps >= {needed}")
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
    measured = False
    try:
        deadline = time.time() + 600
        while not list(runs.glob("bench-*/controller.json")):
            if run.poll() is not None or time.time() > deadline:
                raise RuntimeError("the run did not start")
            time.sleep(0.5)
        run_dir = next(runs.glob("bench-*"))
        asyncio.run(_bench(args, f"http://127.0.0.1:{port}", run_dir, run, serve))
        measured = True
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        try:
            run.wait(timeout=90 if measured else 0.1)  # after the measures it stops on its own, its last step done
        except subprocess.TimeoutExpired:
            run.terminate()
            run.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)


async def _bench(args, url: str, run_dir: Path, run: subprocess.Popen, serve: subprocess.Popen) -> None:
    log = StepLog(run_dir)
    async with AsyncExitStack() as stack:
        page = None
        if args.page:
            page = OperatorPage(url, run_dir.name, serve.pid)
            await page.open(stack)  # while the run starts up: the launch is not measured
            await page.pause()
        await reach(log, WARMUP, run)
        if page:
            quiet = await _alternate(args, log, run, page)
            first_loaded = WARMUP + args.windows * args.window + 1
        else:
            half = args.steps // 2
            await reach(log, half, run)
            quiet = log.seconds(WARMUP + 1, half)
            first_loaded = half + 1
        if page:
            await page.resume()
        task_started = time.time()
        collected: list[float] = []
        samples: list[tuple[float, int, dict]] = []
        latencies, ended = await _run_window(url, run_dir, args, log, run, collected, page, samples)
        elapsed = ended - task_started
    loaded_steps = log.seconds(first_loaded, args.steps - 1)
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
        + (" (the page open too)" if page else "")
    )
    if page:
        _report_page_under_load(page, samples, task_started, task_started + elapsed)


async def _alternate(args, log: StepLog, run: subprocess.Popen, page: OperatorPage) -> list[float]:
    """Quiet and page windows in turn; prints their figures; the quiet windows' step times."""
    bounds: list[tuple[float, float]] = []
    cpu: list[tuple[float, ...]] = []
    start, cpu0 = time.time(), page.cpu()
    for w in range(args.windows):
        if w % 2:
            await page.resume()
        end = await reach(log, WARMUP + (w + 1) * args.window, run)
        if w % 2:
            await page.pause()
        cpu1 = page.cpu()
        bounds.append((start, end))
        cpu.append(page.cpu_used(cpu0, cpu1))
        start, cpu0 = end, cpu1
    windows = [log.seconds(WARMUP + w * args.window + 1, WARMUP + (w + 1) * args.window) for w in range(len(bounds))]
    quiet = [s for w in windows[0::2] for s in w]
    paged = [s for w in windows[1::2] for s in w]
    (q, q_se), (p, p_se) = mean_se(quiet), mean_se(paged)
    diff, diff_se = p - q, math.hypot(q_se, p_se)
    pairs = [
        100
        * (statistics.mean(windows[w]) / ((statistics.mean(windows[w - 1]) + statistics.mean(windows[w + 1])) / 2) - 1)
        for w in range(1, len(windows), 2)
    ]
    pair_mean, pair_se = mean_se(pairs)
    print(
        f"page: headless Chromium, viewer token, run selected, polling every 2 s; {args.windows} windows of "
        f"{args.window} steps (steps {WARMUP + 1}-{WARMUP + args.windows * args.window}), quiet first and last"
    )
    print(
        "windows          : "
        + ", ".join(
            f"{'QP'[w % 2]} {statistics.mean(s):.2f}s {page.count(*bounds[w])} req" for w, s in enumerate(windows)
        )
    )
    print(f"step time quiet  : mean {q:.3f}s ± {q_se:.3f} (SE) over {len(quiet)} steps")
    print(f"step time page   : mean {p:.3f}s ± {p_se:.3f} (SE) over {len(paged)} steps")
    rel, rel_se = 100 * diff / q, 100 * diff_se / q
    low, high = rel - 2 * rel_se, rel + 2 * rel_se
    verdict = "under 2%" if high < 2 else "over 2%" if low > 2 else "cannot tell whether under 2% at this noise"
    print(
        f"page - quiet     : {diff:+.3f}s ± {diff_se:.3f} = {rel:+.1f}% ± {rel_se:.1f}% "
        f"(± 2 SE: {low:+.1f}% to {high:+.1f}%): {verdict}"
    )
    print(f"by window        : {pair_mean:+.1f}% ± {pair_se:.1f}% (each page window against its 2 quiet neighbours)")

    def rate(kind: int, which: int) -> float:
        seconds = sum(end - start for start, end in bounds[kind::2])
        return sum(c[which] for c in cpu[kind::2]) / seconds

    cores = os.cpu_count() or 1
    chromium, driver, server = (rate(1, i) - rate(0, i) for i in range(3))
    print(
        f"page CPU         : Chromium {chromium:.3f}, Playwright driver {driver:.3f}, serve {server:.3f} core-s/s "
        f"more than quiet = {100 * (chromium + server) / cores:.1f}% of the {cores} cores without the driver, "
        f"{100 * (chromium + driver + server) / cores:.1f}% with it"
    )
    page_lat = [lat for start, end in bounds[1::2] for lat in page.latencies(start, end)] or [math.nan]
    in_quiet = sum(page.count(start, end) for start, end in page.paused if end <= bounds[-1][1])
    print(
        f"page requests    : {sum(page.count(s, e) for s, e in bounds[1::2])} in the page windows, "
        f"p50 {1000 * pct(page_lat, 0.5):.1f} ms, p99 {1000 * pct(page_lat, 0.99):.1f} ms; "
        f"{in_quiet} started while paused; {len(page.bad)} failed or >= 400"
    )
    return quiet


def _report_page_under_load(
    page: OperatorPage, samples: list[tuple[float, int, dict]], start: float, end: float
) -> None:
    """Did the page keep up with the run under the readers? The step it showed against the run's, its errors."""
    banners = [
        s for *_, s in samples if s.get("timeout") or s["connectionError"] or s["signedOut"] or s["scheduleError"]
    ]
    shown = [(t, run_step, int(s["step"])) for t, run_step, s in samples if (s["step"] or "").isdigit()]
    if not shown:
        print(f"page, readers on : {len(samples)} DOM reads; it never showed a step")
        return
    # it was paused during the quiet window before: its first reads show the step it was paused at
    first = next((i for i, (_, _, step) in enumerate(shown) if step != shown[0][2]), len(shown) - 1)
    lags = [run_step - step for _, run_step, step in shown[first:]]
    print(
        f"page, readers on : {len(samples)} DOM reads, shown step {shown[0][2]} -> {shown[-1][2]} "
        f"({len({step for *_, step in shown})} values) while the run went {shown[0][1]} -> {shown[-1][1]}; "
        f"first update {shown[first][0] - start:.1f}s after the readers started, then lag behind the run "
        f"mean {statistics.mean(lags):.1f}, max {max(lags)} steps; "
        f"{len(banners)} reads with an error banner or signed out" + (f" (first: {banners[0]})" if banners else "")
    )
    lat = page.latencies(start, end)
    if lat:
        print(
            f"page requests    : {len(lat)} under the readers, p50 {1000 * pct(lat, 0.5):.0f} ms, "
            f"p99 {1000 * pct(lat, 0.99):.0f} ms; {len(page.bad)} failed or >= 400 in the whole run"
            + (f" (first: {page.bad[0]})" if page.bad else "")
        )


async def _run_window(url: str, run_dir: Path, args, log, run, collected, page, samples) -> tuple[list[float], float]:
    """The readers until the run's second last step (or 600 s); the requests answered meanwhile, and its end.

    The readers run in a thread with their own event loop: in this one, their 200 coroutines made each
    loop turn last ~0.15 s, and Playwright's messages (the page's network events, `evaluate` answers)
    queued behind them for tens of seconds."""
    stop_at, stop = time.time() + 600, threading.Event()
    readers = _collect(url, run_dir.name, args.readers, stop_at, args.max_requests, collected, stop)
    task = asyncio.create_task(asyncio.to_thread(asyncio.run, readers))
    next_sample = 0.0
    while len(log.poll()) < args.steps - 1 and run.poll() is None and time.time() < stop_at:
        if page and time.time() >= next_sample:
            next_sample = time.time() + 1
            try:
                samples.append((time.time(), len(log.records), await asyncio.wait_for(page.sample(), 30)))
            except TimeoutError:
                samples.append((time.time(), len(log.records), {"step": None, "timeout": True}))
        await asyncio.sleep(0.2 if page else 0.5)
    ended, answered = time.time(), len(collected)
    # Stop by a flag, not by cancelling: a cancellation once failed to stop them (likely swallowed in
    # httpcore's anyio timeouts) and they ran on; in-flight requests end within the 30 s timeout.
    stop.set()
    await asyncio.wait({task}, timeout=45)
    return collected[:answered], ended


async def _collect(url, run_id, n, until, max_requests, out: list[float], stop: threading.Event) -> None:
    paths = [f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/schedule", f"/v1/runs/{run_id}/metrics?since=0&limit=20"]
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits, timeout=30
    ) as client:

        async def one(i: int) -> None:
            k = 0
            while not stop.is_set() and time.time() < until and len(out) < max_requests:
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
