"""The arms a round trains and compares, as data: one `Arm` record per arm in `ARMS`.

    ssd        minimal SSD: every sample that survived the degeneracy filter, unverified (the paper's recipe)
    verifier   verifier-aware SSD: the same samples, only those that passed the pool's tests
    rejection-sampling-sft   a comparator, not SSD: best-of-N samples per pool prompt, the passing ones, SFT
    sft-external             a comparator, not SSD: SFT on the user's prompt/completion pairs
    dpo                      a comparator, not SSD: DPO on (passing, failing) pairs of the same best-of-N draw

An arm says how its training examples are selected (`select`: the round's samples and the keys that passed
the pool's tests -> the samples it trains on), which training algorithm fine-tunes it (`algorithm`: a key of
train/jobs.py RUNNERS, "sft" for both today), which cost-ledger stages its hours count besides its own
training (`cost_stages`), what its paired deltas are taken against (`deltas_against`: "base", another arm,
"best-base-decode" for the base at its best T_eval, "parent" in round 2+), its title and its colour in the
report, whether it needs a pool with tests, and whether it seeds round 2 (the gate's arm). A comparator arm
(`comparator=True`, run when the spec's `comparator.measure` names it) draws its own training data (`draw`,
ssd/comparators.py) and says what it is (`note`, shown in the report). Planning
(`planned`), training, the round summary, the gate, the promotion plan and the report read these records;
the round summary writes each planned arm's record into round.json (`records`), and the report reads the
titles and colours from there.

A new arm that trains by SFT is one entry here plus its selection function; a new training algorithm is one
runner in train/jobs.py (and its trainer in train/finetune.py TRAINERS). Not here: the samples themselves
(ssd/sampling.py), the examples' format (ssd/data.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from selfdistill.spec import Spec, VerifierArm

Keys = set[tuple[str, int]]


def kept(samples: list[dict], passed: Keys | None) -> list[dict]:
    """Minimal SSD: every non-degenerate sample, in file order."""
    return [s for s in samples if not s.get("degenerate")]


def kept_and_passed(samples: list[dict], passed: Keys | None) -> list[dict]:
    """Verifier-aware: the non-degenerate samples whose program passed the pool's tests."""
    return [s for s in kept(samples, None) if (s["task_id"], s["sample_idx"]) in (passed or set())]


@dataclass(frozen=True)
class Arm:
    name: str
    title: str
    select: Callable[[list[dict], Keys | None], list[dict]]
    algorithm: str = "sft"
    cost_stages: tuple[str, ...] = ("samples",)
    deltas_against: tuple[tuple[str, str], ...] = ()  # (baseline, the delta's title in the report)
    colour: str = "#8172b3"
    needs_tests: bool = False
    seeds_round2: bool = False
    # a comparator (spec [comparator] measure): its own training data, drawn by `draw(round, pool, progress
    # factory, say) -> (samples, passing keys)` instead of the round's T_train samples; `note` says what it is
    comparator: bool = False
    draw: Callable | None = None
    note: str = ""
    # the training algorithm's own settings from the spec (DPO's beta, ...), carried by job.json as "settings"
    job_settings: Callable[[Spec], dict] | None = None

    def record(self) -> dict:
        """What round.json keeps of the arm, so a report reads it from the run, not from this table."""
        return {"title": self.title, "algorithm": self.algorithm, "cost_stages": list(self.cost_stages),
                "deltas_against": [b for b, _ in self.deltas_against], "colour": self.colour,
                "comparator": self.comparator, "note": self.note}


def best_of_n(r, pool, progress_factory, say=print):
    from selfdistill.ssd.comparators import best_of_n as draw

    return draw(r, pool, progress_factory, say)


def external_pairs(r, pool, progress_factory, say=print):
    from selfdistill.ssd.comparators import external_pairs as draw

    return draw(r, pool, progress_factory, say)


def dpo_pairs(r, pool, progress_factory, say=print):
    from selfdistill.ssd.comparators import dpo_pairs as draw

    return draw(r, pool, progress_factory, say)


def dpo_settings(spec: Spec) -> dict:
    from selfdistill.ssd.comparators import dpo_settings as settings

    return settings(spec)


def grpo_prompts(r, pool, progress_factory, say=print):
    from selfdistill.ssd.rl import grpo_prompts as draw

    return draw(r, pool, progress_factory, say)


def grpo_settings(spec: Spec) -> dict:
    from selfdistill.ssd.rl import job_settings

    return job_settings(spec)


def distinct_passing(samples: list[dict], passed: Keys | None) -> list[dict]:
    from selfdistill.ssd.comparators import distinct_passing as select

    return select(samples, passed)


