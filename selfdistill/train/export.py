"""Fine-tuned weights back to GGUF, so llama.cpp evaluates the distilled model exactly as it evaluates the base.

Training loads the base GGUF through transformers (`from_pretrained(dir, gguf_file=name)`), which
dequantizes every tensor to float and, for the llama architecture only, un-permutes the q/k rows that
llama.cpp's converter permuted (transformers' `LlamaTensorProcessor`; qwen2 and qwen3 load as stored).
This module inverts that load against the same base file:

- `export_lora_gguf`: a PEFT LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`, as
  `PeftModel.save_pretrained` writes it) -> a llama.cpp LoRA adapter GGUF, laid out as llama.cpp's
  `convert_lora_to_gguf.py` writes one: `general.type = "adapter"`, `adapter.type = "lora"`,
  `adapter.lora.alpha`, and per target weight (`blk.N.attn_q.weight`...) `<name>.lora_a` (r x in) and
  `<name>.lora_b` (out x r), in F32. llama.cpp scales each delta by alpha / r (r read from lora_b), like
  PEFT; rsLoRA's alpha / sqrt(r) is folded into the alpha written (and, where ranks differ per module,
  into lora_b). lora_b rows of llama q/k get llama.cpp's permutation, so the delta lands in the base's row
  order. Run it with the llamacpp backend's `lora_path` option on the unchanged base file.
- `export_merged_gguf`: a model directory saved with `save_pretrained` (full fine-tuning or a merged LoRA)
  -> a complete GGUF: every metadata key of the base (tokenizer, chat template, hyper-parameters, and
  `general.file_type`, a label of the dominant type that stays true) and every tensor, in the base's
  order. A tensor equal to the dequantized base (at the dtype the model was trained in) is copied as raw
  bytes, same type, so an unchanged tensor is bit-identical to the base's; a changed one is quantized
  again to the base's type where gguf-py can (F32, F16, BF16, Q8_0, Q5_0, Q5_1, Q4_0, Q4_1); a K type
  (Q4_K, Q6_K...) is written as Q8_0 by default, since re-rounding W + delta to the base's 4-6 bit grid
  snaps a small fine-tuning delta back to W, or with `k_types="base"` in its own type by ggml's
  `ggml_quantize_chunk` (the quantizer llama-quantize runs, from llama-cpp-python's libggml); IQ types
  (which need an importance matrix) always as Q8_0. Type changes are listed in `precision_changes`, and
  `delta_retained` (median, min over changed tensors) says what share of the trained change survived.
  A base without `output.weight` (output tied to `token_embd`) gets none.
- `export_lora_arm`: what the round evaluates for a LoRA arm: the merged GGUF (training's merged/ model
  through `export_merged_gguf`), which llama.cpp decodes at the base's speed (base + adapter ran at 0.81x
  of the base's tokens/s on the embedded default, the merged file at 1.02x), where it keeps at least 90%
  of the trained change; else (a small delta on a quantized base), when asked for
  (SELFDISTILL_LORA_EXPORT=adapter) or when a merged copy would not fit on disk, the adapter. export.json
  says which and why.

Re-rounding changed tensors moves logits by itself. Measured on the embedded default
(benchmarks/check_export_default.py, random r=8 LoRA on q/v/o; before K types were kept), the largest
first-step logit gap between llama.cpp and transformers was 0.42 for the base alone, 0.38 for base +
adapter and 0.96 for a merged GGUF with the changed tensors at Q8_0 (logit std ~2.2; 16 greedy tokens
identical in all three).

Both return a JSON-ready record (sha256 of the written and of the base file, counts, what was changed) and
write through a temp file + `os.replace`, so `out` exists only when complete.

What it does not: architectures other than llama, qwen2 and qwen3 (others get transforms in transformers'
GGUF loader, such as gemma's norm offset, that are not inverted here; qwen3 loads untransformed like qwen2
but has no test here); LoRA on embeddings or lm_head, DoRA, modules_to_save, trained biases or any PEFT
variant that changes how a delta is applied (each refused with a DataError); quantizing to K types
(gguf-py has no K-quant quantizer).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path

import numpy as np

from selfdistill.errors import BackendUnavailable, DataError
from selfdistill.rundir import atomic_path, file_sha256

log = logging.getLogger(__name__)

# GGUF architecture -> whether transformers un-permutes attn_q / attn_k rows on load (LlamaTensorProcessor)
ARCHS = {"llama": True, "qwen2": False, "qwen3": False}
PEFT_PREFIX = "base_model.model."
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# PEFT LoraConfig fields that, when set, change how or where a delta is applied; a llama.cpp adapter cannot
_UNSUPPORTED_LORA = {
    "use_dora": "DoRA (weight-decomposed LoRA)",
    "modules_to_save": "modules_to_save (fully trained copies of modules)",
    "trainable_token_indices": "trainable_token_indices (trained embedding rows)",
    "target_parameters": "target_parameters (LoRA on raw parameters)",
    "lora_bias": "lora_bias (a bias on lora_B)",
    "fan_in_fan_out": "fan_in_fan_out (Conv1D-style weights)",
    "alpha_pattern": "alpha_pattern (per-module alpha)",
    "layer_replication": "layer_replication",
    "alora_invocation_tokens": "activated LoRA (alora_invocation_tokens)",
    "use_qalora": "QALoRA",
    "use_bdlora": "BD-LoRA",
    "arrow_config": "Arrow routing",
    "kasa_config": "KaSA",
}
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")
_DERIVED = {"rope_freqs.weight"}  # written by llama.cpp's converter from the config, not a model weight
_TIED = ("lm_head.weight", "model.embed_tokens.weight")


def export_lora_gguf(adapter_dir: Path, base_gguf: Path, out: Path) -> dict:
    """Write the PEFT LoRA adapter in `adapter_dir` as a llama.cpp LoRA GGUF for `base_gguf`; return a record."""
    gguf = _gguf()
    adapter_dir, base_gguf, out = Path(adapter_dir), Path(base_gguf), Path(out)
    config = _adapter_config(adapter_dir)
    base = _Base(base_gguf)
    pairs = _lora_pairs(adapter_dir, base)
    alpha, rescaled = _alpha_and_rescale(config, pairs)

    writer = gguf.GGUFWriter(None, base.arch)  # the path is given when written: _finish
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_name(f"{adapter_dir.name} (LoRA for {base_gguf.name})")
    permuted = []
    for name, (a, b) in sorted(pairs.items()):
        b = b * rescaled.get(name, 1.0)
        if base.permutes(name):
            b = base.to_gguf_rows(name, b)
            permuted.append(name)
        writer.add_tensor(name + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))
    _finish(writer, out)

    ranks = sorted({a.shape[0] for a, _ in pairs.values()})
    log.info("export: %d LoRA pairs (rank %s, alpha %g) -> %s", len(pairs), ranks, alpha, out)
    return _files_record("lora", out, base_gguf, base.arch) | {
        "tensors_written": 2 * len(pairs),
        "targets": sorted(pairs),
        "rank": ranks[0] if len(ranks) == 1 else ranks,
        "lora_alpha": config.get("lora_alpha"),
        "use_rslora": bool(config.get("use_rslora")),
        "alpha": alpha,
        "lora_b_rescaled": sorted(rescaled),
        "qk_permuted": permuted,
        "dtype": "F32",
    }


LORA_EXPORT_ENV = "SELFDISTILL_LORA_EXPORT"  # merged | adapter | auto (default)


MIN_DELTA_RETAINED = 0.9  # a merged GGUF must keep at least this share of the trained change, else the adapter


def export_lora_arm(adapter_dir: Path, merged_dir: Path, base_gguf: Path, out_dir: Path, prefer: str | None = None
                    ) -> dict:
    """A LoRA-trained arm as llama.cpp evaluates it: {"model", "options", "how", "lora_export", "reason", "detail"}.

    Merged where that is faithful: the training job's merged/ model written into a copy of the base GGUF decodes
    at about the base's speed (a base + adapter ran at 0.81x of it: llama.cpp adds the low-rank product at every
    matmul and turns mmap off), but re-rounding W + delta to a quantized base's grid can snap a small trained
    delta back to W: on the embedded default (Q4_K_M, Q5_0 and Q8_0 tensors) a 4-step LoRA kept 3% of its
    change. So the merged file is used only when it keeps at least MIN_DELTA_RETAINED of the change
    (`delta_retained`, export_merged_gguf); otherwise it is deleted and the adapter (base GGUF unchanged +
    `lora_path`, applied in F32) evaluates the arm, and the record says why. "adapter" (`prefer` or the
    SELFDISTILL_LORA_EXPORT environment variable) skips the merge; "merged" keeps it whatever it retains; the
    adapter is also used when the merged copy would not fit (less free disk than twice the base file)."""
    import shutil

    prefer = (prefer or os.environ.get(LORA_EXPORT_ENV) or "auto").lower()
    if prefer not in ("merged", "adapter", "auto"):
        raise DataError(f"error: {LORA_EXPORT_ENV}={prefer!r}; use merged, adapter or auto")
    out_dir.mkdir(parents=True, exist_ok=True)
    size, free = Path(base_gguf).stat().st_size, shutil.disk_usage(out_dir).free
    merged_detail = None
    if prefer == "adapter":
        reason = f"asked for ({LORA_EXPORT_ENV} or the caller)"
    elif prefer == "auto" and free < 2 * size:
        reason = f"a merged copy ({size / 2**20:.0f} MiB) would not fit: {free / 2**20:.0f} MiB free"
    elif not (Path(merged_dir) / "config.json").is_file():
        if prefer == "merged":
            raise DataError(f"error: {merged_dir} holds no merged model; train again or use {LORA_EXPORT_ENV}=adapter")
        reason = f"the training job wrote no merged model in {merged_dir}"
    else:
        merged_detail = export_merged_gguf(Path(merged_dir), Path(base_gguf), out_dir / "model.gguf")
        kept = (merged_detail["delta_retained"] or {"median": 1.0})["median"]
        if prefer == "merged" or kept >= MIN_DELTA_RETAINED:
            return {"model": str(out_dir / "model.gguf"), "options": {}, "lora_export": "merged",
                    "reason": f"decodes at about the base's speed and keeps {100 * kept:.0f}% of the trained change",
                    "how": "LoRA merged into the weights (PEFT merge_and_unload), written into a copy of the base GGUF",
                    "detail": merged_detail}
        (out_dir / "model.gguf").unlink()
        reason = (f"a merged GGUF kept only {100 * kept:.0f}% of the trained change (re-rounded to the base's "
                  f"quantized types; {100 * MIN_DELTA_RETAINED:.0f}% needed): the adapter applies all of it")
    detail = export_lora_gguf(Path(adapter_dir), Path(base_gguf), out_dir / "adapter.gguf")
    return {"model": str(base_gguf), "options": {"lora_path": str(out_dir / "adapter.gguf")}, "lora_export": "adapter",
            "reason": reason, "how": "LoRA adapter converted to GGUF, applied by llama.cpp to the unchanged base GGUF",
            "detail": detail, "merged_refused": merged_detail}


K_TYPES = ("q8_0", "base")


def export_merged_gguf(model_dir: Path, base_gguf: Path, out: Path, *, k_types: str = "q8_0") -> dict:
    """Write the model in `model_dir` (save_pretrained safetensors) as a GGUF shaped like `base_gguf`.

    `k_types`: how a changed tensor whose base type is a K type is written: "q8_0" (default: 8 bits keep a
    small fine-tuning delta; re-rounding to the base's 4-6 bit grid snaps most of it back to the base) or
    "base" (the base's own K type, by ggml's quantizer: the same size and speed as the base). The record's
    `delta_retained` says how much of the trained change survived the rounding (1 = all of it)."""
    if k_types not in K_TYPES:
        raise ValueError(f"k_types={k_types!r}; use one of {K_TYPES}")
    gguf = _gguf()
    model_dir, base_gguf, out = Path(model_dir), Path(base_gguf), Path(out)
    base = _Base(base_gguf)
    weights = _hf_weights(model_dir)
    by_gguf = _map_hf_names(weights, base, model_dir)

    writer = gguf.GGUFWriter(None, base.arch)  # the path is given when written: _finish
    _copy_metadata(base.reader, writer)
    changed, precision_changes, copied_without_counterpart, retained = [], [], [], []
    for tensor in base.reader.tensors:
        hf_name = by_gguf.get(tensor.name)
        if hf_name is None:
            copied_without_counterpart.append(tensor.name)
        data, qtype, kept = (_merged_tensor(gguf, tensor, weights[hf_name], hf_name, base, k_types) if hf_name
                             else (None, None, None))
        if data is None:  # unchanged (or derived): the base's bytes
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
            continue
        changed.append(tensor.name)
        retained.append(kept)
        if qtype != tensor.tensor_type:
            precision_changes.append({"tensor": tensor.name, "from": tensor.tensor_type.name, "to": qtype.name})
        writer.add_tensor(tensor.name, data, raw_dtype=qtype)
    _finish(writer, out)

    n = len(base.reader.tensors)
    log.info("export: %d/%d tensors changed, %d written at another precision -> %s",
             len(changed), n, len(precision_changes), out)
    return _files_record("merged", out, base_gguf, base.arch) | {
        "tensors": n,
        "unchanged": n - len(changed),
        "changed": changed,
        "precision_changes": precision_changes,
        "k_types": k_types,
        "delta_retained": {"median": float(np.median(retained)), "min": float(np.min(retained))} if retained else None,
        "copied_without_counterpart": copied_without_counterpart,
        "dropped": [_TIED[0]] if _TIED[0] in weights and _TIED[0] not in by_gguf.values() else [],
    }


# base file ------------------------------------------------------------------------------------------


class _Base:
    """The base GGUF: reader, architecture, HF -> GGUF tensor names, and the q/k row layout."""

    def __init__(self, path: Path) -> None:
        gguf = _gguf()
        if not path.is_file():
            raise DataError(f"error: base GGUF {str(path)!r} does not exist; give the GGUF the model was trained from")
        try:
            self.reader = gguf.GGUFReader(str(path))
        except (ValueError, OSError) as exc:
            raise DataError(f"error: cannot read base GGUF {str(path)!r} ({exc}); is it a GGUF file?") from None
        self.path = path
        self.arch = self._field("general.architecture")
        if self.arch not in ARCHS:
            raise DataError(
                f"error: base GGUF {path.name} has architecture {self.arch!r}; export supports "
                f"{', '.join(sorted(ARCHS))} (others need the inverse of transformers' per-architecture GGUF "
                "load transforms, which is not implemented); evaluate with the hf backend instead"
            )
        self.n_head = int(self._field(f"{self.arch}.attention.head_count"))
        self.n_head_kv = int(self._field(f"{self.arch}.attention.head_count_kv", self.n_head))
        n_blocks = int(self._field(f"{self.arch}.block_count"))
        arch_enum = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}[self.arch]
        self.name_map = gguf.get_tensor_name_map(arch_enum, n_blocks)
        self.tensors = {t.name: t for t in self.reader.tensors}

    def _field(self, key: str, default=None):
        field = self.reader.get_field(key)
        if field is None:
            if default is not None:
                return default
            raise DataError(f"error: base GGUF {self.path.name} has no {key!r} metadata; is it a model GGUF?")
        return field.contents()

    def gguf_name(self, hf_name: str) -> str | None:
        return self.name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))

    def permutes(self, gguf_name: str) -> bool:
        return ARCHS[self.arch] and (".attn_q." in gguf_name or ".attn_k." in gguf_name)

    def to_gguf_rows(self, gguf_name: str, rows: np.ndarray) -> np.ndarray:
        """llama.cpp's `LlamaModel.permute` (convert_hf_to_gguf.py), the inverse of transformers' un-permute."""
        n_head = self.n_head if ".attn_q." in gguf_name else self.n_head_kv
        shape = rows.shape
        return rows.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


# LoRA -----------------------------------------------------------------------------------------------


def _adapter_config(adapter_dir: Path) -> dict:
    missing = [f for f in ADAPTER_FILES if not (adapter_dir / f).is_file()]
    if missing:
        raise DataError(
            f"error: adapter directory {str(adapter_dir)!r} lacks {', '.join(missing)}; "
            "give the directory PeftModel.save_pretrained wrote (safetensors, the default)"
        )
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA":
        raise DataError(
            f"error: {adapter_dir / 'adapter_config.json'} is a {config.get('peft_type')!r} adapter; "
            "llama.cpp applies LoRA adapters only (or merge it and use export_merged_gguf)"
        )
    bad = [label for key, label in _UNSUPPORTED_LORA.items() if config.get(key)]
    if config.get("bias", "none") != "none":
        bad.append(f"bias={config['bias']!r} (trained biases)")
    if bad:
        raise DataError(
            f"error: the adapter in {str(adapter_dir)!r} uses {'; '.join(bad)}, which a llama.cpp LoRA adapter "
            "cannot express; train a plain LoRA, or merge the adapter (merge_and_unload + save_pretrained) "
            "and use export_merged_gguf"
        )
    return config


def _lora_pairs(adapter_dir: Path, base: _Base) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{base GGUF weight name: (lora_A (r, in), lora_B (out, r))}, checked against the base's shapes."""
    tensors = _read_safetensors(adapter_dir / "adapter_model.safetensors")
    halves: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        match = _LORA_KEY.match(key.removeprefix(PEFT_PREFIX))
        if match is None:
            raise DataError(
                f"error: {adapter_dir.name}/adapter_model.safetensors holds {key!r}, not a lora_A/lora_B "
                "weight (LoRA on embeddings, DoRA magnitudes and saved modules cannot go into a llama.cpp "
                "adapter); train LoRA on linear layers only, or merge and use export_merged_gguf"
            )
        halves.setdefault(match["module"], {})[match["ab"]] = value
    if not halves:
        raise DataError(f"error: {adapter_dir.name}/adapter_model.safetensors has no LoRA weights")
    pairs = {}
    for module, ab in halves.items():
        target = _lora_target(module, base, adapter_dir)
        pairs[target] = _checked_pair(module, ab, base.tensors[target])
    return pairs


def _lora_target(module: str, base: _Base, adapter_dir: Path) -> str:
    name = base.gguf_name(module)
    target = f"{name}.weight" if name else None
    if target is None or target not in base.tensors:
        raise DataError(
            f"error: the adapter in {str(adapter_dir)!r} targets {module!r}, which has no tensor in base GGUF "
            f"{base.path.name} (arch {base.arch}, mapped to {target!r}); was it trained from this base?"
        )
    if target.startswith(("token_embd.", "output.")):
        raise DataError(
            f"error: the adapter targets {module!r} ({target}); export supports LoRA on the transformer blocks' "
            "linear layers only; leave embeddings and lm_head out of target_modules, or merge the adapter "
            "and use export_merged_gguf"
        )
    return target


def _checked_pair(module: str, ab: dict[str, np.ndarray], weight) -> tuple[np.ndarray, np.ndarray]:
    if set(ab) != {"A", "B"}:
        raise DataError(f"error: the adapter has lora_{'A' if 'A' in ab else 'B'} but not its pair for {module!r}")
    a, b = ab["A"], ab["B"]
    n_in, n_out = (int(x) for x in weight.shape[:2])  # ggml order: ne[0] = in, ne[1] = out
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != n_in or b.shape[0] != n_out or a.shape[0] != b.shape[1]:
        raise DataError(
            f"error: LoRA shapes for {module!r} are A {tuple(a.shape)}, B {tuple(b.shape)}, but the base weight "
            f"is ({n_out}, {n_in}) (out, in); was the adapter trained from this base?"
        )
    return a, b


def _alpha_and_rescale(config: dict, pairs: dict) -> tuple[float, dict[str, float]]:
    """The alpha to write, and per-tensor factors for lora_b where llama.cpp's alpha / r (r from lora_b)
    would differ from PEFT's scale: lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA."""
    lora_alpha = float(config.get("lora_alpha", 8))
    rslora = bool(config.get("use_rslora"))
    r = int(config.get("r", 8))
    alpha = lora_alpha * math.sqrt(r) if rslora else lora_alpha
    rescaled = {}
    for name, (a, _) in pairs.items():
        rank = a.shape[0]
        peft_scale = lora_alpha / (math.sqrt(rank) if rslora else rank)
        llama_scale = alpha / rank if alpha else 1.0  # llama.cpp reads alpha 0 as "no scaling"
        if not math.isclose(peft_scale, llama_scale, rel_tol=1e-6):
            rescaled[name] = peft_scale / llama_scale
    return alpha, rescaled


# merged model -------------------------------------------------------------------------------------------


def _hf_weights(model_dir: Path) -> dict:
    """{HF name: torch tensor} from model.safetensors or a sharded index (lazy per file is not needed:
    the export holds one model's weights, which training held too)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        files = [model_dir / s for s in shards]
    else:
        files = [model_dir / "model.safetensors"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(
            f"error: {str(model_dir)!r} has no {', '.join(missing)}; give a directory written by "
            "save_pretrained (safetensors)"
        )
    weights = {}
    for f in files:
        weights.update(_read_safetensors(f, as_numpy=False))
    return weights


def _map_hf_names(weights: dict, base: _Base, model_dir: Path) -> dict[str, str]:
    """{base GGUF name: HF name}; every HF weight must land on a base tensor, and every base weight be given."""
    by_gguf, unmapped = {}, []
    for hf_name in weights:
        name = base.gguf_name(hf_name)
        if name is None or name not in base.tensors:
            unmapped.append(hf_name)
        else:
            by_gguf[name] = hf_name
    tied = _TIED[0] in unmapped and _TIED[1] in weights and "output.weight" not in base.tensors
    extra = [n for n in unmapped if not (tied and n == _TIED[0])]
    lacking = [n for n in base.tensors if n not in by_gguf and n not in _DERIVED]
    if extra or lacking:
        what = (f"{len(extra)} tensor(s) with no counterpart in it, e.g. {', '.join(extra[:3])}" if extra else
                f"none of {len(lacking)} of its tensor(s), e.g. {', '.join(lacking[:3])}")
        raise DataError(
            f"error: {str(model_dir)!r} does not match base GGUF {base.path.name} (arch {base.arch}): it has {what}; "
            "was it trained from this base? (give the complete directory save_pretrained wrote)"
        )
    if tied:  # the base ties output to token_embd: lm_head can only be dropped if training kept it tied
        import torch

        if not torch.equal(weights[_TIED[0]], weights[_TIED[1]]):
            raise DataError(
                f"error: {base.path.name} ties the output head to token_embd (no output.weight) but lm_head.weight "
                f"in {str(model_dir)!r} differs from model.embed_tokens.weight; keep them tied during training"
            )
    return by_gguf


def _merged_tensor(gguf, tensor, weight, hf_name: str, base: _Base, k_types: str = "q8_0"):
    """(None, None, None) if `weight` equals the dequantized base tensor at the weight's dtype, else the data
    to write, its type and the share of the change it keeps: the base type if gguf-py can quantize to it, a
    K type by ggml's quantizer when k_types = "base", otherwise Q8_0 (F32 if rows do not fit)."""
    import torch

    expected = tuple(int(x) for x in reversed(tensor.shape.tolist()))
    if tuple(weight.shape) != expected:
        raise DataError(
            f"error: {hf_name} has shape {tuple(weight.shape)} but base tensor {tensor.name} is {expected}; "
            "was the model trained from this base?"
        )
    new = weight.float().numpy()
    if base.permutes(tensor.name):
        new = base.to_gguf_rows(tensor.name, new)
    old = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(expected)
    if weight.dtype != torch.float32:  # trained in bf16/f16: the base as the model held it
        old = torch.from_numpy(np.ascontiguousarray(old)).to(weight.dtype).float().numpy()
    if np.array_equal(new, old):
        return None, None, None
    data, qtype = _quantized(gguf, new, tensor.tensor_type, k_types, expected)
    written = gguf.quants.dequantize(data, qtype).reshape(expected) if qtype != gguf.GGMLQuantizationType.F32 else new
    change = (new - old).ravel().astype(np.float64)
    kept = float(np.dot((written - old).ravel(), change) / max(np.dot(change, change), 1e-300))
    return data, qtype, kept


def _quantized(gguf, new: np.ndarray, qtype, k_types: str, expected: tuple):
    try:
        return gguf.quants.quantize(new, qtype), qtype
    except NotImplementedError:
        pass
    if k_types == "base":
        data = ggml_quantize(new, qtype)  # K types: llama.cpp's own quantizer, the base's type kept
        if data is not None:
            return data, qtype
    fallback = gguf.GGMLQuantizationType.Q8_0 if expected[-1] % 32 == 0 else gguf.GGMLQuantizationType.F32
    return gguf.quants.quantize(new, fallback), fallback


def ggml_quantize(rows: np.ndarray, qtype) -> np.ndarray | None:
    """`rows` (float, 2-D: rows x n_per_row) quantized to `qtype` by ggml's `ggml_quantize_chunk`, the function
    llama.cpp's llama-quantize calls, from the ggml library that llama-cpp-python ships; None where that library
    is absent or the type needs an importance matrix (IQ types) or does not divide the rows into its blocks."""
    lib = _ggml_base()
    if lib is None or lib.ggml_quantize_requires_imatrix(int(qtype)):
        return None
    rows = np.ascontiguousarray(rows.reshape(-1, rows.shape[-1]), dtype=np.float32)
    n_rows, n_per_row = rows.shape
    block = _gguf().GGML_QUANT_SIZES.get(qtype, (0, 0))[0]
    if not block or n_per_row % block:
        return None
    row_bytes = lib.ggml_row_size(int(qtype), n_per_row)
    out = np.empty((n_rows, row_bytes), dtype=np.uint8)
    lib.ggml_quantize_init(int(qtype))
    written = lib.ggml_quantize_chunk(int(qtype), rows.ctypes.data, out.ctypes.data, 0, n_rows, n_per_row, None)
    if written != out.nbytes:
        raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes for {qtype.name}, expected {out.nbytes}")
    return out


_GGML = []


def _ggml_base():
    """libggml-base from llama-cpp-python's wheel, with the three quantizer signatures declared (None if absent)."""
    if _GGML:
        return _GGML[0]
    import ctypes

    try:
        import llama_cpp

        lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    except (ImportError, OSError):
        lib = None
    if lib is not None:
        i64, size_t, ptr = ctypes.c_int64, ctypes.c_size_t, ctypes.c_void_p
        lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ptr, ptr, i64, i64, i64, ptr]
        lib.ggml_quantize_chunk.restype = size_t
        lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
        lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
        lib.ggml_quantize_init.argtypes = [ctypes.c_int]
        lib.ggml_quantize_init.restype = None
        lib.ggml_row_size.argtypes = [ctypes.c_int, i64]
        lib.ggml_row_size.restype = size_t
    _GGML.append(lib)
    return lib


