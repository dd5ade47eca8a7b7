"""Sandbox runs of these tests use uids of their own, so runs of a training job on the same host
(which use `SANDBOX_UIDS`) are never mistaken for processes a test left behind."""

from __future__ import annotations

import pytest

from counterpoint.rollout.rewards.sandbox import bwrap

TEST_SANDBOX_UIDS = range(65200, 65232)


@pytest.fixture(autouse=True)
def _test_sandbox_uids(monkeypatch):
    monkeypatch.setattr(bwrap, "SANDBOX_UIDS", TEST_SANDBOX_UIDS)
