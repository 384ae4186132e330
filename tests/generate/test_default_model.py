"""The embedded default model: parts assembled in order, verified, refused on mismatch."""

import hashlib

import pytest

from selfdistill.errors import BackendUnavailable, DataError
from selfdistill.generate import default_model


def parts(tmp_path, chunks):
    paths = []
    for i, data in enumerate(chunks):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_parts_are_concatenated_in_order_and_verified(tmp_path):
    chunks = [b"GGUF", b"-middle-", b"end"]
    whole = b"".join(chunks)
    dest = tmp_path / "out" / "model.gguf"
    default_model.assemble(parts(tmp_path, chunks), dest, hashlib.sha256(whole).hexdigest(), len(whole))
    assert dest.read_bytes() == whole


def test_a_hash_mismatch_is_refused_and_leaves_nothing(tmp_path):
    dest = tmp_path / "out" / "model.gguf"
    with pytest.raises(DataError, match="sha256"):
        default_model.assemble(parts(tmp_path, [b"a", b"b"]), dest, "0" * 64, 2)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_missing_part_packages_name_the_extra(monkeypatch):
    monkeypatch.setattr(default_model, "PARTS", (("selfdistill-no-such-part", "x/part01.bin"),))
    with pytest.raises(BackendUnavailable, match=r"selfdistill\[default-model\]"):
        default_model.part_paths()


def test_alias_resolves_only_the_alias_and_the_bare_default_name(monkeypatch, tmp_path):
    monkeypatch.setattr(default_model, "default_model_path", lambda dest_dir=None: tmp_path / "m.gguf")
    assert default_model.resolve_model("embedded-default", "anything") == str(tmp_path / "m.gguf")
    assert default_model.resolve_model(None, default_model.NAME) == str(tmp_path / "m.gguf")
    assert default_model.resolve_model("/models/x.gguf", default_model.NAME) == "/models/x.gguf"
    assert default_model.resolve_model(None, "org/other-model") == "org/other-model"


def test_a_verified_file_is_not_assembled_again(monkeypatch, tmp_path):
    dest = tmp_path / default_model.FILENAME
    dest.write_bytes(b"x")
    monkeypatch.setattr(default_model, "SIZE", 1)
    stamp = dest.with_suffix(".verified.json")
    stamp.write_text(f'{{"sha256": "{default_model.SHA256}", "mtime_ns": {dest.stat().st_mtime_ns:d}}}')
    monkeypatch.setattr(default_model, "assemble", lambda *a, **k: pytest.fail("assembled again"))
    assert default_model.default_model_path(tmp_path) == dest
