"""Terminal views for cli.py: the pass@k table with CIs, status counts, the progress of long stages (a rich
bar on a terminal, timed lines in a log) and the contamination report. Presentation only;
numbers come from the metrics dict as written to disk.
"""

from __future__ import annotations

import sys
import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from selfdistill.execute.outcome import Status

console = Console(stderr=False, highlight=False)


def pp(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def metrics_table(metrics: dict, title: str = "pass@k (95% CI, problem-level bootstrap)") -> Table:
    table = Table(title=title)
    table.add_column("group")
    table.add_column("problems", justify="right")
    for k in metrics["ks"]:
        table.add_column(f"pass@{k} %", justify="right")
    groups = [("overall", metrics)] + [(name, g) for name, g in metrics.get("slices", {}).items()]
    for name, group in groups:
        cells = []
        for k in metrics["ks"]:
            m = group["metrics"][f"pass@{k}"]
            cells.append(f"{pp(m['value'])} [{pp(m['ci_low'])}, {pp(m['ci_high'])}]")
        table.add_row(name, str(group["metrics"]["pass@1"]["n_problems"]), *cells)
    return table


def status_line(counts: dict) -> str:
    return " · ".join(f"{s.value} {counts.get(s.value, 0)}" for s in Status)


def print_metrics(metrics: dict) -> None:
    console.print(metrics_table(metrics))
    console.print(f"slices: {metrics['slice_source']}"
                  + (f" ({metrics['slice_note']})" if metrics.get("slice_note") else ""))
    console.print(f"samples {metrics['n_samples']}: {status_line(metrics['status_counts'])}")
    if metrics["status_counts"].get(Status.INFRA.value):
        console.print("[yellow]infra outcomes are harness faults: excluded from pass@k, not model failures[/]")


class _Bar:
    """One progress display for a stage with a running figure after the count: the rich bar on stderr when
    stdout and stderr are terminals; otherwise (a log, a pipe, CI) plain lines on stdout, one when the stage
    starts, then one at least every LINE_EVERY_S seconds even while nothing finishes (a heartbeat thread: a
    batch of 16 long samples can take minutes), and one at the end, each with done/total, the running
    figure, the elapsed time and an ETA from the rate since the stage started."""

    LINE_EVERY_S = 20.0

    def __init__(self, label: str) -> None:
        self._label = label
        self._tty = sys.stdout.isatty() and sys.stderr.isatty()
        self._bar = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(), console=Console(stderr=True),
        ) if self._tty else None
        self._task = None
        self._total = self._done = self._done0 = 0
        self._figure = ""
        self._t0 = self._printed = time.monotonic()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"progress-{label}", daemon=True)

    def __enter__(self):
        _ACTIVE_BARS.append(self)
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE_BARS.remove(self)
        Heartbeat.touch()
        if self._bar is not None:
            self._bar.__exit__(*exc)
            return
        self._stop.set()
        if self._beat.is_alive():
            self._beat.join()
            self._print_line()

    def _add(self, total: int, done: int) -> None:
        self._total, self._done, self._done0 = total, done, done
        self._t0 = time.monotonic()
        if self._bar is not None:
            self._task = self._bar.add_task(self._label, total=total, completed=done, line="")
            return
        self._print_line()
        self._beat.start()

    def _update(self, advance: int, figure: str) -> None:
        self._done += advance
        self._figure = figure
        if self._bar is not None:
            self._bar.update(self._task, advance=advance, line=figure)

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(1.0, self.LINE_EVERY_S / 4)):
            if time.monotonic() - self._printed >= self.LINE_EVERY_S:
                self._print_line()

    def _print_line(self) -> None:
        self._printed = time.monotonic()
        Heartbeat.touch()
        print(progress_line(self._label, self._done, self._total, self._figure_now(), self._printed - self._t0,
                            self._done - self._done0), flush=True)

    def _figure_now(self) -> str:
        """The running figure as of now (a rate must be recomputed at each heartbeat)."""
        return self._figure


_ACTIVE_BARS: list[_Bar] = []


class Heartbeat:
    """For a command whose stages run long without a progress bar of their own (training in its own process,
    the export, the battery's probes): a line at least every LINE_EVERY_S seconds when nothing else printed,
    `... still training the minimal SSD arm ... · 3m20s in this stage · 14m05s in all`. `say` prints a stage
    banner and starts its clock; while a progress bar is open the bar speaks instead."""

    LINE_EVERY_S = 20.0
    _last = time.monotonic()

    def __init__(self) -> None:
        self._stage, self._stage_t0 = "", time.monotonic()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    @classmethod
    def touch(cls) -> None:
        cls._last = time.monotonic()

    def say(self, message: str) -> None:
        console.print(message)
        self._stage, self._stage_t0 = message, time.monotonic()
        Heartbeat.touch()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.LINE_EVERY_S / 4)):
            now = time.monotonic()
            if _ACTIVE_BARS or now - Heartbeat._last < self.LINE_EVERY_S or not self._stage:
                continue
            print(f"... still: {self._stage} · {_duration(now - self._stage_t0)} in this stage · "
                  f"{_duration(now - self._t0)} in all", flush=True)
            Heartbeat.touch()


