"""A tiny CLIP tokenizer and model, made at test time (no download)."""

from __future__ import annotations

from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from vidiff_model.training.demo import byte_chars


def tiny_clip_tokenizer() -> CLIPTokenizer:
    """Byte-level BPE over the 256 byte characters plus a few merges and CLIP's special tokens."""
    chars = byte_chars()
    merges = [("t", "h"), ("th", "e</w>"), ("c", "o"), ("co", "l")]
    tokens = chars + [c + "</w>" for c in chars] + [a + b for a, b in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges)


def save_tiny_clip_model(path) -> None:
    """A tiny transformers CLIPModel (text + vision) with its tokenizer, in one folder."""
    tokenizer = tiny_clip_tokenizer()
    vocab = len(tokenizer.get_vocab())
    config = CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=vocab - 2,
                         eos_token_id=vocab - 1, pad_token_id=vocab - 1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=28, patch_size=14),
        projection_dim=16)
    CLIPModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
