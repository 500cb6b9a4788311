"""Model files: exact round trip (identity unchanged), and refusal of non-model / corrupt / pickle files."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from napari_sushi.core.spectral.files import ModelFileError, load_model_file, save_model


def _roundtrip(model, tmp_path):
    p = save_model(model, tmp_path / "m.safetensors")
    back = load_model_file(p)
    assert type(back) is type(model)
    assert back.identity() == model.identity()
    assert back.meta.to_json() == model.meta.to_json()
    th = torch.tensor(np.c_[np.linspace(0.6, 4.5, 7), np.linspace(-5000, 5000, 7)][:, : model.n_params])
    with torch.no_grad():
        assert torch.equal(back.spectrum(th), model.spectrum(th))
    return back


def test_emulator_roundtrip(thermal_emulator, powerlaw_emulator, tmp_path):
    _roundtrip(thermal_emulator, tmp_path)
    (tmp_path / "m.safetensors").unlink()
    _roundtrip(powerlaw_emulator, tmp_path)


@pytest.mark.parametrize("family", ["iae", "reference"])
def test_network_roundtrip(family, tiny_networks, tmp_path):
    back = _roundtrip(tiny_networks[family], tmp_path)
    assert back.meta.extra["loss_curve"], "the loss curve travels with the model"


def test_save_refuses_overwrite(thermal_emulator, tmp_path):
    p = save_model(thermal_emulator, tmp_path / "m.safetensors")
    with pytest.raises(FileExistsError):
        save_model(thermal_emulator, p)


class _Boom:
    def __reduce__(self):
        import os

        return (os.mkdir, (self.target,))


def test_pickle_refused_and_not_run(tmp_path):
    b = _Boom()
    b.target = str(tmp_path / "pwned")
    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps(b))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model_file(p)
    assert not (tmp_path / "pwned").exists()
    # a torch.save archive (zip holding a pickle) is refused too
    q = tmp_path / "ckpt.safetensors"
    torch.save({"w": torch.zeros(2)}, q)
    with pytest.raises(ModelFileError, match="pickle"):
        load_model_file(q)


def test_not_a_model(tmp_path):
    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(p), metadata={"hello": "world"})
    with pytest.raises(ModelFileError, match="not a napari-sushi spectral model"):
        load_model_file(p)
    t = tmp_path / "notes.safetensors"
    t.write_text("just some text, not a model at all")
    with pytest.raises(ModelFileError):
        load_model_file(t)
    with pytest.raises(FileNotFoundError):
        load_model_file(tmp_path / "missing.safetensors")


def test_corrupt_files(thermal_emulator, tmp_path):
    p = save_model(thermal_emulator, tmp_path / "m.safetensors")
    raw = p.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model_file(trunc)
    # flip bytes in the tensor data: the content hash no longer matches the recorded identity
    flip = bytearray(raw)
    for i in range(len(raw) - 50, len(raw) - 40):
        flip[i] ^= 0xFF
    bad = tmp_path / "flip.safetensors"
    bad.write_bytes(bytes(flip))
    with pytest.raises(ModelFileError, match="identity"):
        load_model_file(bad)
    # metadata that does not match the tensors
    n = int.from_bytes(raw[:8], "little")
    head = json.loads(raw[8 : 8 + n])
    cfg = json.loads(head["__metadata__"]["config"])
    cfg["cells"] = [c + 1 for c in cfg["cells"]]
    head["__metadata__"]["config"] = json.dumps(cfg)
    hb = json.dumps(head).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    inc = tmp_path / "inconsistent.safetensors"
    inc.write_bytes(len(hb).to_bytes(8, "little") + hb + raw[8 + n :])
    with pytest.raises(ModelFileError, match="corrupt or inconsistent"):
        load_model_file(inc)


def test_a_header_length_starting_like_a_pickle_still_opens(tmp_path):
    """A safetensors header of 8320 bytes starts with the byte 0x80, a pickle's protocol marker; the
    file's layout (length, then '{') tells it apart (the MSH 15-52 thermal model was refused so)."""
    import struct

    from napari_sushi.core.spectral.files import FORMAT, _read_header

    meta = {"format": FORMAT, "pad": "x"}
    for n in (8320, 640):  # 80 20 ..., 80 02 ... (the latter also a pickle protocol-2 prefix)
        body = json.dumps({"__metadata__": meta})
        body = body[:-2] + " " * (n - len(body)) + body[-2:]
        p = tmp_path / f"h{n}.safetensors"
        p.write_bytes(struct.pack("<Q", n) + body.encode())
        assert p.read_bytes()[:1] == b"\x80"
        assert _read_header(p)["format"] == FORMAT