# the best-of-N draw rejection-sampling-sft and dpo share (drawn once per round, ssd/comparators.py): each recipe
# alone would need it, so it is a cost stage of both
BEST_OF_N_DRAW = ("best-of-n:samples", "best-of-n:scoring")
ARMS: dict[str, Arm] = {
    "ssd": Arm("ssd", "minimal SSD (raw, unverified samples)", kept, colour="#dd8452", seeds_round2=True,
               deltas_against=(("base", "SSD vs base, same T_eval"),
                               ("best-base-decode", "SSD vs base at its best T_eval (decode-only baseline)"),
                               ("parent", "SSD vs its parent (the gated round-1 model), same T_eval"))),
    "verifier": Arm("verifier", "verifier-aware SSD (passing samples only)", kept_and_passed, colour="#55a868",
                    cost_stages=("samples", "verify"), needs_tests=True,
                    deltas_against=(("base", "verifier-aware SSD vs base, same T_eval"),
                                    ("ssd", "verifier-aware SSD vs minimal SSD"))),
    "rejection-sampling-sft": Arm(
        "rejection-sampling-sft", "rejection-sampling SFT (comparator: best-of-N, passing samples)", distinct_passing,
        colour="#937860", needs_tests=True, comparator=True, draw=best_of_n,
        cost_stages=BEST_OF_N_DRAW,
        deltas_against=(("base", "rejection-sampling SFT vs base, same T_eval"),
                        ("ssd", "rejection-sampling SFT vs minimal SSD, same T_eval")),
        note=("a comparator, not SSD: best-of-N (comparator.best_of_n) samples per pool prompt at the product's "
              "decoding, the distinct passing programs fine-tuned on by SFT; the verifier-aware SSD arm instead "
              "keeps the passing ones of the round's T_train samples")),
    "sft-external": Arm(
        "sft-external", "SFT on external data (comparator: your prompt/completion pairs)", kept, colour="#da8bc3",
        comparator=True, draw=external_pairs, cost_stages=(),
        deltas_against=(("base", "external-data SFT vs base, same T_eval"),
                        ("ssd", "external-data SFT vs minimal SSD, same T_eval")),
        note=("a comparator, not SSD: SFT with the same trainer on the prompt/completion pairs of comparator.data "
              "(checked against the held-out set like the pool)")),
    "dpo": Arm(
        "dpo", "DPO (comparator: passing over failing best-of-N samples)", kept, algorithm="dpo", colour="#64b5cd",
        needs_tests=True, comparator=True, draw=dpo_pairs, job_settings=dpo_settings, cost_stages=BEST_OF_N_DRAW,
        deltas_against=(("base", "DPO vs base, same T_eval"), ("ssd", "DPO vs minimal SSD, same T_eval")),
        note=("a comparator, not SSD: preference pairs from best-of-N (comparator.best_of_n) samples per pool prompt "
              "at the product's decoding, a passing program chosen over a failing one of the same prompt, trained by "
              "TRL's DPOTrainer (beta = comparator.dpo_beta)")),
    "grpo": Arm(
        "grpo", "GRPO (comparator: RL with the pool's tests as the reward)", kept, algorithm="grpo",
        colour="#8c8c8c", needs_tests=True, comparator=True, draw=grpo_prompts, job_settings=grpo_settings,
        cost_stages=("grpo:rewards",),
        deltas_against=(("base", "GRPO vs base, same T_eval"), ("ssd", "GRPO vs minimal SSD, same T_eval")),
        note=("a comparator, not SSD: TRL's GRPOTrainer on the pool prompts with tests, comparator.grpo_group "
              "completions per prompt rewarded 1 when their program passes the prompt's tests in the sandbox, else "
              "0 (a sandbox fault: no reward), comparator.grpo_steps steps")),
}
BASE_COLOUR = "#4c72b0"


def delta_key(arm: str, against: str) -> str:
    """round.json's name for a delta: `ssd_vs_base`, `ssd_vs_best_base_decode`, `verifier_vs_ssd`."""
    return f"{arm}_vs_{against.replace('-', '_')}"


def seeding_arm() -> str:
    """The arm whose gate decides round 2 (and whose model round 2 starts from)."""
    return next(a.name for a in ARMS.values() if a.seeds_round2)


def planned(spec: Spec, verdict_kind: str, n_with_tests: int, *, comparator_only: bool = False) -> list[str]:
    """The arms this round trains, in table order: every arm that needs no tests; one that does when
    ssd.verifier_arm is "on", or "auto" and the verdict is GO-VERIFIER-AWARE-SSD, and the pool has tests.
    `comparator_only` (a refused SSD whose GO-OTHER move is measured, decide/refuse.py): the measured
    comparator arms alone, no SSD arm."""
    from selfdistill.errors import SpecError

    want = spec.ssd.verifier_arm
    tested = want is VerifierArm.ON or (want is VerifierArm.AUTO and verdict_kind == "GO-VERIFIER-AWARE-SSD")
    if tested and n_with_tests == 0:
        if want is VerifierArm.ON:
            raise SpecError("error: ssd.verifier_arm = 'on' but the prompt pool has no tests to verify with")
        tested = False
    measure = {m.value for m in (spec.comparator.measure if spec.comparator else [])}
    missing = [m for m in measure if ARMS[m].needs_tests] if n_with_tests == 0 else []
    if missing:
        raise SpecError(f"error: comparator.measure asks for {', '.join(sorted(missing))}, which scores samples "
                        "with the pool's tests, but the prompt pool has no tests; give a pool with tests "
                        "(pool.task) or remove it from comparator.measure")
    return [a.name for a in ARMS.values()
            if (a.name in measure if a.comparator else not comparator_only and (not a.needs_tests or tested))]
