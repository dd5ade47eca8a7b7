"""How the machine's cores are split between the engines and the learner ranks (pure)."""

import pytest

from counterpoint.cluster.cores import machine_cores, split_cores


def test_one_phase_at_a_time_gives_the_learner_every_core_and_an_engine_one_thread():
    split = split_cores(2, engines=1, ranks=1, overlapped=False)
    assert (split.engine_threads, split.learner_threads, split.oversubscribed) == (1, 2, False)
    split = split_cores(8, engines=2, ranks=2, overlapped=False, engine_threads=4)
    assert (split.engine_threads, split.learner_threads) == (4, 4)


def test_overlapped_phases_split_the_cores_by_the_generation_share():
    split = split_cores(2, engines=1, ranks=1, overlapped=True)
    assert (split.engine_threads, split.learner_threads, split.oversubscribed) == (1, 1, False)
    split = split_cores(16, engines=2, ranks=4, overlapped=True, generate_share=0.25)
    assert (split.engine_threads, split.learner_threads) == (1, 3)
    assert not split.oversubscribed and "2x1 engine threads, 4x3 learner threads (overlapped)" in split.describe()


def test_more_workers_than_cores_is_flagged_and_overrides_win():
    split = split_cores(2, engines=1, ranks=2, overlapped=True)
    assert (split.engine_threads, split.learner_threads) == (1, 1) and split.oversubscribed
    assert "oversubscribed" in split.describe()
    split = split_cores(2, engines=1, ranks=1, overlapped=False, engine_threads=1, learner_threads=3)
    assert (split.engine_threads, split.learner_threads, split.oversubscribed) == (1, 3, True)


def test_bad_arguments_are_refused_and_the_machine_has_a_core():
    with pytest.raises(ValueError, match="cores, engines and ranks must be >= 1"):
        split_cores(0, engines=1, ranks=1, overlapped=False)
    with pytest.raises(ValueError, match="generate_share"):
        split_cores(4, engines=1, ranks=1, overlapped=True, generate_share=1.0)
    assert machine_cores() >= 1


def test_a_run_plans_its_threads_from_the_config_and_starts_each_actor_with_them():
    from counterpoint.cluster.cores import plan_threads, thread_env
    from counterpoint.config import load_config

    split = plan_threads(load_config(overrides=["generation.max_staleness=1"]))
    assert split.overlapped and split.engine_threads == 1 and split.ranks == 1
    on_policy = plan_threads(load_config(overrides=["learner.threads=3", "generation.threads=2"]))
    assert (on_policy.engine_threads, on_policy.learner_threads, on_policy.overlapped) == (2, 3, False)
    # a remote cluster keeps Ray's one thread per CPU unless the config names the numbers
    assert plan_threads(load_config(overrides=["cluster.address=ray://127.0.0.1:10001"])) is None
    env = thread_env({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}, 4)
    assert env == {"env_vars": {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4", "HF_HUB_OFFLINE": "1"}}
