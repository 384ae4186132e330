"""The SSD round: T_train sampling from the frozen base model, fine-tuning on the raw samples (and, as a
separate arm, on the verified ones), evaluation at T_eval with a sweep, paired deltas and the cost ledger.

    arms.py      the arms as data (selection, algorithm, cost stages, deltas, title, colour)
    distill.py   one round's distillation: sampling -> verification -> training -> export -> evaluation
    summary.py   round.json: written by summarize_round, read by load_round
    round.py     round 1: pool, precondition, planned arms, then distill
    round2.py    round 2: through a passed gate, from the gated arm, then distill
    sampling.py data.py compare.py ledger.py probe.py gate.py promotion.py: the stages' pieces
"""