def _copy_metadata(reader, writer) -> None:
    """Every key/value of the base, as gguf-py's gguf_new_metadata.py copies them (architecture is the
    writer's own first key; the alignment must also set the writer's padding)."""
    gguf = _gguf()
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name == gguf.Keys.General.ALIGNMENT:
            writer.add_custom_alignment(int(field.contents()))
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)


# files ----------------------------------------------------------------------------------------------


def _read_safetensors(path: Path, *, as_numpy: bool = True) -> dict:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise BackendUnavailable("error: export needs safetensors; `pip install 'selfdistill[hf]'`") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (SafetensorError, OSError) as exc:
        raise DataError(f"error: cannot read {str(path)!r} ({exc}); is it a safetensors file?") from None
    return {k: v.float().numpy() for k, v in tensors.items()} if as_numpy else tensors


def _finish(writer, out: Path) -> None:
    with atomic_path(out) as tmp:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()


def checkpoint_id(export: dict) -> str:
    """sha256 of what is served: the exported adapter/model file, else the merged weights' files."""
    detail = export.get("detail") or {}
    digest = detail.get("out_sha256") or detail.get("sha256")
    if digest:
        return "sha256:" + digest
    target = Path(export.get("options", {}).get("lora_path") or export["model"])
    files = sorted(target.glob("*.safetensors")) if target.is_dir() else [target] if target.is_file() else []
    return "sha256:" + file_sha256(*files) if files else f"path:{target}"


def _files_record(kind: str, out: Path, base_gguf: Path, arch: str) -> dict:
    """What an export wrote and from what: both files by resolved path and sha256."""
    return {"kind": kind, "out": str(out.resolve()), "out_sha256": file_sha256(out),
            "base_gguf": str(base_gguf.resolve()), "base_sha256": file_sha256(base_gguf), "arch": arch}


def _gguf():
    try:
        import gguf
    except ImportError:
        raise BackendUnavailable("error: GGUF export needs the gguf package; `pip install 'selfdistill[hf]'`") from None
    return gguf
