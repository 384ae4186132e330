"""selfdistill: measure whether Simple Self-Distillation (SSD) is the right next training move
for a code model, and run it safely when it is (arXiv 2604.01193)."""

__version__ = "0.1.0"
