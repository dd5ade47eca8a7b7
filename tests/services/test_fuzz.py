"""Fuzz the control plane with schemathesis from its own OpenAPI document, in process (ASGI):
valid and invalid requests to every operation, with an operator token, must never get a 5xx.

Each operation gets a bounded number of Hypothesis examples per mode, so this runs in well under
a minute on 2 cores. (It drives Hypothesis directly through `APIOperation.as_strategy` rather
than schemathesis's pytest plugin, whose lazy-fixture loader does not run under pytest 9.2.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from counterpoint.services.app import create_app
from counterpoint.services.auth import Auth
from counterpoint.services.backend import LocalBackend
from counterpoint.trainer.curriculum.controller import ScheduleController

OPERATOR = "op-token-0123456789abcdef"
EXAMPLES_PER_OPERATION = 15
STAGES = [
    {
        "name": "structured",
        "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0}},
        "advance": {"type": "plateau", "domain": "math", "window": 3},
    },
    {"name": "creative", "domains": {"creative": {"weight": 1.0, "entropy_target": 0.5}}},
]


@pytest.mark.parametrize(
    "mode, real_run",
    [(GenerationMode.POSITIVE, True), (GenerationMode.NEGATIVE, True), (GenerationMode.POSITIVE, False)],
)
def test_no_request_gets_a_server_error(tmp_path, mode, real_run):
    ScheduleController(tmp_path / "demo", STAGES, domains=["math", "code", "creative"])
    app = create_app(LocalBackend(tmp_path), Auth([("fuzz", OPERATOR, "operator")]))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        has_run = any(p.name == "run_id" for p in operation.path_parameters)
        fixed = {"run_id": "demo"} if real_run and has_run else None

        @given(case=operation.as_strategy(mode, path_parameters=fixed))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call(headers={"Authorization": f"Bearer {OPERATOR}"})
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Unsatisfiable:  # no invalid request exists for an operation without inputs (/healthz)
            assert mode == GenerationMode.NEGATIVE
        except Exception as err:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {err}")
    assert operations >= 12
    assert not failures, "\n\n".join(failures)
