"""The library's own transformers-based CLIP encoders, from local folders only."""

import pytest
import torch
from clip_fixtures import tiny_clip_tokenizer
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

from vidiff_model import InstructionError
from vidiff_model.clip_encoders import CLIPImageInstructionEncoder, CLIPTextInstructionEncoder, clip_preprocess


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    """A tiny CLIP tokenizer (bytes plus a few merges) and a tiny CLIPTextModel, saved like an SD repo."""
    root = tmp_path_factory.mktemp("clip_text")
    tokenizer = tiny_clip_tokenizer()
    tokens = tokenizer.get_vocab()
    tokenizer.save_pretrained(root / "tokenizer")
    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=len(tokens), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=77,
                            bos_token_id=len(tokens) - 2, eos_token_id=len(tokens) - 1, pad_token_id=len(tokens) - 1)
    CLIPTextModel(config).save_pretrained(root / "text_encoder")
    return root


def test_text_encoder_gives_77_hidden_states(text_folder):
    enc = CLIPTextInstructionEncoder.from_pretrained(text_folder / "text_encoder", tokenizer_path=text_folder / "tokenizer")
    hidden = enc.encode(["Convert the grayscale clip into a colorful masterpiece", ""])
    assert hidden.shape == (2, 77, 32)
    assert not torch.allclose(hidden[0], hidden[1])
    ids = enc.tokenizer("", padding="max_length", max_length=77, return_tensors="pt").input_ids
    direct = enc.text_model(input_ids=ids).last_hidden_state
    torch.testing.assert_close(hidden[1:], direct)


def test_text_encoder_refuses_long_instruction(text_folder):
    enc = CLIPTextInstructionEncoder.from_pretrained(text_folder / "text_encoder", tokenizer_path=text_folder / "tokenizer")
    enc.encode("a " * 75)  # 75 words + start + end = 77 tokens: fits
    with pytest.raises(InstructionError, match="78 tokens, but CLIP takes at most 77"):
        enc.encode("a " * 76)


def test_image_encoder_and_preprocess(tmp_path):
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=28, patch_size=14, projection_dim=768)
    CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "vision")
    enc = CLIPImageInstructionEncoder.from_pretrained(tmp_path / "vision")
    images = torch.rand(3, 40, 64, 3)
    emb = enc.encode(images)
    assert emb.shape == (3, 768)
    pixels = clip_preprocess(images, 28)
    assert pixels.shape == (3, 3, 28, 28)
    flat = clip_preprocess(torch.full((1, 50, 30, 3), 0.48145466), 28)
    assert flat[0, 0].abs().max() < 1e-4  # mean colour maps to 0 in the red channel
    with pytest.raises(InstructionError, match="RGB images"):
        clip_preprocess(torch.rand(1, 3, 32, 32))


def test_missing_local_folder_is_not_downloaded(tmp_path):
    with pytest.raises(OSError):
        CLIPTextInstructionEncoder.from_pretrained(tmp_path / "nothing-here")
