"""Load and faults (issue 14) on a real ComfyUI with the pack's vidiff-mini model: 50 prompts back to back, two
clients at once, cancelling and deleting, and a server killed during a batch. The figures are printed (-s shows
them); bench/load.py measures the same scenarios and prints a table."""

from __future__ import annotations

import json

import pytest
from load_scenarios import back_to_back, cancel_and_delete, kill_during_batch, start_load_server, two_clients

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def load_server(tmp_path_factory):
    """Its own server (not the session one): fresh process for the RSS and open counts, and one it may kill."""
    server = start_load_server(tmp_path_factory.mktemp("comfyui_load"))
    yield server
    server.stop()


def _report(name: str, figures: dict) -> None:
    print(f"\n{name}: {json.dumps(figures, default=str)}")


def test_fifty_prompts_back_to_back(load_server, tmp_path):
    f = back_to_back(load_server, tmp_path, 50)
    _report("50 prompts back to back", f)
    assert f["succeeded"] == 50 and f["distinct_outputs"] == 50
    assert abs(f["rss_growth"]) <= 0.05, f  # RSS after the 50th within 5 % of after the 5th
    # the model file is read while the first prompt runs, never again (opened once per tensor by that one load)
    assert f["prompts_reading_model"] == 1 and f["first_prompt_reading_model"] == 1, f


def test_two_clients_at_once_each_get_their_own_results(load_server, tmp_path):
    f = two_clients(load_server, tmp_path)
    _report("two clients", f)
    assert f["return_codes"] == [0, 0] and f["own_results"] == [True, True], f


def test_cancel_running_and_delete_queued_leave_the_rest_running(load_server, tmp_path):
    f = cancel_and_delete(load_server, tmp_path)
    _report("cancel and delete", f)
    assert f["statuses"] == ["interrupted", "success", "never ran", "success"], f
    assert f["in_history"] == [True, True, False, True] and not f["third_queued"], f
    assert f["steps_after_interrupt"] <= 1, f  # at most the step under way finishes


def test_server_killed_during_batch_then_rerun(load_server, tmp_path):
    f = kill_during_batch(load_server, tmp_path, 4)
    _report("server killed during a batch", f)
    assert f["client_rc_after_kill"] == 3 and "rerun" in f["client_error"], f
    assert 1 <= f["done_before_kill"] < 4, f
    assert f["rerun_rc"] == 0, f["rerun_stderr"]
    statuses = list(f["rerun_statuses"].values())
    assert statuses.count("skipped") == f["done_before_kill"] and statuses.count("done") == 4 - f["done_before_kill"]
    assert f["kept_unchanged"] and f["outputs_present"] == 4, f
    assert load_server.get("/system_stats")  # the restarted server serves on
