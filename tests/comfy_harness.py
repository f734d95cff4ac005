"""A real ComfyUI 0.3.75 server for integration tests: provisioned by scripts/provision_comfyui.sh,
started in its own process (`main.py --cpu`) on 127.0.0.1, with model folders holding fixture weights
in the host's formats, driven through its HTTP API and websocket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

# File names the README tells users to download; the workflows use them.
MODEL_FILES = {
    "vidiff": "vidiff_sd15.safetensors",
    "checkpoints": "instruct-pix2pix-00-22000.safetensors",
    "animatediff_models": "mm_sd15_v2.safetensors",  # AnimateDiff v2, fp16 (the dialog downloads .safetensors)
    "text_encoders": "clip_l.safetensors",
    "vae": "vae-ft-mse-840000-ema-pruned.safetensors",
    "clip_vision": "clip-vit-large-patch14.safetensors",
    "loras": "sd15_style_lora.safetensors",  # the optional (bypassed) LoRA slot of the recolor template
}
# Files of the templates that need a peer pack (tests/peer_packs.py), under the names IPAdapter_plus's README gives.
PEER_FILES = {"ipadapter": "ip-adapter_sd15.safetensors", "clip_vision_h": "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"}
PEER_TEMPLATES = {"style_ip_adapter": ("ipadapter",),  # template -> the peer packs it needs
                  "mini_long_video_batched": ("videohelpersuite",), "long_video_batched": ("videohelpersuite",)}
EXTRA_FOLDERS = ["vidiff_metrics", "ipadapter"]  # model folders the test server also reads (ipadapter: IPAdapter_plus)
INPUT_FILES = {"video": "vidiff_example.mp4", "mask": "vidiff_example_mask.png", "style": "vidiff_style.png"}
FRAMES, WIDTH, HEIGHT, FPS = 10, 64, 48, 8  # the example video the tests put in ComfyUI's input folder
EXPERIMENTAL = ROOT / "workflows" / "experimental"  # templates kept out of the browser (runnable, tested)
API_ALL = {p.stem: json.loads(p.read_text())
           for p in sorted([*(ROOT / "workflows" / "api").glob("*.json"), *(EXPERIMENTAL / "api").glob("*.json")])}
# The vidiff-mini workflows run the pack's shipped model on its sample clip (tests/test_mini_workflows.py);
# the others name the README's files, which the test server holds as fixture weights.
MINI_API = {k: v for k, v in API_ALL.items() if k.startswith("mini_") and k not in PEER_TEMPLATES}  # plain server
API = {k: v for k, v in API_ALL.items() if k not in MINI_API and k not in PEER_TEMPLATES}  # run on the plain server
UI = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "workflows").glob("*.json"))}  # the browser's
UI_ALL = {**UI, **{p.stem: json.loads(p.read_text()) for p in sorted(EXPERIMENTAL.glob("*.json"))}}
UI_PLAIN = {k: v for k, v in UI_ALL.items() if k.removeprefix("vidiff_") not in PEER_TEMPLATES}  # no peer pack needed


def comfyui_path() -> Path:
    """The provisioned ComfyUI tree (scripts/test.sh exports VIDIFF_COMFYUI; else provision now)."""
    path = os.environ.get("VIDIFF_COMFYUI")
    if not path:
        out = subprocess.run(["bash", str(ROOT / "scripts" / "provision_comfyui.sh")], capture_output=True,
                             text=True, check=True)
        path = out.stdout.strip().splitlines()[-1]
    return Path(path)


def write_model_files(models: Path, full_size_parts: bool = True) -> None:
    """Fixture weights in the host's formats, under the names the workflows use."""
    import fixture_files as ff
    from vidiff_model import VIDiffModel, save_vidiff, tiny_config

    for folder in MODEL_FILES:
        (models / folder).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save_vidiff(VIDiffModel(tiny_config()), models / "vidiff" / MODEL_FILES["vidiff"])
    ff.save_tensors(models / "text_encoders" / MODEL_FILES["text_encoders"],
                    ff.random_tensors({("text_model." + k if not k.startswith("text_model.") else k): s
                                       for k, s in ff.clip_l_text_shapes().items()}, seed=1))
    ff.save_tensors(models / "vae" / MODEL_FILES["vae"], ff.random_tensors(ff.sd_vae_shapes(), seed=2))
    ff.save_tensors(models / "clip_vision" / MODEL_FILES["clip_vision"],
                    ff.random_tensors(ff.clip_vision_vit_l_shapes(), seed=3))
    if full_size_parts:
        # InstructPix2Pix's single file holds its VAE and CLIP-L too: Load Checkpoint gives all three
        ff.save_tensors(models / "checkpoints" / MODEL_FILES["checkpoints"],
                        ff.ldm_checkpoint_tensors(ff.ldm_unet_shapes(in_channels=8), with_vae=True,
                                                  with_text_encoder=True, seed=4))
        ff.save_tensors(models / "loras" / MODEL_FILES["loras"], ff.kohya_lora_tensors(seed=6))
        ff.save_tensors(models / "animatediff_models" / MODEL_FILES["animatediff_models"],
                        ff.motion_module_tensors("v2", seed=5))


