"""The memory guard: a run starts only when the machine has the memory it needs.

The need is a heuristic, documented here and in the README: a training
process here peaked at 1.3-2.6 GB (NOTES: TensorFlow ~590 MB, the dataset,
the traced graph), so it is a fixed base plus what grows with the model and
the batch:

    needed MB = 1,300 + 16 B x parameters (weights, gradients, two optimizer slots)
                      + 1.6 kB x batch size x input values (activations kept for backpropagation)

which gives about 1.4 GB for mnist14k and 2.1 GB for resnet18 at batch 128.
Free memory is the kernel's ``MemAvailable`` (``/proc/meminfo``).
"""

from pathlib import Path

from eipviz.errors import EipvizError

BASE_MB = 1300
BYTES_PER_PARAMETER = 16
ACTIVATION_BYTES_PER_INPUT_VALUE = 1600
PROC = Path("/proc")
MEMINFO = PROC / "meminfo"


def training_memory_mb(parameters: int, batch_size: int, input_values: int) -> float:
    """Estimated peak memory in MB of a training process (see the module docstring)."""
    return (BASE_MB + BYTES_PER_PARAMETER * parameters / 1e6
            + ACTIVATION_BYTES_PER_INPUT_VALUE * batch_size * input_values / 1e6)


def available_memory_mb() -> float | None:
    """``MemAvailable`` in MB, or None where the kernel does not say (then nothing is refused)."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_memory_mb(pid: int | None) -> float:
    """The resident memory (``VmRSS``) of process ``pid`` in MB; 0 when there is no such process to read."""
    if not pid:
        return 0.0
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return 0.0
    return 0.0


def memory_shortfall(what: str, needed_mb: float | None, available_mb: float | None) -> str | None:
    """Why ``what`` must not start (needs more than is available), or None when it fits or is unknown."""
    if needed_mb is None or available_mb is None or needed_mb <= available_mb:
        return None
    return (f"Not enough free memory to start {what}: it needs about {needed_mb / 1024:.1f} GB and "
            f"{max(available_mb, 0) / 1024:.1f} GB is free. Stop another run or close other programs, "
            f"then start it again.")


def check_memory(what: str, needed_mb: float | None, available_mb: float | None = None) -> None:
    """Raise ``EipvizError`` when ``needed_mb`` exceeds the free memory (``available_memory_mb()`` by default)."""
    reason = memory_shortfall(what, needed_mb, available_memory_mb() if available_mb is None else available_mb)
    if reason:
        raise EipvizError(reason)
