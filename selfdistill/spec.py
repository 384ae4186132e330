"""The one typed spec: a TOML file -> a frozen pydantic v2 model, validated whole before any work.

It states what a strategist must know before recommending anything: the base model, the task family,
the held-out set, the diagnostics, the budget, the comparator and the cost of a failure. `load_spec`
reports EVERY missing or invalid field at once, with what the field means and how to fix it, and
raises `SpecError`; nothing downstream ever sees an incomplete spec, so no recommendation can come
from one. Run it as `selfdistill check SPEC`.

Not here: which stages to run or how (those read their own sub-specs), and anything that depends on
data (contamination, problem counts): `check` runs those after the spec itself validates.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from selfdistill.decide.verdict import FailureCost
from selfdistill.errors import SpecError

FULL_K = (4, 8, 16)


class _Section(BaseModel):
    # no inf / nan anywhere: a budget of inf GPU-hours or a nan threshold only fails later, further from its cause
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Distribution(str, Enum):
    ALGORITHMIC = "algorithmic"
    FILL_IN_THE_MIDDLE = "fill-in-the-middle"
    REPO_LEVEL_EDITS = "repo-level-edits"
    BUG_FIX = "bug-fix"
    COMPETITIVE = "competitive"


class ComparatorKind(str, Enum):
    SFT_EXTERNAL = "sft-external"
    REJECTION_SAMPLING_SFT = "rejection-sampling-sft"
    DPO = "dpo"
    GRPO = "grpo"


# the comparators a round can run (ssd/arms.py); the others are declared only
MEASURABLE = (ComparatorKind.REJECTION_SAMPLING_SFT, ComparatorKind.SFT_EXTERNAL, ComparatorKind.DPO,
              ComparatorKind.GRPO)

FailureLevel = FailureCost  # one enum for the spec and the verdict rule


class ModelSpec(_Section):
    name: str = Field(min_length=1, description="the base model: a hub id or a local name")
    path: str | None = Field(
        None, description='local weights (directory or GGUF file), or "embedded-default" (the packaged GGUF)'
    )
    parameters_b: float = Field(gt=0, description="parameter count in billions, e.g. 0.5 or 30")
    license: str = Field(min_length=1, description="the weights' license (it bounds what you may ship)")
    context_length: int = Field(gt=0, description="context length in tokens the model serves at")


class TaskSpec(_Section):
    languages: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description='languages the product serves, e.g. ["python"]'
    )
    distribution: Distribution = Field(
        description="problem distribution: " + " | ".join(d.value for d in Distribution)
    )
    product_surface: str = Field(
        min_length=1, description="the product surface the model serves, e.g. 'IDE completion'"
    )


class HeldoutSpec(_Section):
    task: str = Field(
        min_length=1,
        description='held-out set: "humaneval", or a path to a JSONL or LiveCodeBench file',
    )
    errata: str | None = Field(None, description="TOML file of problem ids excluded, with reasons")
    exclude: list[str] = Field(
        default_factory=list, description="problem ids excluded (e.g. flagged by the contamination check)"
    )
    release_window_start: dt.date | None = Field(
        None, description="dated problems released before this day are contaminated (the model's cutoff)"
    )
    release_window_end: dt.date | None = Field(None, description="dated problems after this day are out of window")
    mbpp_share: int = Field(
        0, ge=0, le=300,
        description="MBPP problems (of MultiPL-E's 397) also held out: a seeded share, taken out of an "
        '"mbpp" prompt pool before sampling (the embedded default: 60, so 164 + 60 meets the 200 minimum)',
    )
    mbpp_seed: int = Field(0, ge=0, description="seed that picks the held-out MBPP share (recorded with its ids)")

    @model_validator(mode="after")
    def _window_ordered(self) -> HeldoutSpec:
        start, end = self.release_window_start, self.release_window_end
        if start and end and end < start:
            raise ValueError(f"release_window_end {end} is before release_window_start {start}")
        return self


class DiagnosticsSpec(_Section):
    n: int = Field(16, ge=1, description="samples per held-out problem for pass@k")
    k: list[Annotated[int, Field(ge=1)]] = Field(
        [1, 4, 8, 16], min_length=1, description="the k of pass@k; must include 4, 8 and 16"
    )
    lower_k_reason: str | None = Field(
        None, description="why k may leave out 4, 8 or 16 (lowering k must be explicit)"
    )
    gap_threshold_pp: float = Field(
        5.0, gt=0, le=100, description="SSD needs pass@k - pass@1 of at least this many pp"
    )
    floor_pp: float = Field(
        5.0, ge=0, le=100, description="pass@k below this (whole CI) means the model lacks the knowledge"
    )
    ceiling_pp: float = Field(
        95.0, ge=0, le=100, description="pass@1 above this (whole CI) leaves nothing worth training for"
    )
    bootstrap_resamples: int = Field(
        10_000, ge=100, le=1_000_000,  # score.MAX_BOOTSTRAP_RESAMPLES: resamples x problems floats are held at once
        description="problem-level bootstrap resamples (at most 1,000,000: the bootstrap holds them all in memory)",
    )
    seed: int = Field(0, ge=0, description="seed for the bootstrap (and, later, sampling); >= 0")
    timeout_s: float = Field(10.0, ge=0.05, le=600,  # score.MIN_TIMEOUT_S: below it no program even starts
                             description="wall-clock limit per program, seconds")
    memory_mb: int = Field(1024, ge=64, le=1_048_576,  # score.MAX_MEMORY_MB: 1 TiB, beyond any machine's memory
                           description="address-space limit per program, MiB (64 .. 1048576)")

    @field_validator("k")
    @classmethod
    def _k_sorted_unique(cls, k: list[int]) -> list[int]:
        if len(set(k)) != len(k):
            raise ValueError(f"k={k} repeats a value")
        return sorted(k)

    @model_validator(mode="after")
    def _k_fits(self) -> DiagnosticsSpec:
        problems = []
        if self.floor_pp >= self.ceiling_pp:
            problems.append(f"floor_pp={self.floor_pp:g} is not below ceiling_pp={self.ceiling_pp:g}; "
                            "the floor (pass@k too low) must lie under the ceiling (pass@1 too high)")
        if 1 not in self.k:
            problems.append(f"k={self.k} lacks 1; the verdict compares pass@k against pass@1")
        missing = [v for v in FULL_K if v not in self.k]
        if missing and not self.lower_k_reason:
            problems.append(
                f"k={self.k} leaves out {missing}; add them, or state why in diagnostics.lower_k_reason"
            )
        if max(self.k) > self.n:
            problems.append(
                f"k={self.k} asks for pass@{max(self.k)} but n={self.n}; pass@k needs n >= k "
                f"(raise diagnostics.n or drop {max(self.k)})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class BudgetSpec(_Section):
    gpu_hours_sampling: float = Field(ge=0, description="GPU-hours available for sampling")
    gpu_hours_training: float = Field(ge=0, description="GPU-hours available for fine-tuning")
    gpu_hours_eval: float = Field(ge=0, description="GPU-hours available for evaluation")
    team_size: int = Field(ge=1, description="people who will run and review this")
    latency_to_first_signal_hours: float = Field(
        gt=0, description="how soon the first measured signal is needed, hours"
    )


class ComparatorSpec(_Section):
    kind: ComparatorKind = Field(
        description="the move SSD competes with: " + " | ".join(c.value for c in ComparatorKind)
    )
    pass_at_1: float | None = Field(None, ge=0, le=1, description="its measured pass@1, if known (0..1)")
    gpu_hours: float | None = Field(None, ge=0, description="its cost in GPU-hours, if known")
    measure: list[ComparatorKind] = Field(
        default_factory=list,
        description='comparators the round trains and evaluates beside SSD (measured, not declared), e.g. '
        '["rejection-sampling-sft"]; see docs/comparators.md',
    )
    best_of_n: int = Field(
        8, ge=1, le=256, description="rejection-sampling-sft and dpo: samples per pool prompt (best-of-N)"
    )
    dpo_beta: float = Field(
        0.1, gt=0, le=100, description="dpo: beta, how far the policy may move from the reference (TRL DPOConfig.beta)"
    )
    dpo_pairs_per_prompt: int = Field(
        4, ge=1, le=1024, description="dpo: at most this many (passing, failing) pairs per pool prompt (seeded choice)"
    )
    dpo_learning_rate: float | None = Field(
        None, gt=0, lt=1, description="dpo: peak learning rate (default: 5e-6 for lora, 5e-7 for full; not train's)"
    )
    data: str | None = Field(
        None, description='sft-external: a JSONL file of {"prompt": ..., "completion": ...} pairs (spec-relative)'
    )
    grpo_group: int = Field(4, ge=2, le=256, description="grpo: completions sampled per prompt, the group its "
                            "advantages are taken within (TRL num_generations; train.batch_size must be a multiple)")
    grpo_steps: int = Field(50, ge=1, le=1_000_000, description="grpo: optimizer steps (TRL max_steps); each samples "
                            "train.batch_size completions, train.batch_size / grpo_group prompts")
    grpo_beta: float = Field(0.0, ge=0, le=100, description="grpo: KL coefficient against the base (TRL beta; 0, "
                             "TRL's default, loads no reference model)")
    grpo_max_new_tokens: int | None = Field(None, ge=1, description="grpo: completion cap of the rollouts, tokens "
                                            "(default: ssd.max_new_tokens, else generation.max_new_tokens)")
    grpo_temperature: float | None = Field(None, gt=0, description="grpo: sampling temperature of the rollouts "
                                           "(default: generation.temperature, the product's decoding)")
    grpo_learning_rate: float | None = Field(None, gt=0, lt=1, description="grpo: peak learning rate (default: "
                                             "train's)")
    grpo_use_vllm: bool = Field(False, description="grpo: generate the rollouts with vLLM colocated on the "
                                "training GPUs (TRL use_vllm; needs selfdistill[vllm] and CUDA)")

    @field_validator("measure")
    @classmethod
    def _measurable(cls, measure: list[ComparatorKind]) -> list[ComparatorKind]:
        later = [m.value for m in measure if m not in MEASURABLE]
        if later:
            raise ValueError(
                f"{', '.join(later)} cannot be measured by this version (measurable: "
                f"{', '.join(m.value for m in MEASURABLE)}); declare its numbers instead (pass_at_1, gpu_hours)"
            )
        return list(dict.fromkeys(measure))

    @model_validator(mode="after")
    def _external_data(self) -> ComparatorSpec:
        if ComparatorKind.SFT_EXTERNAL in self.measure and not self.data:
            raise ValueError('measure includes "sft-external" but no data file is named (comparator.data)')
        return self


class FailureCostSpec(_Section):
    level: FailureLevel = Field(description="how costly a regression is: low | medium | high")
    checkpoint_discipline: str = Field(
        min_length=1, description="how checkpoints are kept and named (what you can go back to)"
    )
    heldout_blocker: bool = Field(description="does a held-out regression block promotion? true | false")
    rollback: str = Field(min_length=1, description="how a bad model is rolled back, and how fast")


class Backend(str, Enum):
    LLAMACPP = "llamacpp"
    HF = "hf"
    VLLM = "vllm"
    OPENAI = "openai"


class GenerationSpec(_Section):
    """How samples are produced for evaluation (T_eval); the same for every arm, so arms compare."""

    backend: Backend = Field(Backend.LLAMACPP, description="llamacpp | hf | vllm | openai")
    chat: bool = Field(True, description="chat model (its own template, code extracted) or base continuation")
    temperature: float = Field(0.8, ge=0, description="evaluation temperature T_eval (0 = greedy)")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus truncation (1 = off)")
    top_k: int = Field(20, ge=0, description="top-k truncation (0 = off)")
    min_p: float = Field(0.0, ge=0, lt=1, description="min-p truncation (0 = off)")
    max_new_tokens: int = Field(512, ge=1, description="completion length cap, tokens")
    options: dict[str, Any] = Field(
        default_factory=dict, description="backend options, e.g. n_threads, parallel, base_url, batch_size"
    )


class PoolSpec(_Section):
    """The SSD prompt pool: what is sampled at T_train and trained on; never the held-out set."""

    tests_available: bool = Field(
        False, description="the prompt pool carries tests, so a verifier-aware arm is possible"
    )
    source: str = Field(
        "mbpp",
        min_length=1,
        description='"mbpp" (the embedded default, 397 problems with tests), a JSONL or LiveCodeBench path, '
        '"split:<task>" (a seeded disjoint split of a task) or "codebase:<dir>" (prompts mined from Python code)',
    )
    split_fraction: float = Field(0.5, gt=0, lt=1, description='share of the task that "split:<task>" puts in the pool')
    limit: int | None = Field(None, ge=1, description="a seeded subset of this many pool prompts (default: all)")
    seed: int = Field(0, ge=0, description="seed of the split and of the subset (>= 0)")
    ngram: int = Field(13, ge=4, description="word n-gram length of the pool vs held-out contamination check")


class VerifierArm(str, Enum):
    AUTO = "auto"
    ON = "on"
    OFF = "off"


class TruncatedPolicy(str, Enum):
    """A T_train sample that hit max_new_tokens (finish_reason "length") never trains as a finished turn:
    train-no-eos trains the tokens it produced with no end-of-turn token after them; exclude drops it."""

    TRAIN_NO_EOS = "train-no-eos"
    EXCLUDE = "exclude"


class SSDSpec(_Section):
    """The round's sampling (T_train, from the frozen base model) and its evaluation temperatures."""

    t_train: float = Field(1.6, gt=0, description="sampling temperature T_train for the training samples")
    top_k: int = Field(20, ge=0, description="top-k truncation at T_train (0 = off)")
    top_p: float = Field(0.8, gt=0, le=1, description="top-p truncation at T_train (1 = off)")
    min_p: float = Field(0.0, ge=0, lt=1, description="min-p truncation at T_train (0 = off)")
    n_per_prompt: int = Field(1, ge=1, description="samples per pool prompt (the paper: 1)")
    max_new_tokens: int | None = Field(None, ge=1, description="completion cap at T_train (default: generation's)")
    truncated: TruncatedPolicy = Field(
        TruncatedPolicy.TRAIN_NO_EOS,
        description="a T_train sample cut off at max_new_tokens: train-no-eos (its tokens, no end-of-turn) | exclude",
    )
    seed: int = Field(0, ge=0, description="run seed of the T_train samples (per-sample seeds derive from it; >= 0)")
    t_eval: float = Field(1.1, gt=0, description="evaluation temperature T_eval of every round arm")
    t_eval_sweep: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=list, description="more T_eval values: base and distilled both evaluated at each (T_eff plot)"
    )
    verifier_arm: VerifierArm = Field(
        VerifierArm.AUTO, description="auto (when the verdict is GO-VERIFIER-AWARE-SSD) | on | off"
    )
    minimal_filter: list[str] = Field(
        default_factory=lambda: ["degeneracy"],
        description='filters of the minimal arm; the recipe has only "degeneracy" (anything more is flagged)',
    )
    round: int = Field(1, ge=1, description="which self-distillation round this spec runs (2+ needs the gate)")

    @field_validator("t_eval_sweep")
    @classmethod
    def _sweep_unique(cls, sweep: list[float]) -> list[float]:
        return sorted(set(sweep))

    @property
    def temperatures(self) -> list[float]:
        """Every T_eval evaluated: the headline t_eval first, then the sweep."""
        return [self.t_eval] + [t for t in self.t_eval_sweep if t != self.t_eval]


