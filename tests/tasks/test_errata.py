import pytest

from selfdistill.errors import DataError
from selfdistill.tasks.errata import Exclusion, apply_errata, load_errata
from selfdistill.tasks.problem import AssertTests, Problem


def problem(task_id: str) -> Problem:
    return Problem(task_id=task_id, prompt=f"prompt {task_id}", tests=AssertTests("assert True"), source="t")


PROBLEMS = [problem(f"t/{i}") for i in range(5)]


def write(tmp_path, text: str):
    path = tmp_path / "errata.toml"
    path.write_text(text)
    return path


def test_apply_keeps_order_and_returns_reasons(tmp_path):
    errata = load_errata(
        write(
            tmp_path,
            '[[exclude]]\ntask_id = "t/3"\nreason = "bad test"\n\n'
            '[[exclude]]\ntask_id = "t/1"\nreason = "ambiguous"\n',
        )
    )
    kept, excluded = apply_errata(PROBLEMS, errata)
    assert [p.task_id for p in kept] == ["t/0", "t/2", "t/4"]
    assert excluded == [Exclusion("t/3", "bad test"), Exclusion("t/1", "ambiguous")]


def test_empty_errata_file_excludes_nothing(tmp_path):
    kept, excluded = apply_errata(PROBLEMS, load_errata(write(tmp_path, "")))
    assert kept == PROBLEMS and excluded == []


def test_unknown_ids_are_named(tmp_path):
    errata = load_errata(
        write(
            tmp_path,
            '[[exclude]]\ntask_id = "t/9"\nreason = "r"\n'
            '[[exclude]]\ntask_id = "t/1"\nreason = "r"\n'
            '[[exclude]]\ntask_id = "T/2"\nreason = "r"\n',
        )
    )
    with pytest.raises(DataError, match=r"errata\.toml: 2 task_ids not in the task set: t/9, T/2"):
        apply_errata(PROBLEMS, errata)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[[exclude]]\ntask_id = "t/1"\n', 'entry #1 (task_id = "t/1"): reason must say why'),
        ('[[exclude]]\ntask_id = "t/1"\nreason = "  "\n', "reason must say why"),
        ('[[exclude]]\nreason = "r"\n', "entry #1: task_id must be a non-empty string"),
        ('[[exclude]]\ntask_id = "t/1"\nreson = "r"\n', 'unknown key "reson" (did you mean "reason"?)'),
        (
            '[[exclude]]\ntask_id = "t/1"\nreason = "r"\n[[exclude]]\ntask_id = "t/1"\nreason = "s"\n',
            "listed twice",
        ),
        ('[exclude]\ntask_id = "t/1"\nreason = "r"\n', "write each entry as [[exclude]]"),
        ('[[excludes]]\ntask_id = "t/1"\nreason = "r"\n', 'unknown top-level key "excludes"'),
        ("[[exclude]]\ntask_id = t/1\n", "not valid TOML"),
    ],
)
def test_invalid_files(tmp_path, text, expected):
    with pytest.raises(DataError) as e:
        load_errata(write(tmp_path, text))
    assert expected in str(e.value) and "errata.toml" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file; expected an errata TOML file"):
        load_errata(tmp_path / "none.toml")
