"""The evaluation metrics against independent computations and known values."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from comfy_harness import write_video

from vidiff_model import VIDiffError
from vidiff_model.metrics import (cdc, colorfulness_per_frame, evaluate_video, psnr_per_frame, ssim_per_frame,
                                  warping_errors)
from vidiff_model.metrics.color import js_divergence
from vidiff_model.video_io import read_video

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _video(seed=0, frames=4, h=32, w=40):
    return torch.rand(frames, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_psnr_and_ssim_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ref = _video(0)
    pred = (ref + 0.05 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    for i in range(ref.shape[0]):
        a, b = pred[i].double().numpy(), ref[i].double().numpy()
        assert float(psnr_per_frame(pred, ref)[i]) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=1), rel=1e-9)
        want = structural_similarity(b, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1, channel_axis=-1)
        assert float(ssim_per_frame(pred, ref)[i]) == pytest.approx(want, abs=1e-6)


def test_identical_videos():
    v = _video(2)
    m = evaluate_video(v, v.clone(), flow=False)
    assert m["psnr"] == math.inf and m["ssim"] == pytest.approx(1.0)
    still = v[:1].repeat(6, 1, 1, 1)
    assert cdc(still) == 0.0


def test_colorfulness_by_hand_and_a_hue_shift():
    frame = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]).unsqueeze(0)  # one red, one blue pixel
    # rg = (255, 0), yb = (127.5, -255): σ_rg = 127.5, σ_yb = 191.25, μ_rg = 127.5, μ_yb = -63.75
    want = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(127.5**2 + 63.75**2)
    assert float(colorfulness_per_frame(frame)[0]) == pytest.approx(want)
    vivid = _video(3)
    gray = vivid.mean(-1, keepdim=True).expand_as(vivid)
    halfway = 0.5 * vivid + 0.5 * gray  # desaturated
    c = [float(colorfulness_per_frame(v).mean()) for v in (vivid, halfway, gray)]
    assert c[0] > c[1] > c[2] == pytest.approx(0.0)


def test_cdc_matches_a_direct_jensen_shannon():
    from scipy.spatial.distance import jensenshannon

    v = _video(4, frames=6)
    q = (v * 255).round().long()
    hist = [[np.bincount(q[i, ..., ch].flatten().numpy(), minlength=256) / q[i, ..., ch].numel() for ch in range(3)]
            for i in range(6)]
    per_d = []
    for d in (1, 2, 4):
        per_d.append(np.mean([jensenshannon(hist[i][ch], hist[i + d][ch]) ** 2 for i in range(6 - d) for ch in range(3)]))
    assert cdc(v) == pytest.approx(float(np.mean(per_d)), rel=1e-9)
    assert float(js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))) == pytest.approx(math.log(2))


def test_warping_error_of_a_translation():
    """A textured image sliding right by 2 px a frame: flow explains it (near zero), frame differences don't."""
    g = torch.Generator().manual_seed(5)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 96, generator=g), 5, 1, 2)[0].permute(1, 2, 0)
    frames = torch.stack([torch.roll(base, shifts=2 * t, dims=1) for t in range(5)])[:, :, 8:88]
    with_flow = float(np.mean(warping_errors(frames)))
    without = float(np.mean(warping_errors(frames, use_flow=False)))
    assert with_flow < 0.01 and without > 4 * with_flow


def test_mismatched_videos_are_named():
    with pytest.raises(VIDiffError, match="reference: 3 frames but the prediction has 4"):
        evaluate_video(_video(0), _video(0, frames=3))
    with pytest.raises(VIDiffError, match="reference: frames are 20x32 but the prediction's are 40x32"):
        evaluate_video(_video(0), _video(0, w=20))
    with pytest.raises(VIDiffError, match="prediction: expected RGB frames"):
        evaluate_video(torch.rand(2, 8, 8))