def write_video(path: Path, frames: int, width: int, height: int, fps: int = 8) -> None:
    """A small moving-gradient mp4 (h264)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        y, x = np.mgrid[0:height, 0:width]
        for i in range(frames):
            rgb = np.stack([(x * 4 + i * 16) % 256, (y * 4) % 256, np.full_like(x, 128)], -1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def video_info(path: Path) -> tuple[int, int, int, float]:
    """(frames, width, height, fps) by decoding the file."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        return frames, s.width, s.height, float(s.average_rate)


def webp_info(path: Path) -> tuple[int, int, int, list[int]]:
    """(frames, width, height, per-frame durations in ms) of an animated WebP, read from its ANMF chunks."""
    from PIL import Image

    data = path.read_bytes()
    durations, at = [], data.find(b"ANMF")
    while at != -1:
        payload = data[at + 8:]
        durations.append(int.from_bytes(payload[12:15], "little"))
        at = data.find(b"ANMF", at + 8 + int.from_bytes(data[at + 4:at + 8], "little"))
    with Image.open(path) as im:
        return im.n_frames, im.size[0], im.size[1], durations


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ComfyServer:
    """A running ComfyUI with this pack; stop() ends it."""

    workdir: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the server process
    models: Path | None = None  # the model folders (default: workdir/models; a second server may share the first's)
    custom_nodes: Path | None = None  # a second custom_nodes folder (peer packs: tests/peer_packs.py)
    args: list[str] = field(default_factory=list)  # extra command-line arguments of main.py

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> "ComfyServer":
        comfy = comfyui_path()
        models = self.models or self.workdir / "models"
        for d in ("input", "output", "temp", "user"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "extra_model_paths.yaml"
        config.write_text("vidiff_tests:\n  base_path: " + str(models) + "\n"
                          + "".join(f"  {folder}: {folder}\n" for folder in [*MODEL_FILES, *EXTRA_FOLDERS])
                          + (f"  custom_nodes: {self.custom_nodes}\n" if self.custom_nodes else ""))
        self.log = open(self.workdir / "comfyui.log", "w")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # never the pack root (its nodes/)
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", **self.env)
        self.process = subprocess.Popen(
            [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
             "--extra-model-paths-config", str(config), "--input-directory", str(self.workdir / "input"),
             "--output-directory", str(self.workdir / "output"), "--temp-directory", str(self.workdir / "temp"),
             "--user-directory", str(self.workdir / "user"), "--preview-method", "latent2rgb",
             "--disable-auto-launch", *self.args],
            cwd=comfy, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            try:
                self.get("/system_stats")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not start in {timeout} s:\n{self.log_text()[-4000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def log_text(self) -> str:
        return (self.workdir / "comfyui.log").read_text(errors="replace")

    # -- HTTP ---------------------------------------------------------------------------------------
    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
                return r.status, (json.loads(text) if text else {})
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def _history(self, prompt_id: str, timeout: float = 30) -> dict:
        """The prompt's history entry (written just after the success message: poll briefly)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry is not None:
                return entry
            time.sleep(0.1)
        raise TimeoutError(f"no history for prompt {prompt_id}")

    # -- running prompts ----------------------------------------------------------------------------
    def run(self, prompt: dict, timeout: float = 600, on_message=None) -> dict:
        """Queue `prompt`, follow the websocket until it ends; returns a summary:
        {"status": "success" | "error" | "interrupted" | "rejected", "messages": [...], "error": ..., "history": ...}"""
        import websocket

        client_id = uuid.uuid4().hex
        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={client_id}", timeout=timeout)
        try:
            code, body = self.post("/prompt", {"prompt": prompt, "client_id": client_id})
            if code != 200:
                return {"status": "rejected", "code": code, "error": body, "messages": []}
            prompt_id = body["prompt_id"]
            messages = []
            deadline = time.time() + timeout
            while time.time() < deadline:
                raw = ws.recv()
                if isinstance(raw, bytes):
                    continue  # binary preview images
                msg = json.loads(raw)
                messages.append(msg)
                if on_message is not None:
                    on_message(self, msg)
                data = msg.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                kind = msg["type"]
                if kind == "execution_error":
                    return {"status": "error", "error": data, "messages": messages}
                if kind == "execution_interrupted":
                    return {"status": "interrupted", "messages": messages}
                if kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                    return {"status": "success", "history": self._history(prompt_id), "messages": messages}
            raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")
        finally:
            ws.close()


def start_test_server(work: Path) -> ComfyServer:
    """A ComfyUI with every model file the workflows name, the example inputs, and two extra VIDiff files
    for error tests (text-only; truncated)."""
    import fixture_files as ff

    from vidiff_model import VIDiffModel, save_vidiff, tiny_config

    write_model_files(work / "models")
    torch.manual_seed(1)
    vidiff = work / "models" / "vidiff"
    save_vidiff(VIDiffModel(tiny_config(image_instruction=False)), vidiff / "vidiff_text_only.safetensors")
    ff.truncate_file(vidiff / MODEL_FILES["vidiff"], 0.5, vidiff / "broken.safetensors")
    write_input_files(work / "input")
    return ComfyServer(work).start()


def write_input_files(inputs: Path) -> None:
    """The example video, hole mask and style picture the workflows load."""
    inputs.mkdir(parents=True, exist_ok=True)
    write_video(inputs / INPUT_FILES["video"], FRAMES, WIDTH, HEIGHT, FPS)
    hole = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    hole[12:30, 20:44] = 255
    write_png(inputs / INPUT_FILES["mask"], hole)
    write_png(inputs / INPUT_FILES["style"], (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
