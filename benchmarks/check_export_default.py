"""Export check on the embedded default (Qwen2.5-Coder-0.5B-Instruct GGUF: qwen2, Q5_0 / Q8_0 / Q6_K / Q4_K):
does llama.cpp running the exported distilled model agree with transformers running the trained one?

1. Load the GGUF with transformers (`gguf_file=`, dequantized to float32, ~40 s and ~3 GB), wrap it in a
   random LoRA (r=8, alpha=16, q/v/o; lora_B ~ N(0, b_std) so the adapter changes outputs), save it and
   `export_lora_gguf` it.
2. For 2 short code prompts: the first-step logits of llama.cpp (base alone, base + adapter) against
   transformers (base, base + adapter), as max |difference|, next to how far the adapter moves the logits;
   and 16 greedy tokens from each engine.
3. Unless --skip-merged: merge the adapter, save_pretrained, `export_merged_gguf`, and compare llama.cpp on
   the merged GGUF with transformers on the merged model (requantized tensors add their own rounding).

Not a unit test (minutes, real weights). It prints numbers and exits 0; it checks no threshold.
Run: `python benchmarks/check_export_default.py [--b-std 0.02] [--threads 2] [--skip-merged]`
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from selfdistill.generate.default_model import FILENAME, cache_dir

PROMPTS = ("def fibonacci(n):\n", "# Return the sum of the squares of a list\ndef sum_squares(xs):\n")
TARGETS = ["q_proj", "v_proj", "o_proj"]
N_TOKENS = 16


def lc_first_and_greedy(llm, ids: list[int], n: int) -> tuple[np.ndarray, list[int]]:
    import llama_cpp

    def last() -> np.ndarray:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()

    llm.reset()
    llm.eval(ids)
    first = last()
    out = [int(np.argmax(first))]
    for _ in range(n - 1):
        llm.eval([out[-1]])
        out.append(int(np.argmax(last())))
    return first, out


def hf_first_and_greedy(model, ids: list[int], n: int) -> tuple[np.ndarray, list[int]]:
    import torch

    out, first = [], None
    with torch.no_grad():  # argmax by hand, like the llama.cpp side: no EOS stop, no generation_config
        for _ in range(n):
            logits = model(torch.tensor([ids + out])).logits[0, -1].float().numpy()
            first = logits if first is None else first
            out.append(int(np.argmax(logits)))
    return first, out


def compare(label: str, llm, hf_model, prompts_ids, hf_ref=None) -> dict:
    rows = {}
    for i, ids in enumerate(prompts_ids):
        lc_first, lc_tokens = lc_first_and_greedy(llm, ids, N_TOKENS)
        hf_first, hf_tokens = hf_first_and_greedy(hf_model, ids, N_TOKENS)
        same = next((k for k, (a, b) in enumerate(zip(lc_tokens, hf_tokens, strict=True)) if a != b), N_TOKENS)
        rows[i] = (lc_first, hf_first, lc_tokens, hf_tokens)
        print(f"  {label:<22} prompt {i}: max|llama.cpp - transformers| first step = "
              f"{np.abs(lc_first - hf_first).max():.4f} (logit std {hf_first.std():.2f}); "
              f"greedy tokens identical for {same}/{N_TOKENS}")
        if hf_ref is not None:
            print(f"  {'':<22}           the adapter moves transformers' first-step logits by up to "
                  f"{np.abs(hf_first - hf_ref[i][1]).max():.3f}; top-1 {int(np.argmax(hf_ref[i][1]))} -> "
                  f"{int(np.argmax(hf_first))}; greedy text differs from base: {hf_tokens != hf_ref[i][3]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b-std", type=float, default=0.02)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-merged", action="store_true")
    args = parser.parse_args()
    base = cache_dir() / FILENAME
    if not base.is_file():
        print(f"{base} does not exist (install selfdistill[default-model] and run once); nothing to check")
        return

    import llama_cpp
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from selfdistill.train.export import export_lora_gguf, export_merged_gguf

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(base.parent), gguf_file=base.name).eval()
    print(f"transformers load (dequantize to float32): {time.perf_counter() - t0:.1f}s")
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS)).eval()
    with torch.no_grad():
        for module in peft_model.modules():
            if hasattr(module, "lora_B") and "default" in module.lora_B:
                module.lora_B["default"].weight.normal_(0.0, args.b_std)

    llama_kw = {"n_ctx": 512, "n_threads": args.threads, "n_threads_batch": args.threads, "verbose": False}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        peft_model.save_pretrained(tmp / "adapter")
        t0 = time.perf_counter()
        record = export_lora_gguf(tmp / "adapter", base, tmp / "lora.gguf")
        print(f"export_lora_gguf: {time.perf_counter() - t0:.1f}s, {record['tensors_written']} tensors, "
              f"{(tmp / 'lora.gguf').stat().st_size / 1e6:.1f} MB, alpha {record['alpha']}, rank {record['rank']}")

        llm = llama_cpp.Llama(model_path=str(base), **llama_kw)
        prompts_ids = [llm.tokenize(p.encode(), add_bos=True) for p in PROMPTS]
        with peft_model.disable_adapter():
            base_rows = compare("base", llm, peft_model, prompts_ids)
        llm.close()
        llm = llama_cpp.Llama(model_path=str(base), lora_path=str(tmp / "lora.gguf"), **llama_kw)
        assert llm._lora_adapter, "llama.cpp refused the adapter"
        compare("base + LoRA adapter", llm, peft_model, prompts_ids, hf_ref=base_rows)
        llm.close()

        if args.skip_merged:
            return
        merged = peft_model.merge_and_unload()
        merged.hf_quantizer = None  # transformers will not save_pretrained a GGUF-loaded model otherwise
        del merged.config.quantization_config
        merged.save_pretrained(tmp / "merged")
        t0 = time.perf_counter()
        record = export_merged_gguf(tmp / "merged", base, tmp / "merged.gguf")
        print(f"export_merged_gguf: {time.perf_counter() - t0:.1f}s, {len(record['changed'])} changed / "
              f"{record['tensors']} tensors, precision changes: {len(record['precision_changes'])} "
              f"({sorted({(p['from'], p['to']) for p in record['precision_changes']})})")
        llm = llama_cpp.Llama(model_path=str(tmp / "merged.gguf"), **llama_kw)
        compare("merged GGUF", llm, merged, prompts_ids, hf_ref=base_rows)
        llm.close()


if __name__ == "__main__":
    main()
