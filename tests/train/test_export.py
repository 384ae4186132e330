"""GGUF export of fine-tuned weights, checked against transformers on tiny random GGUFs of both layouts:
llama (F32, q/k rows permuted by llama.cpp's converter) and qwen2 (tied output, biases, Q5_0 / Q8_0 /
Q6_K / Q4_K tensors). The training side is what `selfdistill train` does: load the GGUF with transformers
(`gguf_file=`), wrap it in a PEFT LoRA, save the adapter; or merge and save_pretrained.

Tolerances: llama.cpp keeps its KV cache in F16 and, against quantized weights, quantizes activations to
8 bits, so its logits differ from transformers' float32 ones even for the untouched base (~0.02 on the
F32 llama, ~0.2 on the quantized qwen2, logit std ~3). An exported delta is right when the error with it
stays at that level while the delta itself moves logits by several units.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("gguf")
pytest.importorskip("llama_cpp")
pytest.importorskip("peft")
pytest.importorskip("transformers")

import gguf
import llama_cpp
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from selfdistill.errors import DataError
from selfdistill.generate.base import GenRequest
from selfdistill.generate.llamacpp import LlamaCppBackend
from selfdistill.generate.params import SamplingParams
from selfdistill.train.export import LORA_EXPORT_ENV, export_lora_arm, export_lora_gguf, export_merged_gguf
from tests.generate.tiny_models import write_tiny_gguf, write_tiny_qwen2_gguf

PROMPTS = ("def f(x):\n    return x + 1", "xyz", "ret def")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
WRITERS = {"llama": write_tiny_gguf, "qwen2": write_tiny_qwen2_gguf}
TOL = {"llama": 0.1, "qwen2": 0.5}  # max |logit difference|, llama.cpp vs transformers (see module doc)
Q = gguf.GGMLQuantizationType


def _lora_model(base: Path, *, seed: int = 0, **config):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base.parent), gguf_file=base.name)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, **config))
    with torch.no_grad():
        for module in peft_model.modules():
            if hasattr(module, "lora_B") and "default" in module.lora_B:
                module.lora_B["default"].weight.normal_(0.0, 0.1)  # PEFT starts B at 0: a no-op adapter
    return peft_model.eval()


def _save_merged(peft_model, directory: Path) -> torch.nn.Module:
    merged = peft_model.merge_and_unload()
    # transformers refuses save_pretrained on a model loaded from GGUF (its GGUF quantizer is "not
    # serializable"), though the weights are plain dequantized floats; detach it, as training must
    merged.hf_quantizer = None
    del merged.config.quantization_config
    merged.save_pretrained(directory)
    return merged


@pytest.fixture(scope="module", params=sorted(WRITERS))
def case(request, tmp_path_factory):
    arch = request.param
    root = tmp_path_factory.mktemp(f"export-{arch}")
    base = WRITERS[arch](root / "base.gguf")
    hf_base = AutoModelForCausalLM.from_pretrained(str(root), gguf_file=base.name).eval()
    peft_model = _lora_model(base)
    peft_model.save_pretrained(root / "adapter")
    lora_record = export_lora_gguf(root / "adapter", base, root / "lora.gguf")
    merged = _save_merged(peft_model, root / "merged").eval()
    merged_record = export_merged_gguf(root / "merged", base, root / "merged.gguf")
    llms = {
        name: llama_cpp.Llama(model_path=str(model), n_ctx=256, n_threads=1, verbose=False, lora_path=lora)
        for name, model, lora in [
            ("base", base, None), ("lora", base, str(root / "lora.gguf")), ("merged", root / "merged.gguf", None),
        ]
    }
    assert llms["lora"]._lora_adapter, "llama.cpp refused the exported adapter"
    yield SimpleNamespace(
        arch=arch, root=root, base=base, hf_base=hf_base, merged=merged, llms=llms,
        lora_record=lora_record, merged_record=merged_record, tol=TOL[arch],
    )
    for llm in llms.values():
        llm.close()


def tokens(llm, text: str) -> list[int]:
    return llm.tokenize(text.encode(), add_bos=True)  # BOS only where the GGUF asks for it (llama, not qwen2)


def lc_logits(llm, ids: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(ids)
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def hf_logits(model, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].numpy()


def hf_greedy(model, ids: list[int], n: int) -> list[int]:
    out = []
    for _ in range(n):
        out.append(int(np.argmax(hf_logits(model, ids + out))))
    return out


def metadata(reader) -> dict:
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def readers(case):
    base, out = gguf.GGUFReader(str(case.base)), gguf.GGUFReader(str(case.root / "merged.gguf"))
    return {t.name: t for t in base.tensors}, {t.name: t for t in out.tensors}, base, out


# (a) LoRA adapter ---------------------------------------------------------------------------------------


def test_lora_record_describes_the_adapter(case):
    r = case.lora_record
    assert (r["kind"], r["arch"], r["rank"], r["alpha"], r["dtype"]) == ("lora", case.arch, 4, 8.0, "F32")
    assert r["tensors_written"] == 2 * 7 * 2  # 7 targets x 2 layers, lora_a + lora_b
    assert len(r["out_sha256"]) == len(r["base_sha256"]) == 64
    expected_permuted = 4 if case.arch == "llama" else 0  # attn_q, attn_k x 2 layers
    assert len(r["qk_permuted"]) == expected_permuted


def test_lora_gguf_is_laid_out_as_llama_cpp_expects(case):
    reader = gguf.GGUFReader(str(case.root / "lora.gguf"))
    fields = metadata(reader)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == case.arch and fields["adapter.lora.alpha"] == 8.0
    base = {t.name: t for t in gguf.GGUFReader(str(case.base)).tensors}
    lora = {t.name: t for t in reader.tensors}
    a, b, w = lora["blk.0.ffn_down.weight.lora_a"], lora["blk.0.ffn_down.weight.lora_b"], base["blk.0.ffn_down.weight"]
    assert (w.shape[0], w.shape[1]) == (a.shape[0], b.shape[1]) and a.shape[1] == b.shape[0] == 4  # ggml ne order


@pytest.mark.slow  # real llama.cpp and transformers forward passes per prompt; the GGUF shape tests stay fast
def test_base_plus_adapter_in_llama_cpp_matches_transformers_with_the_adapter(case):
    for text in PROMPTS:
        ids = tokens(case.llms["base"], text)
        hf_lora, hf_base = hf_logits(case.merged, ids), hf_logits(case.hf_base, ids)
        lc_lora, lc_base = lc_logits(case.llms["lora"], ids), lc_logits(case.llms["base"], ids)
        delta = np.abs(hf_lora - hf_base).max()
        assert np.abs(lc_base - hf_base).max() < case.tol  # the engines agree on the base ...
        assert np.abs(lc_lora - hf_lora).max() < min(case.tol, 0.1 * delta)  # ... and on base + delta
        assert np.abs(lc_lora - lc_base).max() > 10 * case.tol  # the adapter does change llama.cpp's output
        assert np.argmax(lc_lora) == np.argmax(hf_lora)


def test_backend_with_lora_path_greedy_decodes_as_transformers(case):
    lora = str(case.root / "lora.gguf")
    backend = LlamaCppBackend(str(case.base), chat=False, n_ctx=256, n_threads=1, lora_path=lora)
    try:
        d = backend.describe()
        [result] = backend.generate([GenRequest("t/0", 0, PROMPTS[0], 1)], SamplingParams(0.0, max_new_tokens=8))
    finally:
        backend.close()
    assert d["lora_sha256"] == case.lora_record["out_sha256"]
    assert d["lora_size_bytes"] == (case.root / "lora.gguf").stat().st_size
    llm = case.llms["base"]
    expected = hf_greedy(case.merged, tokens(llm, PROMPTS[0]), 8 if case.arch == "llama" else 3)
    assert result.text.encode().startswith(llm.detokenize(expected))


def test_lora_arm_is_evaluated_merged_and_greedy_decodes_as_transformers(case, tmp_path, monkeypatch):
    """The round's default for a LoRA arm: the merged model in a copy of the base GGUF, no adapter option;
    run through the backend (batched), its greedy tokens are transformers' on the merged model."""
    monkeypatch.delenv(LORA_EXPORT_ENV, raising=False)
    exp = export_lora_arm(case.root / "adapter", case.root / "merged", case.base, tmp_path)
    assert (exp["lora_export"], exp["options"], exp["model"]) == ("merged", {}, str(tmp_path / "model.gguf"))
    assert exp["detail"]["delta_retained"]["median"] >= 0.9  # this test's delta is large: the merge keeps it
    assert exp["detail"]["out_sha256"] == case.merged_record["out_sha256"]  # the same file export_merged_gguf writes
    backend = LlamaCppBackend(exp["model"], chat=False, n_ctx=256, n_threads=1, batch=2)
    try:
        results = list(backend.generate([GenRequest("t/0", i, PROMPTS[0], 1 + i) for i in range(2)],
                                        SamplingParams(0.0, max_new_tokens=8)))
    finally:
        backend.close()
    llm = case.llms["merged"]
    expected = hf_greedy(case.merged, tokens(llm, PROMPTS[0]), 8 if case.arch == "llama" else 3)
    assert all(r.text.encode().startswith(llm.detokenize(expected)) for r in results)


