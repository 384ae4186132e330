"""Run under `accelerate launch` by tests/train/test_launch.py: build the project's trainer for a job and
write which examples this rank's dataloader yields (one line per batch row: the user turn it holds)."""

import json
import os
import sys
from pathlib import Path

from selfdistill.train.finetune import build_trainer, load_examples

job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
trainer, _, tokenizer = build_trainer(job, load_examples(Path(job["examples"])))
seen = []
for batch in trainer.get_train_dataloader():
    for ids in batch["input_ids"]:
        text = tokenizer.decode(ids)
        seen.append(text[text.index("Write f"):].split("<|im_end|>")[0])
out = Path(sys.argv[2]) / f"rank{os.environ.get('RANK', '0')}.json"
out.write_text(json.dumps({"world": trainer.args.world_size, "seen": seen}))
