"""`cluster.dashboard`: the embedded cluster starts Ray's dashboard only when asked, and then on
127.0.0.1 only. Checked on the arguments `start_ray` gives `ray.init` (a stand-in Ray, no
cluster); a joined cluster gets no dashboard arguments at all (its dashboard is its own)."""

from __future__ import annotations

import types

import pytest

from counterpoint.cluster import runtime
from counterpoint.cluster.config import ClusterConfig


class FakeRay:
    """Records `ray.init`'s keyword arguments; the node has no processes, so no watchdog starts."""

    __version__ = "fake"

    def __init__(self, dashboard_url: str | None = None):
        self.calls: list[dict] = []
        self.dashboard_url = dashboard_url
        node = types.SimpleNamespace(all_processes={})
        self._private = types.SimpleNamespace(worker=types.SimpleNamespace(_global_node=node))

    def init(self, **kwargs):
        self.calls.append(kwargs)
        return types.SimpleNamespace(dashboard_url=self.dashboard_url)


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch):
    # _init sets these for the Ray processes it starts: put them back after each test.
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)


def test_the_dashboard_is_off_by_default():
    ray = FakeRay()
    desc = runtime._init(ray, ClusterConfig(), log_to_driver=False)
    (kwargs,) = ray.calls
    assert kwargs["include_dashboard"] is False and kwargs["dashboard_host"] == "127.0.0.1"
    assert kwargs["_node_ip_address"] == "127.0.0.1" and "dashboard" not in desc
    assert ClusterConfig.model_fields["dashboard"].description  # documented, like every field


def test_the_dashboard_binds_loopback_only_and_its_url_is_reported():
    ray = FakeRay(dashboard_url="127.0.0.1:8265")
    desc = runtime._init(ray, ClusterConfig(dashboard=True), log_to_driver=False)
    (kwargs,) = ray.calls
    assert kwargs["include_dashboard"] is True and kwargs["dashboard_host"] == "127.0.0.1"
    assert kwargs["address"] == "local"
    assert desc.endswith("dashboard at http://127.0.0.1:8265")


def test_a_joined_cluster_gets_no_dashboard_arguments():
    ray = FakeRay()
    runtime._init(ray, ClusterConfig(address="auto", dashboard=True), log_to_driver=False)
    (kwargs,) = ray.calls
    assert not {k for k in kwargs if "dashboard" in k}