def progress_line(label: str, done: int, total: int, figure: str, elapsed_s: float, done_here: int) -> str:
    """`generate 37/160 (23%) · 24.8 tok/s · pass 41.2% (35 scored) · 3m12s elapsed · ETA 10m40s`: the ETA
    extrapolates the rate of this invocation (done_here in elapsed_s), so a resumed stage is not credited
    with what an earlier one did."""
    share = f" ({100 * done / total:.0f}%)" if total else ""
    eta = _duration((total - done) * elapsed_s / done_here) if done_here and total > done else "—"
    if total and done >= total:
        eta = "done"
    return f"{label} {done}/{total}{share} {figure} · {_duration(elapsed_s)} elapsed · ETA {eta}".replace("  ", " ")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ExecutionProgress(_Bar):
    """`execute 1312/2624 · pass 41.2% · infra 0`, one bar for the stage."""

    def __init__(self) -> None:
        super().__init__("execute")
        self._ran = self._passed = self._infra = 0

    def start(self, total: int, done: int) -> None:
        self._add(total, done)

    def advance(self, record: dict) -> None:
        self._ran += 1
        self._passed += record["status"] == Status.PASSED.value
        self._infra += record["status"] == Status.INFRA.value
        self._update(1, f"· pass {100 * self._passed / self._ran:.1f}% · infra {self._infra}")


def print_contamination(report) -> None:
    if report.is_clean:
        console.print(f"clean: no overlap between {report.pool_size} pool and {report.heldout_size} held-out problems "
                      f"(exact match, {report.n}-gram overlap"
                      + (", release window)" if report.window_start or report.window_end else ")"))
        return
    console.print(f"[red]contaminated: {len(report.contaminated_ids)} held-out problems[/]")
    for task_id in report.contaminated_ids:
        console.print(f"  {task_id}: " + "; ".join(report.reasons(task_id)))


class EvalProgress(_Bar):
    """`generate 37/160 · 24.8 tok/s · pass 41.2% (35 scored) · infra 0`, one bar for the stage."""

    def __init__(self) -> None:
        super().__init__("generate")
        self._tokens = self._scored = self._passed = self._infra = 0
        self._t0 = time.monotonic()

    def start(self, total: int, done: int) -> None:
        self._add(total, done)
        self._t0 = time.monotonic()

    def generated(self, record: dict) -> None:
        self._tokens += record["completion_tokens"]
        self._update(1, self._line())

    def scored(self, record: dict) -> None:
        self._scored += 1
        self._passed += record["status"] == Status.PASSED.value
        self._infra += record["status"] == Status.INFRA.value
        self._update(0, self._line())

    def _figure_now(self) -> str:
        return self._line()

    def _line(self) -> str:
        rate = self._tokens / max(time.monotonic() - self._t0, 1e-9)
        passed = f"pass {100 * self._passed / self._scored:.1f}% ({self._scored} scored)" if self._scored else "pass —"
        return f"· {rate:.1f} tok/s · {passed} · infra {self._infra}"


def print_generation(metrics: dict) -> None:
    g = metrics.get("generation", {})
    if not g:
        return
    console.print(
        f"{g['n_samples']} samples from {g['backend']} ({g['model']}), T={g['sampling']['temperature']}, "
        f"top_k={g['sampling']['top_k']}, top_p={g['sampling']['top_p']}: no extractable code "
        f"{100 * g['no_code_share']:.1f}%, truncated {100 * g['truncated_share']:.1f}%, "
        f"median {g['completion_tokens_median']} tokens"
    )
    if not g.get("comparable", True):
        console.print(f"[yellow]--limit {g['limit']}: a subset of {g['limit']} problems; NOT comparable to a full "
                      f"run[/]")


def _ci(m: dict) -> str:
    return f"{pp(m['value'])} [{pp(m['ci_low'])}, {pp(m['ci_high'])}]"


