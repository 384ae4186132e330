"""`python -m selfdistill.report RUN_DIR` in a subprocess: two paths out, exit 2 on a user error, and
the report stays a pure core (no torch, transformers or vllm imported)."""

import subprocess
import sys

PROBE = (
    "import sys, runpy; sys.argv = ['selfdistill.report', sys.argv[1]]\n"
    "try:\n    runpy.run_module('selfdistill.report', run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code\n"
    "heavy = [m for m in ('torch', 'transformers', 'vllm') if m in sys.modules]\n"
    "print('heavy:', heavy); sys.exit(code)\n"
)


def test_module_prints_both_paths_and_imports_no_heavy_backend(pre_only):
    out = subprocess.run([sys.executable, "-c", PROBE, str(pre_only)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == [str(pre_only / "report.md"), str(pre_only / "report.html")]
    assert lines[2] == "heavy: []"


def test_missing_run_dir_exits_2_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "selfdistill.report", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert "run directory" in out.stderr and "does not exist" in out.stderr and "Traceback" not in out.stderr
