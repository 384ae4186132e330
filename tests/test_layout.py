"""The run layout: one writer per manifest key, the run's spec recorded once, round 2's held-out slice in its
own entry, sealed declarations, and schema tags checked when a summary is read back."""

import json
from types import SimpleNamespace

import pytest

from selfdistill import layout
from selfdistill.errors import DataError
from selfdistill.spec import Spec
from tests.report.fixtures import spec_json


def _spec(**generation) -> Spec:
    raw = spec_json()
    raw["generation"] |= generation
    return Spec.model_validate(raw)


def _heldout(task: str) -> SimpleNamespace:
    return SimpleNamespace(provenance={"task": task, "n_problems": 3})


def test_the_run_spec_is_recorded_once_and_an_arms_copy_never_overwrites_it(tmp_path):
    spec = _spec(temperature=0.8)
    layout.record_run(tmp_path, spec, _heldout("h.jsonl"))
    layout.record_run(tmp_path, _spec(temperature=1.1), _heldout("other.jsonl"))  # an arm's modified copy
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["spec"] == spec.model_dump(mode="json")
    assert manifest["spec"]["generation"]["temperature"] == 0.8
    assert manifest["heldout"]["task"] == "h.jsonl"
    assert {"created", "selfdistill_version", "python", "platform"} <= set(manifest)


def test_round_two_keeps_its_own_held_out_slice_and_spec(tmp_path):
    spec = _spec()
    layout.record_run(tmp_path, spec, _heldout("h.jsonl"))
    layout.stamp_round(tmp_path, 1, forced=True, limit=None, spec=spec, heldout=_heldout("h.jsonl"))
    r2 = spec.model_copy(update={"ssd": spec.ssd.model_copy(update={"round": 2})})
    layout.stamp_round(tmp_path, 2, forced=False, limit=None, spec=r2, heldout=_heldout("fresh.jsonl"))
    layout.stamp_round(tmp_path, 1, forced=False, limit=None, spec=spec, heldout=_heldout("h.jsonl"))  # resumed
    manifest = layout.read_manifest(tmp_path)
    assert manifest["heldout"]["task"] == "h.jsonl" and manifest["spec"]["ssd"]["round"] == 1
    assert manifest["rounds"]["round1"]["forced"] is True  # once forced, always
    assert manifest["rounds"]["round2"]["heldout"]["task"] == "fresh.jsonl"
    assert manifest["rounds"]["round2"]["spec"]["ssd"]["round"] == 2
    assert manifest["rounds"]["round1"]["spec_sha256"] == layout.spec_sha256(spec)


def test_a_declaration_is_sealed_and_a_writer_cannot_touch_another_writers_key(tmp_path):
    assert layout.declare(tmp_path, "gate", {"values": {"min_lift_pp": 3.0}, "sha256": "a"})["sha256"] == "a"
    assert layout.declare(tmp_path, "gate", {"values": {"min_lift_pp": 1.0}, "sha256": "b"})["sha256"] == "a"
    with pytest.raises(RuntimeError, match="does not own: spec"):
        layout._update(tmp_path, "declare", lambda m: m.__setitem__("spec", {}))
    assert set(layout.MANIFEST_OWNERS.values()) == {"record_run", "stamp_round", "declare"}


@pytest.mark.parametrize(("tag", "match"), [("selfdistill.gate/0", "carries schema 'selfdistill.gate/0'"),
                                            (None, "carries no schema tag")])
def test_a_summary_from_another_version_is_refused_naming_both_tags(tmp_path, tag, match):
    path = tmp_path / "gate.json"
    path.write_text(json.dumps({"decision": "ENTER"} | ({"schema": tag} if tag else {})))
    with pytest.raises(DataError, match=match) as err:
        layout.read_record(path, "gate")
    assert "selfdistill.gate/1" in str(err.value) and str(path) in str(err.value)


def test_a_summary_from_this_version_is_read():
    assert layout.check_schema({"schema": "selfdistill.round/1", "arms": []}, "round.json", "round")["arms"] == []


def test_every_writer_tags_with_the_layouts_schema():
    from selfdistill.decide import precondition
    from selfdistill.metrics import summary
    from selfdistill.ssd import gate, probe, promotion

    assert layout.SCHEMAS["metrics"] == summary.SCHEMA
    assert layout.SCHEMAS["verdict"] == precondition.SCHEMA
    assert layout.SCHEMAS["gate"] == gate.SCHEMA
    assert layout.SCHEMAS["battery"] == probe.SCHEMA
    assert layout.SCHEMAS["promotion"] == promotion.SCHEMA


def test_arm_directories_and_stage_labels():
    assert layout.arm_dir_name("base", 0.8, 0.8) == "base"
    assert layout.arm_dir_name("base", 1.1, 0.8) == "base-T1.1"
    assert layout.arm_dir_name("ssd", 1.1, 0.8, 2) == "r2-ssd-T1.1"
    assert layout.stage_label("samples", 2) == "r2-samples" and layout.stage_label("samples") == "samples"
    assert layout.round_file("run", layout.GATE).as_posix() == "run/round1/gate.json"


def test_a_run_directory_from_another_version_exits_2_naming_the_file(tmp_path):
    import subprocess
    import sys

    from tests.report.fixtures import write_run

    run = write_run(tmp_path / "run")
    summary = json.loads((run / "round1" / "round.json").read_text())
    (run / "round1" / "round.json").write_text(json.dumps(summary | {"schema": "selfdistill.round/2"}))
    out = subprocess.run([sys.executable, "-m", "selfdistill", "report", str(run)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "round1/round.json carries schema 'selfdistill.round/2'" in out.stderr
    assert "reads 'selfdistill.round/1'" in out.stderr
