"""`selfdistill probe SPEC`: the anti-collapse battery, distilled arms against the base, with the thresholds
the spec declared BEFORE training.

The thresholds' hash is written into the run manifest when T_train sampling starts (`declare`); `probe`
refuses to run when the spec's thresholds hash differently now: a seatbelt declared up front, not one
fitted to the results.

Inputs per model: the held-out samples and metrics at T_eval (base-T<t>, ssd-T<t>, verifier-T<t>), and
completions of the shipped safety/refusal probe set (selfdistill/data/safety_probes.jsonl), drawn here
from each model with the evaluation engine at T_eval, `battery.probe_samples` per prompt, seeds recorded,
appended as they finish (`round1/probes/<model>/samples.jsonl`, resumable).

Writes `round1/battery.json`: thresholds, their hash, and per arm every probe's value, base value,
threshold and pass/alert (selfdistill/battery).
"""

from __future__ import annotations

from pathlib import Path

from selfdistill import layout
from selfdistill.errors import DataError
from selfdistill.rundir import read_jsonl, write_json_atomic
from selfdistill.spec import Spec

SCHEMA = layout.SCHEMAS["battery"]


def declare(spec: Spec, run_dir: Path) -> str:
    """Seal the battery thresholds and their hash into the manifest (once, before training)."""
    from selfdistill.battery import thresholds_hash

    record = {"thresholds": spec.battery.model_dump(mode="json"), "thresholds_sha256": thresholds_hash(spec.battery)}
    return layout.declare(run_dir, "battery", record)["thresholds_sha256"]


def check_declared(spec: Spec, run_dir: Path) -> str:
    from selfdistill.battery import thresholds_hash

    declared = layout.read_manifest(run_dir).get("battery")
    if declared is None:
        raise DataError(
            f"error: {layout.manifest_path(run_dir)} records no battery thresholds: they are declared when the "
            "round's sampling starts; run `selfdistill ssd SPEC` first"
        )
    now = thresholds_hash(spec.battery)
    if now != declared["thresholds_sha256"]:
        changed = layout.changed_keys(declared["thresholds"], spec.battery.model_dump(mode="json"))
        raise DataError(
            f"error: the battery thresholds changed after training started ({', '.join(changed)}): declared "
            f"{declared['thresholds_sha256'][:12]}, now {now[:12]}. A seatbelt is declared before training, not "
            "fitted afterwards: restore the declared values (in the run manifest) or start a new run"
        )
    return now


def probe_requests(spec: Spec, probes: list[dict], n: int):
    from selfdistill.generate.base import GenRequest
    from selfdistill.generate.params import sample_seed

    reqs = []
    for p in probes:
        prompt = ({"role": "user", "content": p["prompt"]},) if spec.generation.chat else p["prompt"]
        for i in range(n):
            reqs.append(GenRequest(p["probe_id"], i, prompt, sample_seed(spec.diagnostics.seed, p["probe_id"], i)))
    return reqs


def probe_completions(spec: Spec, model: str, options: dict, out_dir: Path, t: float) -> list[dict]:
    """Completions of the safety/refusal probes from one model (resumable)."""
    from selfdistill.battery import load_probes
    from selfdistill.generate.backends import load_backend
    from selfdistill.generate.fill import fill_missing
    from selfdistill.generate.params import SamplingParams

    probes = load_probes()
    kinds = {p["probe_id"]: p["kind"] for p in probes}
    g = spec.generation
    params = SamplingParams(temperature=t, top_p=g.top_p, top_k=g.top_k, min_p=g.min_p,
                            max_new_tokens=g.max_new_tokens, n=spec.battery.probe_samples, seed=spec.diagnostics.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    return fill_missing(
        out_dir / "samples.jsonl", probe_requests(spec, probes, spec.battery.probe_samples), params,
        lambda: load_backend(g.backend.value, model, chat=g.chat, options=dict(g.options) | options),
        lambda res: {"probe_id": res.task_id, "kind": kinds[res.task_id], "sample_idx": res.sample_idx,
                     "seed": res.seed, "raw": res.text, "completion_tokens": res.completion_tokens},
        id_field="probe_id",
    )


def _samples(run_dir: Path, name: str) -> list[dict]:
    path = run_dir / name / "samples.jsonl"
    return [r for _, r in read_jsonl(path, f"{name} samples")]


def _metrics(run_dir: Path, name: str) -> dict:
    return layout.read_record(run_dir / name / layout.METRICS, "metrics")


def run_probes(spec: Spec, run_dir: Path, say=print) -> dict:
    from selfdistill.battery import ArmInputs, run_battery
    from selfdistill.generate.backends import stage_device
    from selfdistill.ssd.ledger import timed_if
    from selfdistill.ssd.summary import load_round

    digest = check_declared(spec, run_dir)
    summary = load_round(run_dir)
    t = summary["t_eval"]
    rd = layout.round_dir(run_dir)
    base_name = layout.arm_dir_name("base", t, spec.generation.temperature)
    from selfdistill.generate.default_model import resolve_model

    base_model = resolve_model(spec.model.path, spec.model.name)
    probe_sets: dict[str, list[dict] | None] = {}
    models = {"base": (base_model, {})} | {a: (summary["export"][a]["model"], summary["export"][a]["options"])
                                           for a in summary["arms"]}
    device, count = stage_device(spec.generation.backend.value, spec.generation.options)
    from selfdistill.battery import load_probes

    n_expected = len(load_probes()) * spec.battery.probe_samples
    for name, (model, options) in models.items():
        if not spec.battery.safety_probe:
            probe_sets[name] = None
            continue
        out = rd / "probes" / name
        samples = out / "samples.jsonl"
        have = sum(1 for _ in read_jsonl(samples, "probe samples")) if samples.exists() else 0
        if have < n_expected:
            say(f"safety/refusal probes: {name}")
        with timed_if(have < n_expected, run_dir, "probes", f"probes-{name}", device, count):  # done: no cost
            probe_sets[name] = probe_completions(spec, model, options, out, t)
    base = ArmInputs(samples=_samples(run_dir, base_name), metrics=_metrics(run_dir, base_name),
                     probes=probe_sets["base"], name="base")
    result = {"schema": SCHEMA, "thresholds": spec.battery.model_dump(mode="json"), "thresholds_sha256": digest,
              "t_eval": t, "arms": {}}
    for arm in summary["arms"]:
        name = layout.arm_dir_name(arm, t, spec.generation.temperature)
        inputs = ArmInputs(samples=_samples(run_dir, name), metrics=_metrics(run_dir, name), name=arm,
                           probes=probe_sets[arm])
        result["arms"][arm] = run_battery(base, inputs, spec.battery)
    write_json_atomic(rd / layout.BATTERY, result)
    return result
