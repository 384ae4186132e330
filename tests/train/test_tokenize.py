"""Training targets are what the model sampled: a T_train sample cut off at max_new_tokens trains without the
end-of-turn / end-of-text token; a finished one trains exactly as TRL's SFTTrainer would tokenize it."""

import pytest

pytest.importorskip("trl")

from selfdistill.train.finetune import tokenize_example  # noqa: E402
from tests.generate.tiny_models import _byte_level_tokenizer  # noqa: E402

PROMPT_CHAT = [{"role": "user", "content": "Write f(x) returning x + 1."}]
RAW = "```python\ndef f(x):\n    return x + 1\n```"


@pytest.fixture(scope="module")
def tokenizer():
    return _byte_level_tokenizer()


def _completion(tokenizer, tokens: dict) -> list[int]:
    return [t for t, m in zip(tokens["input_ids"], tokens["completion_mask"], strict=True) if m]


def test_a_chat_sample_cut_off_at_max_new_tokens_has_no_end_of_turn_token(tokenizer):
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    turn = [{"role": "assistant", "content": RAW}]
    finished = tokenize_example(tokenizer, {"prompt": PROMPT_CHAT, "completion": turn})
    cut_turn = [{"role": "assistant", "content": RAW[:20]}]
    cut = tokenize_example(tokenizer, {"prompt": PROMPT_CHAT, "completion": cut_turn, "truncated": True})
    assert end in _completion(tokenizer, finished)
    assert end not in _completion(tokenizer, cut)
    # the cut-off one trains on exactly the tokens it produced, after the prompt as it was sampled
    assert tokenizer.decode(_completion(tokenizer, cut)) == RAW[:20]
    prompt = tokenizer.apply_chat_template(PROMPT_CHAT, add_generation_prompt=True, tokenize=False)
    assert tokenizer.decode(cut["input_ids"][: cut["completion_mask"].index(1)]) == prompt


def test_a_base_model_sample_cut_off_gets_no_eos(tokenizer):
    eos = tokenizer.eos_token_id
    finished = tokenize_example(tokenizer, {"prompt": "def f(x):\n", "completion": "    return x + 1\n"})
    cut = tokenize_example(tokenizer, {"prompt": "def f(x):\n", "completion": "    return x", "truncated": True})
    assert _completion(tokenizer, finished)[-1] == eos
    assert eos not in _completion(tokenizer, cut)
    assert tokenizer.decode(_completion(tokenizer, cut)) == "    return x"


@pytest.mark.parametrize("chat", [True, False])
def test_a_finished_example_tokenizes_exactly_as_trl_does(tokenizer, tmp_path, chat):
    """The pre-tokenized path changes nothing for finished samples: same ids, same loss mask as SFTTrainer's own."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from tests.generate.tiny_models import write_tiny_hf

    if chat:
        example = {"prompt": PROMPT_CHAT, "completion": [{"role": "assistant", "content": RAW}]}
    else:
        example = {"prompt": "def f(x):\n", "completion": "    return x + 1\n"}
    model = write_tiny_hf(tmp_path / "model")
    args = SFTConfig(output_dir=str(tmp_path / "out"), completion_only_loss=True, report_to="none", use_cpu=True,
                     max_length=512)
    trl = SFTTrainer(model=str(model), args=args, train_dataset=Dataset.from_list([example]),
                     processing_class=tokenizer).train_dataset[0]
    ours = tokenize_example(tokenizer, example)
    assert ours["input_ids"] == trl["input_ids"]
    assert [i if m else -100 for i, m in zip(ours["input_ids"], ours["completion_mask"], strict=True)] == trl["labels"]
