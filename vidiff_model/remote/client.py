"""A client for a ComfyUI server's HTTP API and websocket: upload an input file, queue a prompt, follow it to the
end, download what it saved. Standard library HTTP (urllib); the websocket through `websocket-client`.
Never imports ComfyUI or torch."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PromptFailed, RemoteError, ServerUnavailable
from .model_files import ServerFolders, combo_options
from .progress import ProgressLine
from .workflow import Prompt, describe

SILENCE_CHECK_S = 5.0  # with no websocket message for this long, ask the server whether the prompt still exists


@dataclass
class RunResult:
    """A finished prompt: its id, the files downloaded, the nodes' text outputs (e.g. metrics), its duration."""

    prompt_id: str
    files: list[Path] = field(default_factory=list)
    by_node: dict[str, list[Path]] = field(default_factory=dict)  # node id -> the files it saved, in order
    texts: dict[str, list[str]] = field(default_factory=dict)  # node description -> texts
    seconds: float = 0.0


class ComfyClient:
    """One ComfyUI server, addressed by its URL (e.g. http://127.0.0.1:8188)."""

    def __init__(self, url: str, timeout: float = 60.0):
        url = url.strip().rstrip("/")
        if "://" not in url:
            url = "http://" + url
        self.url = url
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex
        self._object_info: dict[str, dict[str, Any] | None] = {}

    # -- HTTP ---------------------------------------------------------------------------------------
    def request(self, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of a GET (no body) or POST; no server at the URL -> ServerUnavailable."""
        req = urllib.request.Request(self.url + path, data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
                raise ServerUnavailable(f"no ComfyUI server at {self.url} ({reason})") from None
            raise ServerUnavailable(f"the ComfyUI server at {self.url} did not answer {path.split('?')[0]} "
                                    f"({reason})") from None

    def get_json(self, path: str) -> Any:
        status, data = self.request(path)
        if status != 200:
            raise RemoteError(f"GET {self.url}{path} answered {status}: {data[:200].decode(errors='replace')}")
        return json.loads(data)

    def post_json(self, path: str, body: dict) -> tuple[int, Any]:
        status, data = self.request(path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        try:
            return status, json.loads(data) if data else {}
        except json.JSONDecodeError:
            return status, {"error": data[:500].decode(errors="replace")}

    def check(self) -> dict:
        """The server's /system_stats; an error if the URL does not answer like ComfyUI."""
        status, data = self.request("/system_stats")
        try:
            stats = json.loads(data) if status == 200 else None
        except json.JSONDecodeError:
            stats = None
        if not isinstance(stats, dict) or "system" not in stats:
            raise ServerUnavailable(f"{self.url} answers, but not as a ComfyUI server (GET /system_stats: {status})")
        return stats

    def input_specs(self, class_type: str) -> dict[str, Any] | None:
        """Every input a node type takes (required and optional) -> its /object_info spec; None if unknown."""
        if class_type not in self._object_info:
            status, data = self.request("/object_info/" + urllib.parse.quote(class_type, safe=""))
            info = json.loads(data).get(class_type) if status == 200 else None
            spec = (info or {}).get("input", {})
            self._object_info[class_type] = {**spec.get("required", {}), **spec.get("optional", {})} if info else None
        return self._object_info[class_type]

    def input_names(self, class_type: str) -> list[str] | None:
        """Every input a node type takes (required and optional), from /object_info; None if unknown."""
        specs = self.input_specs(class_type)
        return None if specs is None else list(specs)

    def input_options(self, class_type: str, name: str) -> list[str] | None:
        """The server's choices for a list input (the files a loader offers); None for other inputs."""
        return combo_options((self.input_specs(class_type) or {}).get(name))

    def folders(self) -> ServerFolders | None:
        """Where the server keeps its files: the pack's GET /vidiff/folders (model folders, input folder, the pack's
        folder, the server's Python), or the host's GET /experiment/models (model folders only); None if neither."""
        status, data = self.request("/vidiff/folders")
        try:
            if status == 200:
                found = json.loads(data)
                return ServerFolders(found["models"], found["input"], found["pack"], found["python"])
            status, data = self.request("/experiment/models")
            if status == 200:
                return ServerFolders({f["name"]: f["folders"] for f in json.loads(data)})
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
        return None

    def upload(self, path: Path, name: str | None = None, overwrite: bool = False) -> str:
        """Uploads a file into the server's input folder (POST /upload/image takes any file); returns its name
        there. The same content under the same name is not stored twice; `overwrite` replaces a file of that name
        (`name`, default the file's own) instead of storing the new content beside it as "name (1).ext"."""
        boundary = uuid.uuid4().hex
        name = (name or path.name).replace('"', "_")
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n")
        fields = {"type": "input", **({"overwrite": "true"} if overwrite else {})}
        tail = "".join(f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}"
                       for key, value in fields.items()) + f"\r\n--{boundary}--\r\n"
        body = head.encode() + path.read_bytes() + tail.encode()
        content_type = f"multipart/form-data; boundary={boundary}"
        status, data = self.request("/upload/image", body, {"Content-Type": content_type})
        if status != 200:
            answer = data[:200].decode(errors="replace")
            raise RemoteError(f"uploading {path} to {self.url} failed ({status}: {answer})")
        info = json.loads(data)
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    def queue(self, prompt: Prompt) -> str:
        """POST /prompt; the prompt id, or PromptFailed with the server's validation errors in one line."""
        status, body = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id})
        if status == 200 and "prompt_id" in body:
            return str(body["prompt_id"])
        raise PromptFailed("the server rejected the prompt: " + rejection_text(prompt, body), status="rejected")

    def cancel(self, prompt_id: str) -> None:
        """Interrupts the prompt if it is running and removes it if it waits in the queue."""
        self.post_json("/interrupt", {"prompt_id": prompt_id})
        self.post_json("/queue", {"delete": [prompt_id]})

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json("/history/" + urllib.parse.quote(prompt_id)).get(prompt_id)

    def in_queue(self, prompt_id: str) -> bool:
        queue = self.get_json("/queue")
        return any(item[1] == prompt_id for key in ("queue_running", "queue_pending") for item in queue.get(key, []))

    def download(self, item: dict, out_dir: Path) -> Path:
        """Saves one output file ({filename, subfolder, type}) under out_dir/subfolder/."""
        query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
        status, data = self.request("/view?" + query)
        if status != 200:
            raise RemoteError(f"downloading {item['filename']} from {self.url} failed ({status})")
        dest = out_dir / item.get("subfolder", "") / Path(item["filename"]).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    # -- running ------------------------------------------------------------------------------------
    def connect(self):
        """The websocket (/ws?clientId=...) on which the server reports this client's prompts."""
        try:
            import websocket
        except ImportError:
            raise RemoteError("the client needs the websocket-client package: pip install websocket-client") from None
        ws_url = "ws" + self.url[4:] + "/ws?clientId=" + self.client_id
        try:
            return websocket.create_connection(ws_url, timeout=self.timeout)
        except (OSError, websocket.WebSocketException) as e:
            raise ServerUnavailable(f"no ComfyUI server at {self.url} (websocket: {e})") from None

    def run(self, prompt: Prompt, out_dir: Path, progress: ProgressLine | None = None,
            timeout: float | None = None) -> RunResult:
        """Queues `prompt`, follows it to the end (under a Meta Batch Manager, through every batch VideoHelperSuite
        queues after it), downloads every file it saved into out_dir."""
        progress = progress or ProgressLine(enabled=False)
        start = time.monotonic()
        ws = self.connect()  # before queueing, so no message is missed
        prompt_ids = [self.queue(prompt)]
        try:
            while True:
                try:
                    self._follow(ws, prompt, prompt_ids[-1], progress, timeout)
                except KeyboardInterrupt:
                    self.cancel(prompt_ids[-1])
                    raise
                following = self._next_meta_batch(prompt, prompt_ids)
                if following is None:
                    break
                progress.note(f"meta batch {len(prompt_ids)} done; VideoHelperSuite queued the next one")
                prompt_ids.append(following)
        finally:
            ws.close()
        result = RunResult(prompt_ids[-1], seconds=time.monotonic() - start)
        for prompt_id in prompt_ids:  # a meta batch's files: the last batch's Video Combine has the whole video
            self._collect(self._wait_history(prompt_id), prompt, out_dir, result)
        return result

    def _collect(self, entry: dict, prompt: Prompt, out_dir: Path, result: RunResult) -> None:
        for node_id, output in entry.get("outputs", {}).items():
            for values in output.values():
                for item in values if isinstance(values, list) else []:
                    if isinstance(item, dict) and "filename" in item:
                        path = self.download(item, out_dir)
                        if path not in result.files:
                            result.files.append(path)
                            result.by_node.setdefault(node_id, []).append(path)
            if output.get("text") and node_id in prompt:
                result.texts[describe(prompt, node_id)] = [str(t) for t in output["text"]]

    def _next_meta_batch(self, prompt: Prompt, seen: list[str], wait: float = 2.0) -> str | None:
        """Under VideoHelperSuite's Meta Batch Manager, the prompt it queued for the next batch (the same prompt and
        client, queued by the server while this batch's Video Combine ran); None once the video is done."""
        if not any(node.get("class_type") == "VHS_BatchManager" for node in prompt.values()):
            return None
        deadline = time.monotonic() + wait
        while True:
            queue = self.get_json("/queue")
            for item in queue.get("queue_running", []) + queue.get("queue_pending", []):
                extra = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
                if item[1] not in seen and extra.get("client_id") == self.client_id:
                    return item[1]
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)

    def _follow(self, ws, prompt: Prompt, prompt_id: str, progress: ProgressLine, timeout: float | None) -> None:
        """Reads the websocket until the prompt ends; raises PromptFailed unless it succeeded."""
        import websocket

        deadline = None if not timeout else time.monotonic() + timeout
        mine = False  # between our execution_start and the end every broadcast vidiff.progress is ours
        ws.settimeout(SILENCE_CHECK_S)
        while deadline is None or time.monotonic() < deadline:
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                if self._ended_unseen(prompt, prompt_id):
                    return
                continue
            except (OSError, websocket.WebSocketException):
                raise ServerUnavailable(f"lost the connection to {self.url} while prompt {prompt_id} ran") from None
            if not isinstance(raw, str):
                continue  # binary preview images
            msg = json.loads(raw)
            kind, data = msg.get("type"), msg.get("data") or {}
            if kind == "status" and not mine:
                remaining = data.get("status", {}).get("exec_info", {}).get("queue_remaining")
                if remaining:
                    progress.queued(int(remaining))
                continue
            if kind == "vidiff.progress":
                if mine:
                    progress.clip_step(data["clip"], data["clips"], data["step"], data["steps"])
                continue
            if data.get("prompt_id") != prompt_id:
                continue
            if kind == "execution_start":
                mine = True
            elif kind == "executing" and data.get("node") is not None:
                mine = True
                node = str(data["node"])
                progress.node(describe(prompt, node) if node in prompt else node)
            elif kind == "progress":
                node = str(data.get("node"))
                if node in prompt and prompt[node]["class_type"] == "VIDiffSampler":
                    continue  # its vidiff.progress says more (clip k/n)
                progress.steps(describe(prompt, node) if node in prompt else node, int(data["value"]), int(data["max"]))
            elif kind in ("execution_error", "execution_interrupted"):
                raise ended_badly(prompt, prompt_id, kind, data)
            elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                return
        self.cancel(prompt_id)
        raise PromptFailed(f"prompt {prompt_id} did not finish in {timeout:g} s; cancelled it", prompt_id,
                           status="timeout")

    def _ended_unseen(self, prompt: Prompt, prompt_id: str) -> bool:
        """After a silence: False if the prompt waits or runs, True if it succeeded unseen; raises if it failed
        unseen or vanished from the queue (deleted by someone)."""
        for _ in range(2):
            entry = self.history(prompt_id)
            if entry is not None:
                status = entry.get("status", {})
                if status.get("status_str") == "success":
                    return True
                for kind, data in status.get("messages", []):  # the end messages, as the websocket sent them
                    if kind in ("execution_error", "execution_interrupted"):
                        raise ended_badly(prompt, prompt_id, kind, data)
                raise PromptFailed(f"prompt {prompt_id} ended: {status.get('status_str', 'unknown status')}",
                                   prompt_id)
            if self.in_queue(prompt_id):
                return False
            time.sleep(0.5)  # it may have left the queue just before its history was written
        raise PromptFailed(f"prompt {prompt_id} was deleted from the server's queue before it ran", prompt_id,
                           status="deleted")

    def _wait_history(self, prompt_id: str, timeout: float = 30.0) -> dict:
        """The history entry (written just after the success message: poll briefly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry is not None:
                return entry
            time.sleep(0.1)
        raise RemoteError(f"prompt {prompt_id} finished but the server has no history for it")


def rejection_text(prompt: Prompt, body: dict) -> str:
    """One line from a POST /prompt 400 answer: the error, then each node's errors with node and input named."""
    error = body.get("error")
    parts = [(error.get("message") or error.get("type") or "") if isinstance(error, dict) else str(error or "")]
    for node_id, info in (body.get("node_errors") or {}).items():
        where = describe(prompt, str(node_id)) if str(node_id) in prompt else f"{node_id} ({info.get('class_type')})"
        for err in info.get("errors", []):
            name = (err.get("extra_info") or {}).get("input_name")
            details = err.get("details") or ""
            text = err.get("message", "")
            if details and details not in text and details != name:
                text += f": {details}"
            parts.append(f"node {where}" + (f" input {name}" if name else "") + f": {text}")
    if isinstance(error, dict) and error.get("details") and not body.get("node_errors"):
        parts[0] += f": {error['details']}"
    return "; ".join(p.strip().replace("\n", " ") for p in parts if p.strip()) or json.dumps(body)[:500]


def execution_error_text(prompt: Prompt, data: dict) -> str:
    """One line from an execution_error message: node, exception type and first line of its message."""
    node = str(data.get("node_id"))
    where = describe(prompt, node) if node in prompt else f"{node} ({data.get('node_type')})"
    message = str(data.get("exception_message", "")).strip().splitlines()
    kind = str(data.get("exception_type", "error")).rsplit(".", 1)[-1]
    return f"node {where} failed: {kind}: {message[0] if message else ''}".rstrip(": ")


def ended_badly(prompt: Prompt, prompt_id: str, kind: str, data: dict) -> PromptFailed:
    """The error for an execution_error or execution_interrupted message (from the websocket or the history)."""
    if kind == "execution_error":
        return PromptFailed(execution_error_text(prompt, data), prompt_id)
    node = str(data.get("node_id"))
    where = f" at node {describe(prompt, node)}" if node in prompt else ""
    return PromptFailed(f"prompt {prompt_id} was interrupted{where}", prompt_id, status="interrupted")