def test_command_line_on_files_and_folders(tmp_path):
    from PIL import Image

    write_video(tmp_path / "a.mp4", 6, 48, 32)
    frames = read_video(tmp_path / "a.mp4")
    assert frames.shape == (6, 32, 48, 3)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray((f.numpy() * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    images = [Image.fromarray((f.numpy() * 255).round().astype(np.uint8)) for f in frames]
    images[0].save(tmp_path / "a.webp", save_all=True, append_images=images[1:], lossless=True)
    for pred in (folder, tmp_path / "a.webp"):
        out = subprocess.run([sys.executable, "-m", "vidiff_model.evaluate", "--pred", str(pred), "--ref", str(folder),
                              "--task", "recolor", "--json", str(tmp_path / "m.json"), "--csv", str(tmp_path / "m.csv")],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0].startswith("colorfulness")
        metrics = json.loads((tmp_path / "m.json").read_text())
        assert metrics["psnr"] == "inf" and metrics["frames"] == 6
        assert metrics["lpips"].startswith("unavailable") and metrics["clip_text_alignment"].startswith("unavailable")
        assert (tmp_path / "m.csv").read_text().splitlines()[0].startswith("frames,psnr,ssim")
    out = subprocess.run([sys.executable, "-m", "vidiff_model.evaluate", "--pred", str(tmp_path / "a.mp4"),
                          "--ref", str(tmp_path / "nope.mp4")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "ref:" in out.stderr and "does not exist" in out.stderr


def test_clip_scores_from_local_weights(tmp_path):
    from clip_fixtures import save_tiny_clip_model

    from vidiff_model.metrics import CLIPScorer

    save_tiny_clip_model(tmp_path / "clip")
    scorer = CLIPScorer(tmp_path / "clip")
    v = _video(6, frames=3)
    m = evaluate_video(v, clip=scorer, text="the color", flow=False)
    emb = scorer.image_embeddings(v)
    assert m["clip_frame_consistency"] == pytest.approx(float(100 * (emb[0] @ emb[1] + emb[1] @ emb[2]) / 2), rel=1e-5)
    assert -100 <= m["clip_text_alignment"] <= 100
    still = v[:1].repeat(3, 1, 1, 1)
    assert evaluate_video(still, clip=scorer, flow=False)["clip_frame_consistency"] == pytest.approx(100.0, rel=1e-5)
    with pytest.raises(OSError):
        CLIPScorer(tmp_path / "missing")  # never downloaded


def test_lpips_from_local_weights_matches_the_lpips_package(tmp_path):
    """Our LPIPS against the reference implementation (the `lpips` package, with its backbone given the
    same random AlexNet weights: nothing is downloaded)."""
    import lpips as lpips_package
    from metric_fixtures import lpips_heads_file, save_alexnet

    from vidiff_model.metrics import LPIPSScorer
    from vidiff_model.metrics.learned import ALEX_SLICES

    net = save_alexnet(tmp_path / "alexnet.pth")
    heads_file = lpips_heads_file()
    reference = lpips_package.LPIPS(net="alex", pnet_rand=True, model_path=str(heads_file), verbose=False).eval()
    for i, (a, b) in enumerate(ALEX_SLICES):  # a slice of a Sequential keeps the layers' original names
        getattr(reference.net, f"slice{i + 1}").load_state_dict(net.features[a:b].state_dict())
    ours = LPIPSScorer(tmp_path / "alexnet.pth", heads_file)
    pred, ref = _video(7, frames=2, h=64, w=64), _video(8, frames=2, h=64, w=64)
    want = reference(pred.permute(0, 3, 1, 2) * 2 - 1, ref.permute(0, 3, 1, 2) * 2 - 1).flatten().detach()
    torch.testing.assert_close(ours.per_frame(pred, ref), want, rtol=1e-4, atol=1e-6)
    assert float(ours.per_frame(pred, pred).abs().max()) < 1e-6
    m = evaluate_video(pred, ref, lpips=ours, flow=False)
    assert m["lpips"] == pytest.approx(float(want.mean()), rel=1e-4)


def _frechet_by_eigh(fa: torch.Tensor, fb: torch.Tensor) -> float:
    """Independent reference: Tr (Σa Σb)^½ = Tr (Σa^½ Σb Σa^½)^½, both roots of symmetric PSD matrices."""
    ca, cb = np.cov(fa.double().numpy(), rowvar=False), np.cov(fb.double().numpy(), rowvar=False)
    w, v = np.linalg.eigh(ca)
    root_a = (v * np.sqrt(w.clip(min=0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root_a @ cb @ root_a).clip(min=0)).sum()
    mu = (fa.double().mean(0) - fb.double().mean(0)).numpy()
    return float((mu ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * cross)


def test_fid_from_local_weights(tmp_path):
    from metric_fixtures import save_inception

    from vidiff_model.metrics import FIDScorer
    from vidiff_model.metrics.learned import frechet_distance

    save_inception(tmp_path / "inception.pth")
    scorer = FIDScorer(tmp_path / "inception.pth")
    a = _video(9, frames=5, h=48, w=48)
    assert scorer.distance(a, a) == pytest.approx(0.0, abs=1e-3)
    b = (a * 0.3).clamp(0, 1)
    fa, fb = scorer.features(a), scorer.features(b)
    assert frechet_distance(fa, fb) == pytest.approx(_frechet_by_eigh(fa, fb), rel=1e-6)
    # More samples than features takes the sqrtm branch; check it against the same reference.
    g = torch.Generator().manual_seed(1)
    xa, xb = torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(30, 6, generator=g, dtype=torch.float64) * 2 + 1
    assert frechet_distance(xa, xb) == pytest.approx(_frechet_by_eigh(xa, xb), rel=1e-6)
    assert frechet_distance(xa, xa) == pytest.approx(0.0, abs=1e-9)
    assert float(fa.std(0).mean()) > 1e-3, "fixture features collapsed; the test would prove nothing"
    fid = evaluate_video(b, a, fid=scorer, flow=False)["fid"]
    assert fid > 1.0 and fid == pytest.approx(scorer.distance(b, a), rel=1e-6)

    # the command line with the weights file, and a half-given LPIPS pair refused by name
    write_video(tmp_path / "a.mp4", 4, 48, 32)
    out = subprocess.run([sys.executable, "-m", "vidiff_model.evaluate", "--pred", str(tmp_path / "a.mp4"), "--ref",
                          str(tmp_path / "a.mp4"), "--no-flow", "--fid-inception", str(tmp_path / "inception.pth"),
                          "--json", str(tmp_path / "m.json")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "m.json").read_text())["fid"] == pytest.approx(0.0, abs=1e-6)
    out = subprocess.run([sys.executable, "-m", "vidiff_model.evaluate", "--pred", str(tmp_path / "a.mp4"),
                          "--lpips-alexnet", str(tmp_path / "inception.pth")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2 and "--lpips-heads" in out.stderr
