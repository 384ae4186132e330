"""Deliverable B in the report: the SSD pipeline as it ran (pool, T_train sampling, training, export,
evaluation) and what it measured: paired deltas, the T_eff sweep, pass@k curves, completion lengths,
the anti-collapse battery and the cost. Before the round has run it says why, and shows the cost so far.
"""

from __future__ import annotations

from selfdistill.report import costs, deltas, fmt, plots
from selfdistill.report.header import HEADINGS, not_run
from selfdistill.report.inputs import Run


def _digest(x) -> str:
    return f"`{x[:12]}…`" if isinstance(x, str) and len(x) > 12 else fmt.cell(x)


def _sampling(s: dict) -> str:
    if s.get("skipped"):
        return f"not run: {s['skipped']}"
    return (f"T_train {s['t_train']:g}, top-k {s.get('top_k')}, top-p {s.get('top_p')}, min-p {s.get('min_p')}, "
            f"{s.get('n_per_prompt')} per prompt, seed {s.get('seed')}, ≤ {s.get('max_new_tokens')} new tokens")


def _samples(s: dict) -> str:
    if s.get("skipped"):
        return "none (no T_train sampling in this round)"
    return (f"{fmt.num(s.get('n_samples'))} drawn, {fmt.num(s.get('kept_minimal'))} kept (dropped "
            f"{s.get('dropped_empty')} empty, {s.get('dropped_single_line')} single-line); no extractable code "
            f"{fmt.share(s.get('no_code_share'))}, truncated {fmt.share(s.get('truncated_share'))}, "
            f"{fmt.num(s.get('completion_tokens_total'))} completion tokens")


def _training(tr: dict) -> str:
    default = "1e-4 (LoRA default)" if tr.get("method") == "lora" else "1e-5 (default)"
    lora = f" (r {tr.get('lora_r')}, alpha {fmt.num(tr.get('lora_alpha'))})" if tr.get("method") == "lora" else ""
    return (f"{tr.get('method')}{lora}, lr {fmt.num(tr.get('learning_rate')) if tr.get('learning_rate') else default}, "
            f"{fmt.num(tr.get('epochs'))} epoch(s), batch {tr.get('batch_size')}, max length {tr.get('max_length')}; "
            "plain cross-entropy on the completion of raw samples (no verifier, no reward)")


def _evaluation(r: dict, g: dict, d: dict) -> str:
    sweep = ", ".join(format(row["t_eval"], "g") for row in r["sweep"])
    return (f"{g.get('backend')} engine, chat {g.get('chat')}, T_eval {r['t_eval']:g} (sweep {sweep}), "
            f"top-k {g.get('top_k')}, top-p {g.get('top_p')}, n {d.get('n')} per problem, k {d.get('k')}; "
            "the same engine and settings for every arm")


def _budget(b: dict) -> str:
    return (f"sampling {fmt.num(b.get('gpu_hours_sampling'))}, training {fmt.num(b.get('gpu_hours_training'))}, "
            f"evaluation {fmt.num(b.get('gpu_hours_eval'))}; team {b.get('team_size')}, first signal wanted "
            f"within {fmt.num(b.get('latency_to_first_signal_hours'))} h")


def _spec_rows(run: Run) -> list[tuple[str, object]]:
    spec, r = run.spec, run.round
    m, t = spec.get("model") or {}, spec.get("task") or {}
    held = r.get("heldout") or (run.manifest or {}).get("heldout") or {}
    pool = r.get("pool") or {}
    prov = pool.get("provenance") or {}
    source = prov.get("source", (spec.get("pool") or {}).get("source"))
    model = (f"{m.get('name')} ({fmt.num(m.get('parameters_b'))}B, {m.get('license')}, "
             f"context {m.get('context_length')})")
    heldout = (f"`{held.get('task')}`, {held.get('n_problems')} problems, sha256 {_digest(held.get('task_sha256'))}, "
               f"{len(held.get('excluded') or [])} excluded")
    prompts = (f"`{source}`, {pool.get('n_problems')} prompts ({pool.get('n_with_tests')} with tests), "
               f"content digest {_digest(prov.get('content_digest'))}")
    return [
        ("base model", model),
        ("task", f"{', '.join(t.get('languages') or [])}; {t.get('distribution')}; {t.get('product_surface')}"),
        ("held-out set", heldout),
        ("prompt pool", prompts),
        ("sampling (frozen base)", _sampling(r["sampling"])),
        ("samples", _samples(r["sampling"])),
        ("fine-tuning", _training(spec.get("train") or {})),
        ("evaluation", _evaluation(r, spec.get("generation") or {}, spec.get("diagnostics") or {})),
        ("budget (GPU-h)", _budget(spec.get("budget") or {})),
    ]