def test_lora_arm_falls_back_to_the_adapter_when_merging_would_lose_the_delta(case, tmp_path, monkeypatch):
    """A small trained change re-rounded to a quantized base's grid mostly snaps back to the base: the merged
    file is refused (and deleted) and the adapter, which applies the change in F32, evaluates the arm."""
    monkeypatch.delenv(LORA_EXPORT_ENV, raising=False)
    peft_model = _lora_model(case.base)
    with torch.no_grad():
        for module in peft_model.modules():
            if hasattr(module, "lora_B") and "default" in module.lora_B:
                module.lora_B["default"].weight.mul_(1e-4)  # a delta far below the quantization step
    peft_model.save_pretrained(tmp_path / "adapter")
    _save_merged(peft_model, tmp_path / "merged")
    exp = export_lora_arm(tmp_path / "adapter", tmp_path / "merged", case.base, tmp_path / "out")
    if case.arch == "llama":  # F32 base: nothing is re-rounded, the merge keeps all of the change
        assert exp["lora_export"] == "merged" and exp["detail"]["delta_retained"]["min"] > 0.99
        return
    assert exp["lora_export"] == "adapter" and "kept only" in exp["reason"]
    assert exp["merged_refused"]["delta_retained"]["median"] < 0.9
    assert not (tmp_path / "out" / "model.gguf").exists() and exp["options"]["lora_path"].endswith("adapter.gguf")
    forced = export_lora_arm(tmp_path / "adapter", tmp_path / "merged", case.base, tmp_path / "forced", prefer="merged")
    assert forced["lora_export"] == "merged"  # asked for: kept whatever it retains, and the record says how much