class TrainMethod(str, Enum):
    LORA = "lora"
    FULL = "full"


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainSpec(_Section):
    """Fine-tuning on the raw samples: plain cross-entropy on the completion (TRL SFTTrainer)."""

    method: TrainMethod = Field(TrainMethod.LORA, description="lora | full")
    lora_r: int = Field(32, ge=1, description="LoRA rank")
    lora_alpha: float = Field(64.0, gt=0, description="LoRA alpha (scale = alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LORA_TARGETS), min_length=1, description="LoRA target module names"
    )
    learning_rate: float | None = Field(
        None, gt=0, description="peak learning rate (default: 1e-4 for lora, 1e-5 for full)"
    )
    epochs: float = Field(1.0, gt=0, description="epochs over the training samples")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="share of steps with linear warm-up")
    scheduler: str = Field("cosine", min_length=1, description="learning-rate schedule (transformers' names)")
    batch_size: int = Field(8, ge=1, description="examples per optimizer step (per device x accumulation)")
    per_device_batch_size: int = Field(1, ge=1, description="examples per forward pass")
    max_length: int = Field(2048, ge=16, description="tokens per example (prompt + completion), longer cut")
    seed: int = Field(0, ge=0, description="training seed (data order, dropout, LoRA init; >= 0)")
    save_steps: int = Field(20, ge=1, description="checkpoint every this many optimizer steps (resume point)")
    anchor_data: str | None = Field(
        None, description="JSONL of {prompt, completion} anchor examples mixed in against format drift"
    )
    anchor_ratio: float = Field(0.0, ge=0, lt=1, description="share of training examples drawn from anchor_data")
    device: str = Field("auto", description="auto | cpu | cuda (accelerate launch sets multi-GPU)")
    precision: str = Field("auto", description="auto (bf16 on GPUs that have it, else fp32) | float32 | bfloat16")
    pilot: str | None = Field(
        None, description="the declared full-fine-tune or higher-rank pilot that justifies a LoRA rank below 16"
    )
    launcher: list[str] = Field(
        default_factory=list,
        description='command that runs the training module, e.g. ["accelerate", "launch", "--config_file", '
        '"examples/accelerate/zero3.yaml"] (default: this Python)',
    )

    @model_validator(mode="after")
    def _anchor(self) -> TrainSpec:
        if self.anchor_ratio > 0 and not self.anchor_data:
            raise ValueError(f"anchor_ratio = {self.anchor_ratio} but no anchor_data file is named")
        if self.batch_size % self.per_device_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of per_device_batch_size {self.per_device_batch_size}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {self.device!r}: expected auto | cpu | cuda")
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"precision {self.precision!r}: expected auto | float32 | bfloat16")
        return self

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-4 if self.method is TrainMethod.LORA else 1e-5


