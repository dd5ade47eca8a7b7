"""How fast each reward checks on this machine, per worker.

This script times the three reward families the way a reward worker runs them, on made-up but
realistic inputs, and prints one table: math checks per second (math-verify in its child process,
a group of 8 distinct responses per round-trip, in three answer styles), sandboxed code executions
per second with 1 and 2 concurrent workers (threads calling the bubblewrap sandbox, each run a
fresh program against 4 tests), and creative novelty samples per second, lexical (character
trigrams, MinHash against the memory) and embedding (all-MiniLM-L6-v2 on one CPU thread), for short
lines and for paragraphs, against a full 512-entry memory, and the whole creative reward per kind
(gate, fluency, quality and the kind's term; `--reference-model DIR` adds fluency's `order: lm`).
It prints the machine's load before and after, because on a shared 2-core box the rates move with
whatever else is running; the CPU time per item beside each rate does not, and bounds what an idle
box can do. Nothing is trained and nothing is written; it takes about a minute.

    python scripts/bench_rewards.py [--seconds 4] [--only creative,creative_kinds] [--reference-model DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import threading
import time

from counterpoint.rollout.config import CreativeReward, MathReward, SandboxConfig
from counterpoint.rollout.rewards.code_check import io_tests, run_tests
from counterpoint.rollout.rewards.math_check import MathChecker
from counterpoint.rollout.rewards.sandbox.bwrap import check_sandbox
from counterpoint.rollout.tasks.creative import CreativeScorer

GROUP = 8


def process_cpu(pids: tuple[int, ...] = ()) -> float:
    """CPU seconds used so far by this process, its waited-for children, and the live `pids`."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            utime, stime = f.read().rsplit(")", 1)[1].split()[11:13]
        total += (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return total


def timed(work, seconds: float, pids=lambda: ()) -> tuple[float, float]:
    """(items per second, CPU milliseconds per item) of `work()`, which returns how many items it
    did, run for ~`seconds`. CPU time does not depend on what else loads the machine."""
    work()  # warm-up
    done, started, cpu = 0, time.perf_counter(), process_cpu(pids())
    while time.perf_counter() - started < seconds:
        done += work()
    return done / (time.perf_counter() - started), (process_cpu(pids()) - cpu) * 1000 / done


def bench_math(seconds: float) -> dict[str, tuple[float, float]]:
    checker = MathChecker(MathReward())
    counter = iter(range(10**9))

    def styles(a: int, k: int) -> dict[str, str]:
        return {
            "bare number": f" {a + k}",
            "CoT, 'The answer is'": f"First {a} - 1 = {a - 1}.\nThen add one.\nThe answer is {a + k}.",
            "boxed LaTeX fraction": f"So the result is \\boxed{{\\frac{{{a + k}}}{{2}}}}.",
        }

    out = {}
    for style in styles(0, 0):

        def group() -> int:
            a = next(counter) * 100  # fresh numbers, so the checker's parse cache never helps
            checker.check([(str(a), styles(a, k)[style]) for k in range(GROUP)])
            return GROUP

        out[f"math, {style}"] = timed(group, seconds, lambda: tuple(checker.pids()))
    checker.close()
    return out


def bench_code(seconds: float) -> dict[str, tuple[float, float]]:
    check_sandbox()
    limits = SandboxConfig()
    tests = io_tests([[[3], 6], [[0], 3], [[1], 4], [[5], 8]])
    counter = iter(range(10**9))
    out = {}
    for workers in (1, 2):
        done = [0] * workers
        stop = time.perf_counter() + seconds

        def worker(slot: int) -> None:
            while time.perf_counter() < stop:
                # A distinct program each run, as a group of distinct samples would be.
                run_tests(f"def f(x):\n    return x + 3 + {next(counter)} * 0\n", "f", tests, limits)
                done[slot] += 1

        run_tests("def f(x):\n    return x\n", "f", tests, limits)  # warm-up
        started, cpu = time.perf_counter(), process_cpu()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = sum(done) / (time.perf_counter() - started)
        name = f"code, sandboxed runs, {workers} worker{'s' if workers > 1 else ''} (total)"
        out[name] = (rate, (process_cpu() - cpu) * 1000 / sum(done))
    return out


def _texts(rng: random.Random, words: int, n: int) -> list[str]:
    vocab = (
        "the a sea moon rain forest city fire snow river wind stone pale quiet wild old bright cold sings "
        "waits burns drifts breaks sleeps turns market report growth policy light dream road heart".split()
    )
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def bench_creative(seconds: float) -> dict[str, tuple[float, float]]:
    rng = random.Random(0)
    out = {}
    for kind in ("lexical", "embedding"):
        scorer = CreativeScorer(CreativeReward(novelty_kind=kind, novelty_reduce="max", memory_size=512))
        scorer.novelty(_texts(rng, 10, 512))  # fill the memory (and load the model)
        for label, words in (("short lines (10 words)", 10), ("paragraphs (150 words)", 150)):
            out[f"creative {kind} novelty, {label}, memory 512"] = timed(
                lambda: len(scorer.novelty(_texts(rng, words, GROUP))), seconds
            )
    return out


def bench_creative_kinds(seconds: float, reference_model: str | None = None) -> dict[str, tuple[float, float]]:
    """Whole creative scoring (gate, fluency, quality, then the kind's term) on groups of 8 short
    lines (half the suite's demonstrations, half random words), the way a reward worker scores
    them; with `reference_model`, also fluency's `order: lm` on that causal-LM folder."""
    from counterpoint.rollout.config import DiversityWeightedReward, PreferenceReward
    from counterpoint.rollout.tasks.creative import CreativeDomain

    rng = random.Random(1)
    out = {}
    for label, reward in (
        ("novelty", CreativeReward()),
        ("preference", PreferenceReward()),
        ("diversity_weighted", DiversityWeightedReward()),
        ("novelty, fluency off", CreativeReward(fluency={"enabled": False})),
        *(
            [("novelty, fluency order lm", CreativeReward(fluency={"order": "lm", "reference_model": reference_model}))]
            if reference_model
            else []
        ),
    ):
        domain = CreativeDomain(reward)
        domain.warm_up()

        def group() -> int:
            prompt, demo = domain.make(rng, "bench")
            responses = [demo if i % 2 else " " + " ".join(_texts(rng, 7, 1)) for i in range(GROUP)]
            return len(domain.score_group(prompt, responses))

        out[f"creative {label}, whole reward, short lines"] = timed(group, seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    parser.add_argument("--only", default="", help="comma-separated: math,code,creative,creative_kinds")
    parser.add_argument(
        "--reference-model", default=None, help="a causal-LM folder: also time fluency's `order: lm` on it"
    )
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    only = args.only.split(",") if args.only else ["math", "code", "creative", "creative_kinds"]
    benches = {
        "math": bench_math,
        "code": bench_code,
        "creative": bench_creative,
        "creative_kinds": lambda seconds: bench_creative_kinds(seconds, args.reference_model),
    }
    rows = {}
    for name in only:
        rows.update(benches[name](args.seconds))
    width = max(map(len, rows))
    print(f"{'':<{width}}  {'per s':>8}  {'CPU ms each':>11}")
    for name, (rate, cpu_ms) in rows.items():
        print(f"{name:<{width}}  {rate:8.1f}  {cpu_ms:11.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
