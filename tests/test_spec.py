"""The spec refuses: every missing or invalid field is named at once, with its meaning."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from selfdistill.errors import SpecError
from selfdistill.spec import Spec, load_spec

QUICKSTART = Path(__file__).parents[1] / "selfdistill" / "data" / "quickstart.toml"


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def quickstart_without(*dotted: str) -> str:
    """The quickstart spec with the given lines (section.key) removed."""
    out, section = [], None
    for line in QUICKSTART.read_text().splitlines():
        m = re.match(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
        key = line.split("=")[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key and f"{section}.{key}" in dotted:
            continue
        out.append(line)
    return "\n".join(out)


def refusal(path: Path) -> str:
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    return str(exc.value)


def test_quickstart_is_complete():
    spec = load_spec(QUICKSTART)
    assert isinstance(spec, Spec)
    assert spec.diagnostics.k == [1, 4, 8, 16]
    assert spec.gpu_hours_total == pytest.approx(8.0)


def test_every_missing_field_is_named_at_once(tmp_path):
    gone = ("model.license", "budget.team_size", "failure_cost.rollback", "task.distribution")
    msg = refusal(write(tmp_path, quickstart_without(*gone)))
    assert "missing 4 fields" in msg
    for field in gone:
        assert field in msg
    assert "how a bad model is rolled back" in msg  # the meaning travels with the name


def test_missing_section_names_each_required_field(tmp_path):
    text = QUICKSTART.read_text()
    text = text[: text.index("[comparator]")] + text[text.index("[failure_cost]"):]
    msg = refusal(write(tmp_path, text))
    assert "comparator.kind" in msg and "sft-external | rejection-sampling-sft | dpo | grpo" in msg


def test_empty_file_names_all_required_fields(tmp_path):
    msg = refusal(write(tmp_path, ""))
    required = ["model.name", "model.parameters_b", "model.license", "model.context_length", "task.languages",
                "task.distribution", "task.product_surface", "heldout.task", "budget.gpu_hours_sampling",
                "budget.gpu_hours_training", "budget.gpu_hours_eval", "budget.team_size",
                "budget.latency_to_first_signal_hours", "comparator.kind", "failure_cost.level",
                "failure_cost.checkpoint_discipline", "failure_cost.heldout_blocker", "failure_cost.rollback"]
    for field in required:
        assert field in msg, field
    assert f"missing {len(required)} fields" in msg


def test_invalid_and_missing_reported_together(tmp_path):
    text = quickstart_without("model.license").replace('distribution = "algorithmic"', 'distribution = "algo"')
    msg = refusal(write(tmp_path, text))
    assert "model.license" in msg and "task.distribution" in msg and "'algo'" in msg


def test_unknown_field_suggests_the_right_name(tmp_path):
    text = QUICKSTART.read_text().replace("license =", "licence =")
    msg = refusal(write(tmp_path, text))
    assert "model.licence" in msg and "did you mean 'license'" in msg


def test_k_must_include_4_8_16_unless_lowered_explicitly(tmp_path):
    text = QUICKSTART.read_text().replace("k = [1, 4, 8, 16]", "k = [1, 4]")
    assert "leaves out [8, 16]" in refusal(write(tmp_path, text))
    lowered = text.replace("k = [1, 4]", 'k = [1, 4]\nlower_k_reason = "latency budget allows 4 samples"')
    assert load_spec(write(tmp_path, lowered, "ok.toml")).diagnostics.k == [1, 4]


def test_n_must_cover_the_largest_k(tmp_path):
    text = QUICKSTART.read_text().replace("n = 16 ", "n = 8 ")
    assert "pass@16 but n=8" in refusal(write(tmp_path, text))


def test_missing_heldout_file_is_named(tmp_path):
    text = QUICKSTART.read_text().replace('task = "humaneval"', 'task = "no/such.jsonl"')
    msg = refusal(write(tmp_path, text))
    assert "heldout.task" in msg and "no such file" in msg


def test_relative_paths_resolve_against_the_spec_file(tmp_path):
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "held.jsonl").write_text("{}\n")
    text = QUICKSTART.read_text().replace('task = "humaneval"', 'task = "sets/held.jsonl"')
    spec = load_spec(write(tmp_path, text))
    assert Path(spec.heldout.task) == tmp_path / "sets" / "held.jsonl"


def test_toml_syntax_error_is_a_spec_error(tmp_path):
    msg = refusal(write(tmp_path, "[model\nname = 1"))
    assert "not valid TOML" in msg


def test_missing_spec_file(tmp_path):
    assert "does not exist" in refusal(tmp_path / "absent.toml")


def test_spec_is_frozen():
    spec = load_spec(QUICKSTART)
    with pytest.raises(ValidationError):
        spec.model.name = "other"  # type: ignore[misc]


def test_every_example_spec_is_complete():
    from selfdistill.checks import check_spec

    examples = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))
    specs = [p for p in examples if "[model]" in p.read_text()]
    assert len(specs) >= 2
    for path in specs:
        assert check_spec(path).heldout.problems, path