def print_round(summary: dict) -> None:
    """The sweep (pass@1 against T_eff per arm) and the paired deltas with their CIs and slices."""
    arms = ["base", *summary["arms"]]
    table = Table(title=f"pass@1 % by T_eval (T_eff = T_train {summary['sampling']['t_train']:g} x T_eval), 95% CI")
    table.add_column("T_eval", justify="right")
    table.add_column("T_eff", justify="right")
    for arm in arms:
        table.add_column(arm, justify="right")
    for row in summary["sweep"]:
        table.add_row(f"{row['t_eval']:g}", f"{row['t_eff']:.3g}", *(_ci(row["arms"][a]["pass@1"]) for a in arms))
    console.print(table)
    deltas = Table(title=f"paired pass@1 deltas, pp, at T_eval {summary['t_eval']:g} (problem-level paired bootstrap)")
    deltas.add_column("comparison")
    deltas.add_column("overall", justify="right")
    for level in ("easy", "medium", "hard"):
        deltas.add_column(level, justify="right")
    for name, d in summary["deltas"].items():
        cells = [_ci(d["slices"][lv]) + f" (n={d['slices'][lv]['n_problems']})" if lv in d["slices"] else "—"
                 for lv in ("easy", "medium", "hard")]
        deltas.add_row(name, _ci(d["overall"]) + f" (n={d['overall']['n_problems']})", *cells)
    console.print(deltas)
    s = summary["sampling"]
    line = (f"samples: {s['n_samples']} at T_train {s['t_train']:g}, kept {s['kept_minimal']} "
            f"(no extractable code {100 * s['no_code_share']:.1f}%)" if not s.get("skipped") else
            f"samples: none at T_train ({s['skipped']}): SSD was refused, the comparator(s) measured instead")
    if "acceptance_rate" in s:
        line += f"; verifier acceptance {100 * s['acceptance_rate']:.1f}% ({s['kept_verifier']} kept)"
    console.print(line)
    first = next(iter(summary["deltas"].values()))
    console.print("slices: " + first["slice_source"]
                  + (f" ({first['slice_method']})" if first.get("slice_method") else ""))
    if first.get("slice_note"):
        console.print(f"  {first['slice_note']}")
    for stage, row in summary["costs"]["totals"]["stages"].items():
        console.print(f"cost {stage}: {row['wall_s'] / 60:.1f} min wall, {row['device_hours']:.3f} device-h, "
                      f"{row['gpu_hours']:.3f} GPU-h")
    if summary.get("forced"):
        past = summary.get("forced_past")
        console.print(f"[yellow]run with --force{f' past the {past} precondition verdict' if past else ''}: "
                      "every result is stamped forced[/]")
    if not summary.get("comparable", True):
        console.print(f"[yellow]--limit {summary['limit']}: a subset; NOT comparable to a full run[/]")


def print_battery(result: dict) -> None:
    for arm, res in result["arms"].items():
        table = Table(title=f"anti-collapse battery: {arm} vs base (thresholds declared "
                            f"{result['thresholds_sha256'][:12]})")
        for col in ("probe", "family", "value", "base", "change [95% CI]", "threshold", "status"):
            table.add_column(col)
        for p in res["probes"]:
            status = {"alert": "[red]ALERT[/]", "watch": "[yellow]watch[/]", "pass": "[green]pass[/]"}.get(
                p["status"], p["status"])
            change = f"{_num(p['change'])} [{_num(p.get('ci_low'))}, {_num(p.get('ci_high'))}]"
            table.add_row(p["name"], p["family"], _num(p["value"]), _num(p["base_value"]), change, _num(p["threshold"]),
                          status)
        console.print(table)
        console.print(f"{arm}: " + ("[green]green[/]" if res["green"] else f"[red]{res['n_alerts']} alert(s)[/]")
                      + (f"; [yellow]watch[/] (point estimate beyond its tolerance, CI not; blocks nothing): "
                         f"{', '.join(res['watch'])}" if res.get("watch") else "")
                      + (" (safety probe skipped)" if res.get("safety_skipped") else ""))
        if res.get("rule"):
            console.print(f"rule: {res['rule']}")


def _num(x) -> str:
    if x is None:
        return "—"
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def print_gate(gate: dict, plan: dict) -> None:
    console.print(f"round-2 gate ({gate['arm']}): [bold]{gate['decision']}[/]")
    for c in gate["checks"]:
        console.print(("  [green]✓[/] " if c["passed"] else "  [red]✗[/] ") + f"{c['name']}: {c['detail']}")
    cand = plan.get("candidate")
    console.print("promotion: " + (f"candidate {cand['arm']} {cand['checkpoint']}" if cand else "no candidate")
                  + (" — [red]BLOCKED[/]" if plan["blocked"] else " — ready for a shadow canary"))
    for r in plan["blocked_reasons"]:
        console.print(f"  - {r}")