def test_lora_arm_keeps_the_adapter_path_when_asked(case, tmp_path, monkeypatch):
    monkeypatch.setenv(LORA_EXPORT_ENV, "adapter")
    exp = export_lora_arm(case.root / "adapter", case.root / "merged", case.base, tmp_path)
    assert (exp["lora_export"], exp["model"]) == ("adapter", str(case.base))
    assert exp["options"] == {"lora_path": str(tmp_path / "adapter.gguf")} and not (tmp_path / "model.gguf").exists()
    monkeypatch.setenv(LORA_EXPORT_ENV, "auto")
    no_merged = export_lora_arm(case.root / "adapter", tmp_path / "nothing", case.base, tmp_path / "b")
    assert no_merged["lora_export"] == "adapter" and "no merged model" in no_merged["reason"]
    monkeypatch.setenv(LORA_EXPORT_ENV, "fused")
    with pytest.raises(DataError, match="merged, adapter or auto"):
        export_lora_arm(case.root / "adapter", case.root / "merged", case.base, tmp_path / "c")


def test_rslora_scale_is_folded_into_alpha(case, tmp_path):
    if case.arch != "llama":
        pytest.skip("the scale does not depend on the layout; the F32 llama gives the tight comparison")
    peft_model = _lora_model(case.base, use_rslora=True, seed=1)
    peft_model.save_pretrained(tmp_path / "adapter")
    record = export_lora_gguf(tmp_path / "adapter", case.base, tmp_path / "lora.gguf")
    assert record["use_rslora"] and record["alpha"] == pytest.approx(8 * 2.0)  # alpha / sqrt(r) == (alpha sqrt(r)) / r
    llm = llama_cpp.Llama(model_path=str(case.base), n_ctx=256, n_threads=1, verbose=False,
                          lora_path=str(tmp_path / "lora.gguf"))
    try:
        ids = tokens(llm, PROMPTS[1])
        assert np.abs(lc_logits(llm, ids) - hf_logits(peft_model, ids)).max() < case.tol
    finally:
        llm.close()


# (b) merged model -----------------------------------------------------------------------------------------


def test_merged_gguf_keeps_every_metadata_value_of_the_base(case):
    _, _, base, out = readers(case)
    assert metadata(out) == metadata(base)
    assert [t.name for t in out.tensors] == [t.name for t in base.tensors]