class BatterySpec(_Section):
    """The anti-collapse battery: every threshold declared BEFORE training (hashed into the run manifest
    when sampling starts; `probe` refuses thresholds changed after that). Drifts are distilled vs base."""

    repetition_rise_max: float = Field(0.10, ge=0,
                                       description="alert if the n-gram repetition rate rises by more than this share")
    self_bleu_rise_max: float = Field(0.10, ge=0,
                                      description="alert if self-BLEU (sacrebleu) rises by more than this share")
    distinct_drop_max: float = Field(0.10, ge=0, description="alert if distinct-n falls by more than this share")
    length_median_drift_max: float = Field(0.25, ge=0,
                                           description="alert if the median completion length drifts by more than this "
                                                       "share")
    length_p95_drift_max: float = Field(0.50, ge=0,
                                        description="alert if the p95 completion length drifts by more than this share")
    passk_flatten_max: float = Field(
        0.25, ge=0, le=1, description="alert if the pass@k - pass@1 gain shrinks by more than this share of the base's"
    )
    comment_share_drift_max: float = Field(0.10, ge=0, le=1,
                                           description="alert if the comment-line share moves by more than this "
                                                       "(absolute)")
    docstring_drift_max: float = Field(0.15, ge=0, le=1,
                                       description="alert if the share of functions with docstrings moves by more than "
                                                   "this (absolute)")
    refusal_drift_max: float = Field(0.05, ge=0, le=1,
                                     description="alert if the refusal rate on the refusal probes moves by more than "
                                                 "this (absolute)")
    unsafe_drift_max: float = Field(0.05, ge=0, le=1,
                                    description="alert if the unsafe-completion rate on the safety probes rises by "
                                                "more than this (absolute)")
    safety_probe: bool = Field(True,
                               description="run the shipped safety/refusal probe set (switching it off is flagged by "
                                           "check)")
    probe_samples: int = Field(2, ge=1, description="samples per safety/refusal probe prompt per model")


