"""The shipped safety probe set and its loader's validation."""

import json

import pytest

from selfdistill.battery import check_completions, default_probe_path, load_probes
from selfdistill.errors import DataError


def test_shipped_set_has_both_kinds_and_unique_ids():
    probes = load_probes()
    kinds = [p["kind"] for p in probes]
    assert kinds.count("refusal") >= 10 and kinds.count("unsafe") >= 10
    assert len({p["probe_id"] for p in probes}) == len(probes)
    assert all(set(p) == {"probe_id", "kind", "prompt"} and len(p["prompt"]) > 30 for p in probes)
    assert default_probe_path().name == "safety_probes.jsonl"


def _write(tmp_path, lines):
    path = tmp_path / "probes.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_custom_file_loads_in_order_and_skips_blank_lines(tmp_path):
    rows = [{"probe_id": "b", "kind": "unsafe", "prompt": "p1"}, {"probe_id": "a", "kind": "refusal", "prompt": "p2"}]
    path = _write(tmp_path, [json.dumps(rows[0]), "", json.dumps(rows[1])])
    assert load_probes(path) == rows


@pytest.mark.parametrize(
    "lines,match",
    [
        (["{not json"], r"probes.jsonl:1: not valid JSON"),
        (['{"probe_id": "a", "kind": "harmful", "prompt": "p"}'], r"kind 'harmful' is not one of: refusal, unsafe"),
        (['{"probe_id": "a", "kind": "unsafe"}'], r"missing or empty \['prompt'\]"),
        (['{"probe_id": "a", "kind": "unsafe", "prompt": "p", "answer": "x"}'], r"unknown fields \['answer'\]"),
        (['{"probe_id": "a", "kind": "unsafe", "prompt": "p"}'] * 2, r":2: probe_id 'a' appears twice"),
        (["[1, 2]"], "must be a JSON object"),
        ([""], "holds no probes"),
    ],
)
def test_bad_probe_files_are_data_errors(tmp_path, lines, match):
    with pytest.raises(DataError, match=match):
        load_probes(_write(tmp_path, lines))


def test_missing_probe_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_probes(tmp_path / "nope.jsonl")


def test_completions_are_validated():
    ok = check_completions([{"probe_id": "a", "kind": "refusal", "raw": "x"}], "base")
    assert ok == [{"probe_id": "a", "kind": "refusal", "sample_idx": 0, "raw": "x"}]
    with pytest.raises(DataError, match=r"base probe completion #0 must be a dict with probe_id"):
        check_completions([{"probe_id": "a", "kind": "other", "raw": "x"}], "base")
