"""A small OpenAI-compatible server on 127.0.0.1 for augmentation tests: POST /v1/chat/completions answers
from a scripted queue, and every request is kept so tests can check what the real `openai` client sent."""

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedLLM:
    def __init__(self) -> None:
        self.script: deque[tuple[int, dict]] = deque()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.base_url = ""

    def answer(self, content, *, prompt_tokens: int = 10, completion_tokens: int = 20) -> None:
        """Queue a 200 answer; `content` is JSON-encoded unless it is already a string."""
        text = content if isinstance(content, str) else json.dumps(content)
        self.script.append((200, _completion(text, prompt_tokens, completion_tokens)))

    def fail(self, status: int, message: str = "try later") -> None:
        kind = "rate_limit_error" if status == 429 else "server_error"
        self.script.append((status, {"error": {"message": message, "type": kind, "code": None}}))

    @property
    def user_messages(self) -> list[str]:
        return [request["messages"][-1]["content"] for request in self.requests]


def _completion(content: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "scripted",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _handler(llm: ScriptedLLM):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            llm.requests.append(json.loads(body))
            llm.headers.append({key.lower(): value for key, value in self.headers.items()})
            status, payload = llm.script.popleft() if llm.script else (500, {"error": {"message": "script ran out"}})
            self._send(status, payload)

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

    return Handler


def scripted_server_start(llm: ScriptedLLM) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve `llm` on a free port of 127.0.0.1; sets llm.base_url."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(llm))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    llm.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return server, thread