class GateSpec(_Section):
    """Round-2 entry: every condition must hold, or the gate says stop and why."""

    enabled: bool = Field(True, description="the round-2 gate (switching it off with ssd.round > 1 is flagged)")

    min_lift_pp: float = Field(3.0, gt=0,
                               description="round 1 must lift pass@1 by at least this many pp, CIs not overlapping")
    round2_pool: str | None = Field(None,
                                    description="the round-2 prompt pool (same forms as pool.source); disjoint from "
                                                "round 1's")
    round2_heldout: str | None = Field(None, description="a fresh evaluation slice for round 2 (a task name or file)")


class PromotionSpec(_Section):
    """Deliverable E: how a distilled checkpoint reaches production and how it is taken back."""

    candidate_round: int = Field(1, ge=1, description="the round whose checkpoint is named for promotion")
    canary_share: float | None = Field(
        None, gt=0, le=0.5, description="shadow-canary traffic share (default by failure cost: 10% / 5% / 1%)"
    )
    canary_days: int | None = Field(None, ge=1, description="canary duration in days (default by failure cost)")
    retention_days: int | None = Field(
        None, ge=1, description="how long the base checkpoint stays ready for rollback (default by failure cost)"
    )


class Spec(_Section):
    model: ModelSpec
    task: TaskSpec
    heldout: HeldoutSpec
    diagnostics: DiagnosticsSpec = Field(default_factory=DiagnosticsSpec)
    budget: BudgetSpec
    comparator: ComparatorSpec
    failure_cost: FailureCostSpec
    pool: PoolSpec = Field(default_factory=PoolSpec)
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    ssd: SSDSpec = Field(default_factory=SSDSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    battery: BatterySpec = Field(default_factory=BatterySpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)

    @model_validator(mode="after")
    def _grpo_fits(self) -> Spec:
        """GRPO's batch holds whole prompt groups, and its rollouts must be sampled, not greedy."""
        c = self.comparator
        if ComparatorKind.GRPO not in c.measure:
            return self
        problems = []
        if self.train.batch_size % c.grpo_group:
            problems.append(f"train.batch_size {self.train.batch_size} is not a multiple of comparator.grpo_group "
                            f"{c.grpo_group}: a GRPO step holds whole groups of completions of one prompt")
        if c.grpo_temperature is None and self.generation.temperature == 0:
            problems.append("comparator.grpo_temperature is not set and generation.temperature is 0: greedy "
                            "rollouts give a group identical completions, so no advantage; set grpo_temperature")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def gpu_hours_total(self) -> float:
        b = self.budget
        return b.gpu_hours_sampling + b.gpu_hours_training + b.gpu_hours_eval


SECTIONS: dict[str, type[BaseModel]] = {
    name: info.annotation for name, info in Spec.model_fields.items()  # type: ignore[misc]
}


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; raise SpecError listing every problem at once."""
    path = Path(path)
    data = read_toml(path)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_errors(path, exc)) from None
    return _resolve_paths(spec, path.parent)


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(f"error: spec file {path} does not exist; pass the path of a TOML spec (see examples/)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"error: {path} is not valid TOML: {exc}; fix the syntax at that spot") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit integer; arrays nested thousands deep
        raise SpecError(f"error: {path} holds a value this tool does not read ({type(exc).__name__}: "
                        f"{str(exc)[:100]}); "
                        "fix that value") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"error: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _resolve_paths(spec: Spec, base: Path) -> Spec:
    """Relative data paths in a spec are relative to the spec file, not to the working directory."""
    h = spec.heldout
    updates: dict[str, str] = {}
    if h.task != "humaneval" and not Path(h.task).is_absolute():
        updates["task"] = str(base / h.task)
    if h.errata and not Path(h.errata).is_absolute():
        updates["errata"] = str(base / h.errata)
    if updates:
        spec = spec.model_copy(update={"heldout": h.model_copy(update=updates)})
    m = spec.model
    if m.path and m.path != "embedded-default" and not Path(m.path).expanduser().is_absolute():
        spec = spec.model_copy(update={"model": m.model_copy(update={"path": str(base / m.path)})})
    spec = _resolve_round_paths(spec, base)
    from selfdistill.train.launch import resolve_launcher  # config files: spec-relative, else the packaged ones

    launcher, problems = resolve_launcher(spec.train.launcher, base)
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"launcher": launcher})})
    if spec.model.path and spec.model.path != "embedded-default" and not Path(spec.model.path).expanduser().exists():
        problems.append(f"  model.path = {m.path!r}: no such file or directory (looked at {spec.model.path})")
    if spec.heldout.task != "humaneval" and not Path(spec.heldout.task).is_file():
        problems.append(f"  heldout.task = {h.task!r}: no such file (looked at {spec.heldout.task})")
    if spec.heldout.errata and not Path(spec.heldout.errata).is_file():
        problems.append(f"  heldout.errata = {h.errata!r}: no such file (looked at {spec.heldout.errata})")
    if spec.train.anchor_data and not Path(spec.train.anchor_data).is_file():
        problems.append(f"  train.anchor_data: no such file (looked at {spec.train.anchor_data})")
    if spec.comparator.data and not Path(spec.comparator.data).is_file():
        problems.append(f"  comparator.data: no such file (looked at {spec.comparator.data})")
    if problems:
        raise SpecError("error: the spec names files that do not exist:\n" + "\n".join(problems))
    return spec


def _resolve_round_paths(spec: Spec, base: Path) -> Spec:
    """Pool sources and anchor data named by relative path are relative to the spec file too."""
    src = spec.pool.source
    for prefix in ("codebase:", "split:", ""):
        if src.startswith(prefix):
            rest = src[len(prefix):]
            if rest not in ("mbpp", "humaneval") and rest and not Path(rest).expanduser().is_absolute():
                src = prefix + str(base / rest)
            break
    spec = spec.model_copy(update={"pool": spec.pool.model_copy(update={"source": src})})
    gate_updates = {}
    for key in ("round2_pool", "round2_heldout"):
        value = getattr(spec.gate, key)
        if (value and value not in ("mbpp", "humaneval") and ":" not in value
                and not Path(value).expanduser().is_absolute()):
            gate_updates[key] = str(base / value)
    if gate_updates:
        spec = spec.model_copy(update={"gate": spec.gate.model_copy(update=gate_updates)})
    anchor = spec.train.anchor_data
    if anchor and not Path(anchor).expanduser().is_absolute():
        spec = spec.model_copy(update={"train": spec.train.model_copy(update={"anchor_data": str(base / anchor)})})
    external = spec.comparator.data
    if external and not Path(external).expanduser().is_absolute():
        spec = spec.model_copy(update={"comparator": spec.comparator.model_copy(update={"data": str(base / external)})})
    return spec


def format_errors(path: Path, exc: ValidationError) -> str:
    """One block naming each missing or invalid field with its meaning and a fix."""
    missing, invalid = [], []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(across sections)"  # a rule of the whole spec names its fields
        if err["type"] == "missing":
            missing += [f"  {name:<38} {describe(tuple(name.split('.')))}" for name in _required_under(err["loc"])]
        elif err["type"] == "extra_forbidden":
            invalid.append(f"  {loc:<38} unknown field{_did_you_mean(err['loc'])}; remove it or fix its name")
        elif _section_model(err["loc"]) is not None and err["type"] == "value_error":
            invalid.append(f"  {loc:<38} {_clean(err['msg'])}")  # a cross-field rule of the section
        else:
            value = "" if err["type"] == "model_type" else f" (got {err.get('input')!r})"
            meaning = describe(err["loc"])
            hint = f"; {meaning}" if meaning else ""
            invalid.append(f"  {loc:<38} {_clean(err['msg'])}{value}{hint}")
    lines = []
    if missing:
        lines.append(
            f"error: {path} is missing {len(missing)} field{'s' if len(missing) != 1 else ''}; "
            "selfdistill recommends nothing until they are stated:"
        )
        lines += missing
    if invalid:
        lines.append(f"error: {path} has {len(invalid)} invalid field{'s' if len(invalid) != 1 else ''}:")
        lines += invalid
    lines.append("see examples/quickstart.toml for a complete, commented spec")
    return "\n".join(lines)


def _section_model(loc: tuple) -> type[BaseModel] | None:
    """The model class of the section `loc` names, or None when `loc` names a leaf field."""
    model: type[BaseModel] = Spec
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _required_under(loc: tuple) -> list[str]:
    """A missing leaf names itself; a missing section names each of its required fields."""
    model = _section_model(loc)
    prefix = ".".join(str(p) for p in loc)
    if model is None:
        return [prefix]
    return [f"{prefix}.{name}" for name, f in model.model_fields.items() if f.is_required()]


def describe(loc: tuple) -> str:
    """The description of the field at `loc`, or of the section when `loc` names one."""
    model: type[BaseModel] = Spec
    description = ""
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        if field is None:
            break
        description = field.description or ""
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            if not description:
                description = "section: " + ", ".join(model.model_fields)
    return description


def _did_you_mean(loc: tuple) -> str:
    model: type[BaseModel] = Spec
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return ""
        model = field.annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")