def training_table(run: Run, arms: list[str]) -> list[str]:
    train, export = run.round.get("training") or {}, run.round.get("export") or {}
    rows = []
    for arm in arms:
        t, e = train.get(arm) or {}, export.get(arm) or {}
        loss = f"{fmt.num(t.get('loss_first'))} → {fmt.num(t.get('loss_last'))}"
        weights = "adapter" if t.get("adapter") else "merged" if t.get("merged") else fmt.NONE
        job = t.get("job") or {}
        algorithm = t.get("algorithm") or job.get("algorithm", "sft")
        lr = t.get("learning_rate") or (  # records before train.json kept the rate: an SFT arm ran at [train]'s
            _spec_lr(job.get("train") or run.spec.get("train")) if algorithm == "sft" else None)
        rows.append([arm, algorithm, t.get("method"), fmt.num(lr),
                     fmt.num(t.get("n_examples")), _truncated(t.get("truncated")),
                     fmt.num(t.get("optimizer_steps")), loss, fmt.minutes(t.get("wall_s")),
                     f"{t.get('device')} × {t.get('device_count')}", weights, e.get("how")])
    head = ["arm", "algorithm", "method", "lr", "examples", "cut off at max_new_tokens", "optimizer steps",
            "loss first → last", "wall (min)", "device", "weights", "export for evaluation"]
    return fmt.table(head, rows) + [""]


def _spec_lr(train: dict | None) -> float | None:
    from selfdistill.spec import TrainSpec

    try:
        return TrainSpec.model_validate(train).lr if train else None
    except ValueError:
        return None


def _truncated(t: dict | None) -> str:
    """The arm's samples cut off at max_new_tokens and what ssd.truncated did with them."""
    if not t:
        return "not recorded"
    what = "excluded" if t.get("policy") == "exclude" else "trained without the end token"
    return f"{t.get('n_truncated')} of {t.get('n_kept')} ({fmt.share(t.get('truncated_share'))}), {what}"


def sweep_table(run: Run) -> list[str]:
    arms = ["base", *run.round["arms"]]
    rows = []
    for row in run.round["sweep"]:
        cells = [fmt.pct((row["arms"].get(a) or {}).get("pass@1")) for a in arms]
        rows.append([f"{row['t_eval']:g}" + (" (headline)" if row["t_eval"] == run.round["t_eval"] else ""),
                     f"{row['t_eff']:.3g}", *cells])
    return fmt.table(["T_eval", "T_eff = T_train × T_eval", *(f"{a} pass@1 %" for a in arms)], rows) + [""]


