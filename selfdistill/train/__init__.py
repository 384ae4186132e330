"""Fine-tuning on self-distilled samples (TRL + PEFT) and export of the result for the evaluation engine."""
