"""Run a function in a child process under a memory and time limit, so that its crash is not the server's.

A 4 kB uploaded config can ask for work no machine has: a dilation of 10,000 or an upsampling of 1,000 made
TensorFlow abort with ``std::bad_alloc`` on the first image, which ended the whole Streamlit server (a fuzzer's,
2026-11-28). No ``except`` catches that; a child process under ``RLIMIT_AS`` takes it instead. Starting a child
costs the backend's import (2-4 s), so one child serves calls in a row; it ends after a refusal (a backend that
failed to allocate can be left broken: the next load segfaulted), after ``IDLE_SECONDS`` without work, and when
its parent ends (its stdin closes).
"""

import importlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from eipviz.errors import EipvizError

CALL_SECONDS = 120  # wall time of one call; a 300 MB model's load, image and Grad-CAM take a few seconds
CALL_CPU_SECONDS = 4 * CALL_SECONDS  # the kernel's backstop for a child spinning after its parent died
MEMORY_BYTES = 8 * 2**30  # address space, not use: the TensorFlow child reserves about 3 GB at rest
IDLE_SECONDS = 600


class ChildFailed(EipvizError):
    """The child ended or ran past ``CALL_SECONDS`` without answering; the message says how."""


def limit_within_host(kind: int, soft: int, hard: int) -> None:
    """Set a limit of this process, never above what the host allows (``ulimit -v`` may be lower already)."""
    _, allowed = resource.getrlimit(kind)
    if allowed != resource.RLIM_INFINITY:
        soft, hard = min(soft, allowed), min(hard, allowed)
    resource.setrlimit(kind, (soft, hard))


class _Child:
    """The one child of this process, started when first needed; calls take turns (one Streamlit server thread
    per session may ask at once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None

    def call(self, function: Callable, args: list, environment: dict[str, str]) -> str | None:
        """``function(*args)`` in the child: None when it returned, the message of the ``EipvizError`` it raised,
        or ``ChildFailed`` when the child died or hung (it is killed then)."""
        request = json.dumps({"call": f"{function.__module__}:{function.__qualname__}", "args": args}) + "\n"
        with self.lock:
            for attempt in range(2):
                process = self._running(environment)
                try:
                    assert process.stdin and process.stdout
                    process.stdin.write(request)
                    process.stdin.flush()
                    ready, _, _ = select.select([process.stdout], [], [], CALL_SECONDS)
                    line = process.stdout.readline() if ready else None
                except BrokenPipeError:
                    line = ""
                if line is None:
                    self._end(kill=True)
                    raise ChildFailed(f"did not finish in {CALL_SECONDS} s")
                if line:
                    answer = json.loads(line)
                    if answer["refused"] is not None:
                        self._end()
                    return answer["refused"]
                status = self._end()
                if status != 0 or attempt:  # 0: it had just left, idle, as the call came; one retry
                    raise ChildFailed(_ending(status))
        raise AssertionError("unreachable")

    def _running(self, environment: dict[str, str]) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            command = [sys.executable, "-c", "from eipviz.limited_child import serve; serve()"]
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                            env={**os.environ, **environment},
                                            cwd=Path(__file__).resolve().parent.parent)
        return self.process

    def _end(self, kill: bool = False) -> int | None:
        """Wait for the child to leave (killed first when ``kill``); its exit status."""
        process, self.process = self.process, None
        if process is None:
            return None
        if kill:
            process.kill()
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def _ending(status: int | None) -> str:
    """How a child that gave no answer ended, in words."""
    if status is not None and status < 0:
        name = signal.Signals(-status).name
        why = {"SIGABRT": "aborted, as TensorFlow does when an allocation fails",
               "SIGKILL": "killed, as the kernel does when memory runs out",
               "SIGSEGV": "crashed", "SIGXCPU": "over its CPU time"}.get(name, "stopped")
        return f"ended by {name}: {why}"
    return f"exited with status {status} before answering"


_CHILD = _Child()


def call_limited(function: Callable, *args, environment: dict[str, str] | None = None) -> str | None:
    """Run module-level ``function(*args)`` (JSON arguments) in the child under the limits.

    Returns None when it returned and the message of the ``EipvizError`` it raised; raises ``ChildFailed`` when
    the child crashed, ran out of memory or ran past ``CALL_SECONDS``. ``environment`` is added to the child's
    when it starts.
    """
    return _CHILD.call(function, list(args), environment or {})


def serve() -> None:
    """The child's loop: a JSON request per line on stdin, a JSON answer per line on the real stdout."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints of Keras and its backends go to stderr, never into the answers
    limit_within_host(resource.RLIMIT_AS, MEMORY_BYTES, MEMORY_BYTES)
    while select.select([sys.stdin], [], [], IDLE_SECONDS)[0]:
        line = sys.stdin.readline()
        if not line:  # the parent ended
            return
        request = json.loads(line)
        used = int(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
        limit_within_host(resource.RLIMIT_CPU, used + CALL_CPU_SECONDS, resource.RLIM_INFINITY)
        module, name = request["call"].split(":")
        try:
            getattr(importlib.import_module(module), name)(*request["args"])
            refused = None
        except EipvizError as error:
            refused = str(error)
        except MemoryError:
            refused = f"needs more than {MEMORY_BYTES // 2**30} GB of memory"
        except Exception as error:  # the function's own bug: an answer, not a silent exit
            refused = f"failed ({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})"
        print(json.dumps({"refused": refused}), file=answers, flush=True)
        if refused is not None:
            return