def test_unchanged_tensors_are_bit_identical_and_changed_ones_keep_their_type(case):
    base, out, _, _ = readers(case)
    changed = set(case.merged_record["changed"])
    assert len(changed) == 7 * 2 and all(name.endswith(".weight") and "norm" not in name for name in changed)
    assert case.merged_record["unchanged"] == len(base) - len(changed)
    fallback = {p["tensor"]: (p["from"], p["to"]) for p in case.merged_record["precision_changes"]}
    for name, t in base.items():
        if name not in changed:
            assert out[name].tensor_type == t.tensor_type and out[name].data.tobytes() == t.data.tobytes(), name
        elif t.tensor_type in (Q.Q4_K, Q.Q6_K):  # k_types="q8_0" (default): 8 bits keep a small trained delta
            assert out[name].tensor_type == Q.Q8_0 and fallback[name] == (t.tensor_type.name, "Q8_0")
        else:
            assert out[name].tensor_type == t.tensor_type and name not in fallback
    assert ("output.weight" in out) == (case.arch == "llama")  # qwen2's tied head stays tied
    if case.arch == "qwen2":
        assert set(fallback) == {"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}
    kept = case.merged_record["delta_retained"]
    assert case.merged_record["k_types"] == "q8_0" and 0.9 < kept["min"] <= kept["median"] < 1.1


def test_k_types_base_keeps_every_tensor_at_the_base_type(case, tmp_path):
    """k_types="base": changed K-type tensors re-quantized to their own type by ggml's quantizer (the same
    size and speed as the base); the record says how much of the trained change the coarser grid kept."""
    record = export_merged_gguf(case.root / "merged", case.base, tmp_path / "k.gguf", k_types="base")
    base = {t.name: t for t in gguf.GGUFReader(str(case.base)).tensors}
    out = {t.name: t for t in gguf.GGUFReader(str(tmp_path / "k.gguf")).tensors}
    assert record["precision_changes"] == [] and record["k_types"] == "base"
    assert all(out[n].tensor_type == t.tensor_type for n, t in base.items())
    if case.arch == "qwen2":
        assert {base[n].tensor_type for n in record["changed"]} >= {Q.Q4_K, Q.Q6_K}  # the ggml path ran
        assert record["delta_retained"]["min"] < case.merged_record["delta_retained"]["min"]
    with pytest.raises(ValueError, match="k_types"):
        export_merged_gguf(case.root / "merged", case.base, tmp_path / "x.gguf", k_types="q4")


def test_merged_weights_round_trip_through_transformers_within_one_quantization_step(case):
    """transformers reads the exported file back (un-permuting llama q/k): each weight is the trained one,
    exactly where written as F32, else within one rounding of its type: Q8_0 half a step (amax / 254),
    Q5_0 a sixteenth of amax (its grid is asymmetric, -16..15 steps, so the far side can clip by a step);
    plus the fp16 rounding of the block scale; K types (6-bit and 4-bit levels under quantized sub-block
    scales) within a 32nd and an 8th of amax."""
    reloaded = AutoModelForCausalLM.from_pretrained(str(case.root), gguf_file="merged.gguf").state_dict()
    trained = case.merged.state_dict()
    _, out, _, _ = readers(case)
    bound = {Q.F32: 0.0, Q.Q8_0: 1 / 254 + 1 / 2048, Q.Q5_0: 1 / 16 + 1 / 2048, Q.Q6_K: 1 / 32, Q.Q4_K: 1 / 8}
    for name in case.merged_record["changed"]:
        hf_name = next(k for k in trained if _gguf_name(case, k) == name)
        error = (reloaded[hf_name] - trained[hf_name]).abs().max().item()
        assert error <= bound[out[name].tensor_type] * trained[hf_name].abs().max().item(), name


def _gguf_name(case, hf_name: str) -> str | None:
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[case.arch]
    return gguf.get_tensor_name_map(arch, 2).get_name(hf_name, try_suffixes=(".weight", ".bias"))


def test_merged_gguf_in_llama_cpp_matches_transformers(case):
    reloaded = AutoModelForCausalLM.from_pretrained(str(case.root), gguf_file="merged.gguf").eval()
    for text in PROMPTS:
        ids = tokens(case.llms["merged"], text)
        lc = lc_logits(case.llms["merged"], ids)
        assert np.abs(lc - hf_logits(reloaded, ids)).max() < case.tol  # the file as transformers reads it
        if case.arch == "llama":  # F32: nothing re-quantized, so also the trained model itself, and the adapter
            assert np.abs(lc - hf_logits(case.merged, ids)).max() < case.tol
            assert np.abs(lc - lc_logits(case.llms["lora"], ids)).max() < 0.01


def test_merged_export_of_an_untrained_model_is_the_base_file_byte_for_byte(case, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(str(case.root), gguf_file=case.base.name)
    model.hf_quantizer = None
    del model.config.quantization_config
    model.save_pretrained(tmp_path / "same")
    record = export_merged_gguf(tmp_path / "same", case.base, tmp_path / "same.gguf")
    assert record["changed"] == [] and record["out_sha256"] == record["base_sha256"]


# (c) refusals ---------------------------------------------------------------------------------------------


def _copy_adapter(case, tmp_path: Path) -> Path:
    return Path(shutil.copytree(case.root / "adapter", tmp_path / "adapter"))


def _edit_config(adapter: Path, **changes) -> None:
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, **changes}))


