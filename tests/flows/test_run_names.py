"""The Prefect UI, readable: runs named after what they work on, every parameter of every
deployment described (the form under Run shows it), `day` a date picker."""

from __future__ import annotations

import pytest
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.utilities.callables import parameter_schema

from deployments import serve
from flows.catalog import load_processes
from flows.model_testing import model_test
from flows.run_names import NAME_MAX, describe
from mlc_tasks.settings import MlcSettings


@pytest.mark.parametrize(("parameters", "name"), [
    ({"model": "credit-risk", "number": 2}, "credit-risk:2 on-model-changed"),
    ({"model": "credit-risk", "version": 3, "tags": {}}, "credit-risk:3 on-model-changed"),
    ({"model": "credit-risk", "number": 0}, "credit-risk:0 on-model-changed"),
    ({"model": "credit-risk", "data": None}, "credit-risk on-model-changed"),
    ({"model": None, "day": None}, "all models on-model-changed"),
    ({"model": "house-prices", "day": "2026-11-25"}, "house-prices on-model-changed 2026-11-25"),
    ({"model": "x" * 300}, ("x" * 300)[:NAME_MAX]),
])
def test_a_run_is_named_after_what_it_works_on(parameters, name) -> None:
    assert describe("on-model-changed", parameters) == name


def served_flows() -> list[Flow]:
    ours = [value for value in vars(serve).values() if isinstance(value, Flow)]
    return ours + [declared.flow for declared in load_processes(MlcSettings().process_folders())]


def test_every_parameter_of_every_served_flow_is_described() -> None:
    flows = served_flows()
    assert len(flows) >= 12
    for flow in flows:
        schema = parameter_schema(flow.fn).model_dump_for_openapi()
        for name, field in schema["properties"].items():
            assert field.get("description"), f"{flow.name}: parameter '{name}' has no description"
        day = schema["properties"].get("day")
        if day is not None:
            assert {"type": "string", "format": "date"} in day["anyOf"], flow.name


def test_every_flow_about_a_model_names_its_runs() -> None:
    for flow in served_flows():
        if "model" in parameter_schema(flow.fn).model_dump_for_openapi()["properties"]:
            assert flow.flow_run_name is not None, flow.name


def test_a_real_run_carries_its_name(prefect_server) -> None:
    state = model_test("no-such-model", 7, return_state=True)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "no-such-model:7 test-model"
