"""Round 2 (`ssd.round = 2`): only through a passed gate, sampling from the round-1 model, with its lineage.

Entry: `round1/gate.json` must say ENTER (`selfdistill gate SPEC` writes it); a STOP, or no gate at all,
refuses the round with the gate's reasons, and --force does not override it. The gate's settings (its
round-2 pool and slice included) must still be the ones sealed into the manifest before round 1 trained
(exit 2 naming what changed): round 2 runs on what the gate checked. Then:

- the pool is `gate.round2_pool`, refused if it shares a prompt with round 1's (content hashes) or overlaps
  the fresh slice;
- the held-out set is the fresh evaluation slice `gate.round2_heldout`;
- T_train samples come from the round-1 model the gate passed (its exported form: base GGUF + adapter,
  a merged GGUF, or a merged directory), and that model's merged weights are what round 2 fine-tunes;
- on llama.cpp, the parent becomes a GGUF of its merged weights (`round2/parent.gguf`), the base the round-2
  adapter is exported against;
- evaluated on the fresh slice: the original base (`r2-base-T<t>`), the parent (`r2-parent-T<t>`) and the
  round-2 arms (`r2-ssd-T<t>`); deltas against both;
- `round2/round.json` records the lineage: parent round and arm, its checkpoint id, the gate file's sha256;
  the manifest's `rounds.round2` entry records round 2's own spec and held-out slice (the run's `spec` and
  `heldout` stay round 1's).

Not here: a battery, gate or promotion plan for round 2 (run them per round 1's pattern on round 2's
summary by hand; `run` covers round 1).
"""

from __future__ import annotations

from pathlib import Path

from selfdistill import layout
from selfdistill.errors import SpecError
from selfdistill.rundir import file_sha256, read_json, write_json_atomic
from selfdistill.spec import Backend, Spec


def run_next_round(spec: Spec, run_dir: Path, *, limit: int | None, force: bool, progress_factory, say=print) -> dict:
    from selfdistill.generate.default_model import resolve_model
    from selfdistill.heldout import load_heldout
    from selfdistill.pool import load_pool
    from selfdistill.ssd import arms
    from selfdistill.ssd.distill import Round, RoundRefused, distill, stamp_manifest, write_pool_record
    from selfdistill.ssd.gate import check_declared
    from selfdistill.ssd.summary import load_round
    from selfdistill.train.export import checkpoint_id

    if spec.ssd.round != 2:
        raise SpecError(f"error: ssd.round = {spec.ssd.round}: rounds beyond 2 are not supported; a round-3 gate "
                        "would need round 2's own battery and gate")
    gate_path = layout.round_file(run_dir, layout.GATE)
    if not gate_path.exists():
        raise RoundRefused(f"error: round 2 needs a passed round-2 gate and {gate_path} does not exist; "
                           "run `selfdistill gate SPEC` after round 1")
    gate = layout.read_record(gate_path, "gate", "gate result")
    if gate.get("decision") != "ENTER":
        reasons = "\n".join(f"  - {x}" for x in gate.get("reasons", []))
        raise RoundRefused(f"error: the round-2 gate says {gate.get('decision')}; round 2 is not started "
                           f"(--force does not override the gate):\n{reasons}")
    g = spec.gate
    if not g.round2_pool or not g.round2_heldout:
        raise SpecError("error: round 2 needs gate.round2_pool (a fresh prompt pool) and gate.round2_heldout "
                        "(a fresh evaluation slice)")
    check_declared(spec, run_dir)  # the pool and slice the gate checked, not ones named after it passed
    fresh = load_heldout(g.round2_heldout)
    pool = load_pool(g.round2_pool, seed=spec.pool.seed, limit=spec.pool.limit, heldout=fresh.problems,
                     heldout_task=g.round2_heldout, ngram=spec.pool.ngram)
    round1_pool = set(read_json(layout.round_file(run_dir, layout.POOL), "pool record")["content_hashes"].values())
    shared = set(pool.content_hashes().values()) & round1_pool
    if shared:
        raise SpecError(f"error: gate.round2_pool shares {len(shared)} prompts with round 1's pool; round 2 needs a "
                        "fresh pool (disjoint by content)")
    parent_arm = gate.get("arm") or arms.seeding_arm()
    r1 = load_round(run_dir, 1)
    export, train = r1["export"][parent_arm], r1["training"][parent_arm]
    base_model = resolve_model(spec.model.path, spec.model.name)
    gguf_base = None
    r2_dir = layout.round_dir(run_dir, 2)
    if spec.generation.backend is Backend.LLAMACPP:
        gguf_base = _parent_gguf(export, train, Path(base_model), r2_dir)
    lineage = {
        "round": 2, "parent_round": 1, "parent_arm": parent_arm, "parent_checkpoint": checkpoint_id(export),
        "parent_model": export["model"], "parent_options": export.get("options", {}),
        "parent_weights": train["merged"], "gate_sha256": file_sha256(gate_path),
        "base_model": base_model,
    }
    r = Round(spec, fresh, run_dir, limit, force, base_model, number=2, sample_model=export["model"],
              sample_options=dict(export.get("options", {})), train_model=train["merged"], gguf_base=gguf_base,
              lineage=lineage)
    r.dir.mkdir(parents=True, exist_ok=True)
    write_pool_record(r.dir, pool)
    stamp_manifest(r)
    say(f"round 2 from round 1's {parent_arm} model ({lineage['parent_checkpoint'][:19]}), gate passed; "
        f"{len(pool.problems)} fresh pool prompts, fresh slice of {len(fresh.problems)} problems")
    verdict = layout.read_record(run_dir / layout.BASE / layout.VERDICT, "verdict")
    # Comparators answer "which move from the base?": round 1 measured them against the base. Round 2 asks whether
    # a second SSD round beats its parent, so it trains the SSD arms only (a comparator trained from the distilled
    # parent would be SSD followed by that recipe, not the comparator).
    planned = [a for a in arms.planned(spec, verdict["overall"]["kind"], pool.n_with_tests)
               if not arms.ARMS[a].comparator]
    skipped = [m.value for m in (spec.comparator.measure if spec.comparator else [])]
    if skipped:
        say(f"round 2 trains the SSD arms only; the comparators ({', '.join(skipped)}) were measured against the "
            "base in round 1")
    return distill(r, pool, planned, None, verdict, progress_factory, say)


def _parent_gguf(export: dict, train: dict, base_gguf: Path, r2_dir: Path) -> str:
    """The parent model as one GGUF: as exported when it already is one, else its merged weights written
    into a copy of the base GGUF (once; the record sits beside it)."""
    if not export.get("options", {}).get("lora_path"):
        return export["model"]
    from selfdistill.train.export import export_merged_gguf

    out = r2_dir / "parent.gguf"
    record = r2_dir / "parent-export.json"
    if not record.exists():
        r2_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, export_merged_gguf(Path(train["merged"]), base_gguf, out))
    return str(out)