def generation_table(run: Run) -> list[str]:
    rows = []
    for name in sorted(set(run.arms) | set(run.lengths)):
        g = (run.arms.get(name) or {}).get("generation") or {}
        toks = sorted(run.lengths.get(name) or [])
        median = g.get("completion_tokens_median", toks[len(toks) // 2] if toks else None)
        rows.append([name, fmt.num(g.get("n_samples", len(toks) or None)), fmt.num(median),
                     fmt.num(toks[int(0.95 * (len(toks) - 1))] if toks else None),
                     fmt.share(g.get("no_code_share")), fmt.share(g.get("truncated_share"))])
    head = ["arm", "samples", "median tokens", "p95 tokens", "no extractable code", "truncated"]
    return fmt.table(head, rows) + [""] if rows else []


def battery_section(run: Run) -> list[str]:
    lines = ["### B.5 Anti-collapse battery", ""]
    if run.battery is None:
        return lines + [("> **Missing.** round1/battery.json does not exist: the battery has not been run, so every "
                        "delta in this report reads \"battery not run\"."), ""]
    sha = run.battery.get("thresholds_sha256")
    declared = ((run.manifest or {}).get("battery") or {}).get("thresholds_sha256")
    if sha:
        stamp = "" if declared is None else (
            ", the hash stamped in manifest.json when sampling started" if declared == sha
            else f"; **manifest.json declared {_digest(declared)}: the thresholds moved**")
        lines += [f"Thresholds declared before training (sha256 {_digest(sha)}{stamp}); "
                  "drifts are distilled vs base.", ""]
    rule = next((e["rule"] for e in run.battery["arms"].values() if e.get("rule")), None)
    if rule:  # each change carries a paired bootstrap CI over prompts: "change (limit)" shows it in brackets
        lines += [f"Rule: {rule}. Changes show their 95% CI in brackets (paired bootstrap over prompts).", ""]
    for arm, entry in run.battery["arms"].items():
        lines += [f"**{arm}**: {fmt.battery_status(run.battery, arm)}", ""]
        rows = [[p.get("name"), p.get("family"), fmt.num(p.get("base_value")), fmt.num(p.get("value")),
                 fmt.probe_change(p), "**ALERT**" if p.get("status") == "alert" else p.get("status"), p.get("detail")]
                for p in entry.get("probes") or []]
        head = ["probe", "family", "base", "distilled", "change (limit)", "status", "detail"]
        lines += fmt.table(head, rows) + [""] if rows else ["No probes recorded.", ""]
    return lines


def comparator_only_box(r: dict) -> list[str]:
    """A round that measured only the GO-OTHER move's comparator(s) (SSD refused, not forced): said first."""
    if not r.get("comparator_only"):
        return []
    pre = r.get("precondition") or {}
    return [f"> **SSD was refused** by the precondition verdict {pre.get('kind')} ({pre.get('other')}; rule "
            f"{pre.get('rule_id')}), and stays refused: this round measured only the comparator arm(s) "
            f"{', '.join(r['arms'])} named in `comparator.measure` (the move's arm: {pre.get('measure_with')}), "
            "beside the base, at the same T_eval sweep with the same engine. No SSD arm was trained, no T_train "
            "sample drawn; deltas are against the base (there is no SSD to compare with).", ""]


def section(run: Run, figs: dict | None) -> list[str]:
    lines = [f"## {HEADINGS['B']}", ""]
    if run.round is None:
        lines += not_run(run, summary=True)
        return lines + (["### Cost so far", "", *costs.stage_table(run)] if run.ledger else [])
    r = run.round
    titles = r.get("arm_titles") or {}
    lines += [f"Round {r.get('round', 1)}: arms " + ", ".join(f"**{a}** ({titles.get(a, a)})" for a in r["arms"])
              + f"; precondition {r.get('precondition', {}).get('kind')} "
              f"({r.get('precondition', {}).get('rule_id')}).", ""]
    notes = [(a, rec["note"]) for a, rec in (r.get("arm_records") or {}).items() if rec.get("note")]
    lines += [f"> **{a}** is {note}." for a, note in notes] + ([""] if notes else [])  # e.g. a comparator, not SSD
    lines += comparator_only_box(r)
    lines += ["### B.1 What ran", "", *fmt.kv_table(_spec_rows(run)), "", *training_table(run, r["arms"])]
    shown = [n for n in r["deltas"] if fmt.delta_arm(n) != fmt.SECTION_C_ARM]  # every arm's but deliverable C's
    lines += ["### B.2 Paired pass@1 deltas", "", *deltas.table(run, shown)]
    lines += plots.markdown(figs, "slice_deltas", "no paired deltas in round1/round.json")
    lines += ["### B.3 pass@1 against T_eff", "", *sweep_table(run)]
    lines += plots.markdown(figs, "teff", "no sweep in round1/round.json")
    lines += ["### B.4 pass@k curves and completion lengths", ""]
    lines += plots.markdown(figs, "passk", "no pass@k in the arms' metrics")
    lines += generation_table(run)
    lines += plots.markdown(figs, "lengths", "no samples.jsonl in the run directory")
    lines += battery_section(run)
    return lines + ["### B.6 Cost and the Pareto table", "", *costs.section(run)]
