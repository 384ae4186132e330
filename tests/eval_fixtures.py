"""The eval-stage tests' spec: the shipped quickstart with a stand-in model file, n = 4, k = [1, 4], HumanEval
only; and a progress bar that shows nothing."""

from pathlib import Path

QUICKSTART = Path(__file__).parents[1] / "selfdistill" / "data" / "quickstart.toml"


def make_spec(tmp_path: Path, temperature: float = 0.8) -> Path:
    (tmp_path / "model.gguf").write_bytes(b"fake")
    text = QUICKSTART.read_text()
    text = text.replace('path = "embedded-default"', 'path = "model.gguf"')
    text = text.replace("n = 16 ", 'n = 4 ').replace("k = [1, 4, 8, 16]", 'k = [1, 4]\nlower_k_reason = "test"')
    text = text.replace("temperature = 0.8 ", f"temperature = {temperature} ")
    text = text.replace("mbpp_share = 60 ", "mbpp_share = 0 ")  # HumanEval only: the fake answers canonically
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


class NullProgress:
    def start(self, total, done): self.total, self.done = total, done
    def generated(self, record): pass
    def scored(self, record): pass
