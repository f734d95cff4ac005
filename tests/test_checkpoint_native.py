"""The project's own single-file format."""

import json

import pytest
import torch
from conftest import randomize_temporal_outputs
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vidiff_model import CheckpointError, VIDiffModel, load_vidiff, save_vidiff, tiny_config


@pytest.mark.parametrize("image", [True, False])
def test_save_then_load_is_bit_exact(tmp_path, image):
    torch.manual_seed(3)
    model = VIDiffModel(tiny_config(image_instruction=image))
    randomize_temporal_outputs(model)
    path = tmp_path / "m.safetensors"
    save_vidiff(model, path, metadata={"source": "test"})
    loaded = load_vidiff(path)
    assert loaded.config == model.config
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "vidiff" and meta["source"] == "test"
    assert json.loads(meta["config"])["unet"]["in_channels"] == 8
    assert any(k.startswith("image_proj.") for k in b) == image


def test_dtype_on_save_and_on_load(tmp_path):
    model = VIDiffModel(tiny_config())
    path = tmp_path / "half.safetensors"
    save_vidiff(model, path, dtype=torch.float16)
    assert {t.dtype for t in load_file(str(path)).values()} == {torch.float16}
    assert load_vidiff(path).dtype == torch.float16
    loaded = load_vidiff(path, dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16
    ref = model.state_dict()["unet.conv_in.weight"].to(torch.float16).to(torch.bfloat16)
    assert torch.equal(loaded.state_dict()["unet.conv_in.weight"], ref)


def test_loaded_model_runs(tmp_path, tiny_model):
    path = tmp_path / "m.safetensors"
    save_vidiff(tiny_model, path)
    model = load_vidiff(path)
    x = torch.randn(1, 4, 3, 8, 8)
    ins = model.encode_instruction(torch.randn(1, 77, 768))
    with torch.no_grad():  # same weights; memory layout may change the last float bits of a kernel
        torch.testing.assert_close(model(x, x, 10, ins), tiny_model(x, x, 10, ins), rtol=1e-5, atol=1e-6)


def _rewrite(src, dst, drop=(), add=None, metadata=None):
    tensors = load_file(str(src))
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    meta.update(metadata or {})
    for k in drop:
        tensors.pop(k)
    tensors.update(add or {})
    save_file(tensors, str(dst), metadata=meta)


def test_missing_and_unexpected_keys_are_named(tmp_path, tiny_model):
    good = tmp_path / "good.safetensors"
    save_vidiff(tiny_model, good)
    _rewrite(good, tmp_path / "missing.safetensors", drop=["unet.conv_out.bias"])
    with pytest.raises(CheckpointError, match=r"missing.safetensors: .*1 missing tensors \(unet.conv_out.bias\)"):
        load_vidiff(tmp_path / "missing.safetensors")
    _rewrite(good, tmp_path / "extra.safetensors", add={"unet.bogus.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match=r"1 unexpected tensors \(unet.bogus.weight\)"):
        load_vidiff(tmp_path / "extra.safetensors")
    _rewrite(good, tmp_path / "shape.safetensors", drop=["unet.conv_out.bias"],
             add={"unet.conv_out.bias": torch.zeros(5)})
    with pytest.raises(CheckpointError, match=r"unet.conv_out.bias is \(5,\), expected \(4,\)"):
        load_vidiff(tmp_path / "shape.safetensors")


def test_bad_metadata_and_wrong_files(tmp_path, tiny_model):
    good = tmp_path / "good.safetensors"
    save_vidiff(tiny_model, good)
    _rewrite(good, tmp_path / "v9.safetensors", metadata={"format_version": "9"})
    with pytest.raises(CheckpointError, match="format version '9' is not supported"):
        load_vidiff(tmp_path / "v9.safetensors")
    _rewrite(good, tmp_path / "cfg.safetensors", metadata={"config": "{not json"})
    with pytest.raises(CheckpointError, match="unreadable config"):
        load_vidiff(tmp_path / "cfg.safetensors")
    save_file({"encoder.conv_in.weight": torch.zeros(1), "decoder.conv_out.weight": torch.zeros(1)},
              str(tmp_path / "vae.safetensors"))
    with pytest.raises(CheckpointError, match="vae.safetensors: not a VIDiff checkpoint; this file looks like a VAE"):
        load_vidiff(tmp_path / "vae.safetensors")
    with pytest.raises(CheckpointError, match="no such file"):
        load_vidiff(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match="are .safetensors files"):
        save_vidiff(tiny_model, tmp_path / "m.ckpt")


def test_save_is_atomic(tmp_path, tiny_model, monkeypatch):
    """A failure while writing leaves the previous file intact (nothing half-written)."""
    path = tmp_path / "m.safetensors"
    save_vidiff(tiny_model, path)
    before = path.read_bytes()
    import safetensors.torch as st

    def boom(tensors, filename, metadata=None):
        open(filename, "wb").write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(st, "save_file", boom)
    with pytest.raises(OSError):
        save_vidiff(tiny_model, path)
    assert path.read_bytes() == before
