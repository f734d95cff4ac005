"""The host's own SD-1.5-family UNet model for an LDM-layout state dict of any size (the host's checkpoint
detection only knows the published sizes; VIDiff checkpoints and test models come in others)."""

from __future__ import annotations

import comfy.model_base
import comfy.model_detection
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models
import torch

from ..vidiff_model.errors import VIDiffError


def host_unet_model(unet_state: dict[str, torch.Tensor], *, num_heads: int = 8, v_prediction: bool = False,
                    dtype: torch.dtype | None = None, name: str = "unet"):
    """A host ModelPatcher holding an InstructPix2Pix-type (8 input channels) or SD-1.5-type UNet.

    Args:
        unet_state: LDM names without a prefix (`input_blocks.0.0.weight`, ...).
        num_heads: spatial attention heads at every level (SD-1.5: 8).
        v_prediction: the model predicts v (a VIDiff checkpoint trained so) instead of ε.
        dtype: weight dtype; None lets the host choose for its device (as its checkpoint loader does).
    """
    config = comfy.model_detection.detect_unet_config(unet_state, "")
    if config is None or "context_dim" not in config:
        raise VIDiffError(f"{name}: not an LDM UNet (no input_blocks.*.1.transformer_blocks.*.attn2)")
    ip2p = config.get("in_channels") == 8
    model_config = (comfy.supported_models.SD15_instructpix2pix if ip2p else comfy.supported_models.SD15)(config)
    model_config.unet_config.update(num_heads=num_heads, num_head_channels=-1)
    load_device = comfy.model_management.get_torch_device()
    parameters = sum(t.numel() for t in unet_state.values())
    if dtype is None:
        dtype = comfy.model_management.unet_dtype(model_params=parameters,
                                                  supported_dtypes=model_config.supported_inference_dtypes)
    manual_cast = comfy.model_management.unet_manual_cast(dtype, load_device, model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(dtype, manual_cast)
    model_type = comfy.model_base.ModelType.V_PREDICTION if v_prediction else comfy.model_base.ModelType.EPS
    cls = comfy.model_base.SD15_instructpix2pix if ip2p else comfy.model_base.BaseModel
    model = cls(model_config, model_type=model_type, device=comfy.model_management.unet_offload_device())
    model.load_model_weights(unet_state, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device,
                                            offload_device=comfy.model_management.unet_offload_device())
