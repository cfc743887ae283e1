"""Run a function in a child process under a memory and time limit, so that its crash is not the server's.

A 4 kB uploaded config can ask for work no machine has: a dilation of 10,000 or an upsampling of 1,000 made
TensorFlow abort with ``std::bad_alloc`` on the first image, which ended the whole Streamlit server (a fuzzer's,
2026-11-28). No ``except`` catches that; a child process under ``RLIMIT_AS`` takes it instead. Starting a child
costs the backend's import (2-4 s), so one child serves calls in a row; it ends after running out of memory
(``SpoiledChild``: a backend that failed to allocate can be left broken, and the next load segfaulted), after
``IDLE_SECONDS`` without work, and when its parent ends (its stdin closes).
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
START_SECONDS = 60  # from the start to "ready": Python and this module, before any backend


class ChildFailed(EipvizError):
    """The call crashed the child or ran past ``CALL_SECONDS`` (what it was given is to blame); says how."""


class SpoiledChild(EipvizError):
    """A refusal after which the child is not reused: a backend that failed to allocate can be left broken (the
    next load segfaulted). Other refusals keep it (starting one costs the backend's import)."""


class ChildUnavailable(EipvizError):
    """The child could not start, or failed in its own code: nothing is known of what it was given."""


def limit_within_host(kind: int, soft: int, hard: int) -> None:
    """Set a limit of this process, never above what the host allows (``ulimit -v`` may be lower already)."""
    _, allowed = resource.getrlimit(kind)
    if allowed != resource.RLIM_INFINITY:
        soft = allowed if soft == resource.RLIM_INFINITY else min(soft, allowed)
        hard = allowed if hard == resource.RLIM_INFINITY else min(hard, allowed)
    resource.setrlimit(kind, (soft, hard))


class _Child:
    """The one child of this process, started when first needed; calls take turns (one Streamlit server thread
    per session may ask at once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None

    def call(self, function: Callable, args: list, environment: dict[str, str]) -> str | None:
        """``function(*args)`` in the child (see ``call_limited``)."""
        request = json.dumps({"call": f"{function.__module__}:{function.__qualname__}", "args": args}) + "\n"
        with self.lock:
            for attempt in range(2):
                try:
                    line = self._exchange(request, environment)
                except BaseException:  # a request left in flight would answer the next call: no child is kept
                    self._end(kill=True)
                    raise
                if line:
                    answer = json.loads(line)
                    if "failed" in answer:
                        self._end()
                        raise ChildUnavailable(f"the trial process failed in its own code ({answer['failed']})")
                    if "spoiled" in answer:
                        self._end()
                    return answer["refused"]
                status = self._end()
                if status != 0 or attempt:  # 0: it had just left, idle, as the call came; one retry
                    raise ChildFailed(_ending(status))
        raise AssertionError("unreachable")

    def _exchange(self, request: str, environment: dict[str, str]) -> str:
        """Send ``request`` and read the answer line ("" when the child ended first)."""
        process = self._running(environment)
        assert process.stdin and process.stdout
        try:
            process.stdin.write(request)
            process.stdin.flush()
        except BrokenPipeError:
            return ""
        if not _readable(process.stdout, CALL_SECONDS):
            self._end(kill=True)
            raise ChildFailed(f"did not finish in {CALL_SECONDS} s")
        return process.stdout.readline()

    def _running(self, environment: dict[str, str]) -> subprocess.Popen:
        """The child, started when none runs; it says "ready" once under its limits."""
        if self.process is not None and self.process.poll() is None:
            return self.process
        command = [sys.executable, "-c", "from eipviz.limited_child import serve; serve()"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, **environment},
                                        cwd=Path(__file__).resolve().parent.parent)
        threading.Thread(target=self.process.wait, daemon=True).start()  # reaped when it leaves idle, not later
        assert self.process.stdout
        if not (_readable(self.process.stdout, START_SECONDS) and self.process.stdout.readline() == "ready\n"):
            status = self._end(kill=True)
            raise ChildUnavailable(f"the trial process could not start ({_ending(status)}; the server's log "
                                   f"says why)")
        return self.process

    def _end(self, kill: bool = False) -> int | None:
        """Wait for the child to leave (killed first when ``kill``); its exit status. Its stdin is closed: an idle
        child leaves at once."""
        process, self.process = self.process, None
        if process is None:
            return None
        if kill:
            process.kill()
        try:
            assert process.stdin
            process.stdin.close()
        except BrokenPipeError:  # unsent bytes of a child that is gone
            pass
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def _readable(stream, seconds: float) -> bool:
    """Whether ``stream`` has input within ``seconds`` (poll: select fails on descriptors past 1,023)."""
    poller = select.poll()
    poller.register(stream, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


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
    the child crashed, ran out of memory or ran past ``CALL_SECONDS``, and ``ChildUnavailable`` when the child
    could not start or ``function`` raised anything else (a bug). ``environment`` is added to the child's when
    it starts.
    """
    return _CHILD.call(function, list(args), environment or {})


def serve() -> None:
    """The child's loop: a JSON request per line on stdin, a JSON answer per line on the real stdout."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints of Keras and its backends go to stderr, never into the answers
    limit_within_host(resource.RLIMIT_AS, MEMORY_BYTES, MEMORY_BYTES)
    print("ready", file=answers, flush=True)
    while _readable(sys.stdin, IDLE_SECONDS):
        line = sys.stdin.readline()
        if not line:  # the parent ended
            return
        request = json.loads(line)
        used = int(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
        limit_within_host(resource.RLIMIT_CPU, used + CALL_CPU_SECONDS, resource.RLIM_INFINITY)
        module, name = request["call"].split(":")
        answer: dict = {"refused": None}
        try:
            getattr(importlib.import_module(module), name)(*request["args"])
        except SpoiledChild as error:
            answer = {"refused": str(error), "spoiled": True}
        except EipvizError as error:
            answer["refused"] = str(error)
        except MemoryError:
            answer = {"refused": f"needs more than {MEMORY_BYTES // 2**30} GB of memory", "spoiled": True}
        except Exception as error:  # an import or the function's own bug: an answer, not a silent exit
            answer = {"failed": f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"}
        print(json.dumps(answer), file=answers, flush=True)
        if "spoiled" in answer or "failed" in answer:
            return
