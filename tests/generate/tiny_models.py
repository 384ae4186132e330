"""Tiny random-weight models built locally for backend tests (no hub, a few hundred tokens of vocab).

- `write_tiny_gguf`: a llama-architecture GGUF (SentencePiece-style byte vocab + a few word pieces) that
  both llama.cpp and transformers (`gguf_file=`) load; optional chat template in `tokenizer.chat_template`.
- `write_tiny_hf`: a Qwen2 causal LM (2 layers, hidden 32) saved with `save_pretrained`, with a byte-level
  BPE tokenizer built by the `tokenizers` library and a ChatML-style chat template. Its saved
  `generation_config` is deliberately misleading (sampling on, top_k=3, repetition_penalty=3.0) so a test
  can show the backend never inherits it.

Weights are scaled up (std 0.5, not the 0.02 of a fresh init) so next-token distributions are peaked:
greedy has a clear argmax and tests do not hinge on float ties. Output rows of non-printable byte tokens
and of the special tokens are zero (logit exactly 0 against random logits of std ~4), so sampled text is
mostly printable ASCII and EOS practically never comes; tests of "stop" use stop strings.
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
        for name, param in model.named_parameters():
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
