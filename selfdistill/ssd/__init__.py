"""The SSD round: T_train sampling from the frozen base model, fine-tuning on the raw samples (and, as a
separate arm, on the verified ones), evaluation at T_eval with a sweep, paired deltas and the cost ledger."""
