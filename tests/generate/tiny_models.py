"""Tiny random-weight models built locally for backend tests (no hub, a few hundred tokens of vocab).

- `write_tiny_gguf`: a llama-architecture GGUF (SentencePiece-style byte vocab + a few word pieces) that
  both llama.cpp and transformers (`gguf_file=`) load; optional chat template in `tokenizer.chat_template`.
- `write_tiny_qwen2_gguf`: a qwen2-architecture GGUF as llama.cpp's converter writes Qwen2.5: q/k/v biases,
  a byte-level BPE vocab (`tokenizer.ggml.model = "gpt2"`, pre "qwen2", a few merges, ChatML specials),
  no `output.weight` (the output head is tied to `token_embd`), and the real model's mix of tensor types:
  Q5_0 / Q8_0 matrices, F32 norms and biases, Q6_K and Q4_K `ffn_down` (random K-quant blocks, since
  gguf-py cannot quantize to K types). Both llama.cpp and transformers (`gguf_file=`) load it. Its block
  matrices have std 0.1 (`block_std`; the embedding keeps 0.5): llama.cpp quantizes activations to 8 bits
  against quantized weights, and a random network with std-0.5 blocks amplifies that into logit gaps of
  1-2 against transformers, where std 0.1 keeps them near 0.2 and the next-token argmax shared.
- `write_tiny_hf`: a Qwen2 causal LM (2 layers, hidden 32) saved with `save_pretrained`, with a byte-level
  BPE tokenizer built by the `tokenizers` library and a ChatML-style chat template. Its saved
  `generation_config` is deliberately misleading (sampling on, top_k=3, repetition_penalty=3.0) so a test
  can show the backend never inherits it.

Weights are scaled up (std 0.5, not the 0.02 of a fresh init) so next-token distributions are peaked:
greedy has a clear argmax and tests do not hinge on float ties. Output rows of non-printable byte tokens
and of the special tokens are zero (in the tied qwen2 GGUF, their embedding rows): logit exactly 0 against
random logits of std ~4, so sampled text is mostly printable ASCII and EOS practically never comes; tests
of "stop" use stop strings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GGUF_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
HF_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HF_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _printable(byte: int) -> bool:
    return 0x20 <= byte <= 0x7E or byte == 0x0A


def write_tiny_gguf(path: Path, *, chat_template: str | None = GGUF_CHAT_TEMPLATE, seed: int = 0) -> Path:
    import gguf

    n_embd, n_head, n_head_kv, n_layer, n_ff, n_ctx = 64, 4, 2, 2, 128, 512
    head_dim = n_embd // n_head
    pieces = ["\u2581", "\u2581def", "\u2581return", "(", ")", ":", "\u2581x", "\u2581+", "\u25811"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + pieces
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(pieces))]
    T = gguf.TokenType
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL] + [T.BYTE] * 256 + [T.NORMAL] * len(pieces)
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    rng = np.random.default_rng(seed)

    def r(*shape: int) -> np.ndarray:  # numpy shape == HF nn.Linear weight shape (out, in)
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    output = r(n_vocab, n_embd)
    for i in range(3 + 256):  # specials and non-printable bytes: logit 0, practically never sampled
        if i < 3 or not _printable(i - 3):
            output[i] = 0.0
    w.add_tensor("token_embd.weight", r(n_vocab, n_embd))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", output)
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", r(n_head * head_dim, n_embd))
        w.add_tensor(p + "attn_k.weight", r(n_head_kv * head_dim, n_embd))
        w.add_tensor(p + "attn_v.weight", r(n_head_kv * head_dim, n_embd))
        w.add_tensor(p + "attn_output.weight", r(n_embd, n_head * head_dim))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", r(n_ff, n_embd))
        w.add_tensor(p + "ffn_up.weight", r(n_ff, n_embd))
        w.add_tensor(p + "ffn_down.weight", r(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


QWEN2_MERGES = ["d e", "de f", "r e", "re t", "\u0120 x", "\u0120 +"]  # byte-level spelling: \u0120 is a space


def write_tiny_qwen2_gguf(
    path: Path, *, chat_template: str | None = HF_CHAT_TEMPLATE, seed: int = 0, block_std: float = 0.1
) -> Path:
    """A qwen2 GGUF laid out like llama.cpp's Qwen2.5 conversions; tensor types as listed in the module doc."""
    import gguf

    Q = gguf.GGMLQuantizationType
    n_embd, n_head, n_head_kv, n_layer, n_ff, n_ctx = 64, 4, 2, 2, 256, 512  # n_ff % 256 == 0: K-quant rows
    head_dim = n_embd // n_head
    spelling = _bytes_to_unicode()
    merged = ["".join(m.split(" ")) for m in QWEN2_MERGES]
    tokens = [spelling[b] for b in range(256)] + merged + HF_SPECIAL  # token id == byte value, as in write_tiny_hf
    T = gguf.TokenType
    types = [T.NORMAL] * (256 + len(merged)) + [T.CONTROL] * len(HF_SPECIAL)
    special = {t: tokens.index(t) for t in HF_SPECIAL}

    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q5_0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(QWEN2_MERGES)
    w.add_eos_token_id(special["<|im_end|>"])
    w.add_pad_token_id(special["<|endoftext|>"])
    w.add_bos_token_id(special["<|endoftext|>"])
    w.add_add_bos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    rng = np.random.default_rng(seed)

    def r(*shape: int, std: float = block_std) -> np.ndarray:  # numpy shape == HF weight shape (out, in)
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def add(name: str, data: np.ndarray, qtype) -> None:
        w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    embd = r(len(tokens), n_embd, std=0.5)  # also the output head (tied): zero rows never win the argmax
    embd[[b for b in range(256) if not _printable(b)] + list(special.values())] = 0.0
    add("token_embd.weight", embd, Q.Q5_0)
    add("output_norm.weight", np.ones(n_embd, dtype=np.float32), Q.F32)
    for i in range(n_layer):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32), Q.F32)
        add(p + "attn_q.weight", r(n_head * head_dim, n_embd), Q.Q5_0)
        add(p + "attn_q.bias", r(n_head * head_dim), Q.F32)
        add(p + "attn_k.weight", r(n_head_kv * head_dim, n_embd), Q.Q5_0)
        add(p + "attn_k.bias", r(n_head_kv * head_dim), Q.F32)
        add(p + "attn_v.weight", r(n_head_kv * head_dim, n_embd), Q.Q8_0)
        add(p + "attn_v.bias", r(n_head_kv * head_dim), Q.F32)
        add(p + "attn_output.weight", r(n_embd, n_head * head_dim), Q.Q5_0)
        add(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32), Q.F32)
        add(p + "ffn_gate.weight", r(n_ff, n_embd), Q.Q5_0)
        add(p + "ffn_up.weight", r(n_ff, n_embd), Q.Q5_0)
        kquant = (Q.Q6_K, Q.Q4_K)[i % 2]
        w.add_tensor(p + "ffn_down.weight", _random_k_quant(rng, n_embd, n_ff, kquant, block_std), raw_dtype=kquant)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _random_k_quant(rng, rows: int, cols: int, qtype, std: float) -> np.ndarray:
    """Random Q6_K / Q4_K blocks (uint8, one row of blocks per weight row), scaled to `std`: the codes,
    sub-block scales and mins are random bytes; the fp16 super-block scale `d` (and Q4_K's `dmin`, set so
    values centre near 0) is fitted after one dequantization."""
    import gguf

    Q = gguf.GGMLQuantizationType
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    d_at = {Q.Q6_K: (size - 2,), Q.Q4_K: (0, 2)}[qtype]  # Q6_K: d last; Q4_K: d, dmin first

    def set_scales(d: float) -> None:
        for offset, value in zip(d_at, (d, d * 7.5), strict=False):
            raw[..., offset:offset + 2] = np.array([value], dtype=np.float16).view(np.uint8)

    set_scales(1.0)
    set_scales(std / float(gguf.quants.dequantize(raw.reshape(rows, -1), qtype).std()))
    return raw.reshape(rows, -1)


def _byte_level_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {char: b for b, char in _bytes_to_unicode().items()}  # token id == byte value
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(HF_SPECIAL)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=HF_CHAT_TEMPLATE,
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable stand-in map, the alphabet of byte-level BPE."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(others)}}


def write_tiny_hf(directory: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = _byte_level_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.5)
        head = model.lm_head.weight
        for b in range(256):
            if not _printable(b):
                head[b] = 0.0
        head[256:] = 0.0  # special tokens
    model.generation_config = GenerationConfig(
        do_sample=True, top_k=3, temperature=0.3, repetition_penalty=3.0,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