def test_missing_adapter_file_is_a_data_error(case, tmp_path):
    adapter = _copy_adapter(case, tmp_path)
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(DataError, match="lacks adapter_model.safetensors"):
        export_lora_gguf(adapter, case.base, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"use_dora": True}, "DoRA"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"bias": "all"}, "trained biases"),
    ({"peft_type": "IA3"}, "LoRA adapters only"),
])
def test_adapter_variants_llama_cpp_cannot_apply_are_refused(case, tmp_path, change, message):
    if case.arch != "llama":
        pytest.skip("config checks do not depend on the architecture")
    adapter = _copy_adapter(case, tmp_path)
    _edit_config(adapter, **change)
    with pytest.raises(DataError, match=message):
        export_lora_gguf(adapter, case.base, tmp_path / "out.gguf")


@pytest.mark.parametrize(("key", "message"), [
    ("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", "no tensor in base GGUF"),
    ("base_model.model.model.embed_tokens.lora_embedding_A", "not a lora_A/lora_B weight"),
    ("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", "not a lora_A/lora_B weight"),
])
def test_adapter_tensors_without_a_llama_cpp_counterpart_are_refused(case, tmp_path, key, message):
    adapter = _copy_adapter(case, tmp_path)
    tensors = load_file(adapter / "adapter_model.safetensors")
    tensors[key] = torch.zeros(4, 64)
    if "layers.7" in key:
        tensors[key.replace("lora_A", "lora_B")] = torch.zeros(64, 4)
    save_file(tensors, adapter / "adapter_model.safetensors")
    with pytest.raises(DataError, match=message):
        export_lora_gguf(adapter, case.base, tmp_path / "out.gguf")


def test_adapter_from_another_base_is_refused(case, tmp_path):
    other = WRITERS["qwen2" if case.arch == "llama" else "llama"](tmp_path / "other.gguf")
    with pytest.raises(DataError, match="trained from this base"):  # same names, other shapes
        export_lora_gguf(case.root / "adapter", other, tmp_path / "out.gguf")
    with pytest.raises(DataError, match="trained from this base"):
        export_merged_gguf(case.root / "merged", other, tmp_path / "out.gguf")


def test_unsupported_architecture_is_refused(tmp_path):
    path = tmp_path / "gemma.gguf"
    w = gguf.GGUFWriter(str(path), "gemma2")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(DataError, match="architecture 'gemma2'"):
        export_merged_gguf(tmp_path, path, tmp_path / "out.gguf")


def test_untied_lm_head_for_a_tied_base_is_refused(case, tmp_path):
    if case.arch != "qwen2":
        pytest.skip("only the qwen2 tiny GGUF ties its output head")
    model_dir = Path(shutil.copytree(case.root / "merged", tmp_path / "merged"))
    tensors = load_file(model_dir / "model.safetensors")
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"] + 1.0
    save_file(tensors, model_dir / "model.safetensors")
    with pytest.raises(DataError, match="keep them tied"):
        export_merged_gguf(model_dir, case.base, tmp_path / "out.gguf")


def test_missing_model_weights_are_a_data_error(case, tmp_path):
    with pytest.raises(DataError, match="save_pretrained"):
        export_merged_gguf(tmp_path, case.base, tmp_path / "out.gguf")


def test_backend_refuses_a_missing_or_mismatched_adapter(case, tmp_path):
    with pytest.raises(DataError, match="lora_path .* does not exist"):
        LlamaCppBackend(str(case.base), chat=False, n_ctx=256, n_threads=1, lora_path=str(tmp_path / "no.gguf"))
    other = WRITERS["qwen2" if case.arch == "llama" else "llama"](tmp_path / "other.gguf")
    with pytest.raises(DataError, match="refused LoRA adapter"):  # llama.cpp returns NULL; we must not go on
        LlamaCppBackend(str(other), chat=False, n_ctx=256, n_threads=1, lora_path=str(case.root / "lora.gguf"))
