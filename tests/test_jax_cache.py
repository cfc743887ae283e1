"""JAX's persistent compilation cache: where it lives, and that a second process loads what the first compiled."""

import json
import os
import subprocess
import sys
from pathlib import Path

from eipviz.jax_cache import CACHE_DIR_VARIABLE, jax_cache_dir
from tests.conftest import ROOT

# Turns the cache on as eipviz does, jit-compiles one small program and reports JAX's cache events.
COMPILE_ONCE = """
import json, jax, numpy as np
from jax import monitoring
from eipviz.jax_cache import use_jax_compilation_cache
events = []
monitoring.register_event_listener(lambda name, **kwargs: events.append(name))
folder = use_jax_compilation_cache()
jax.jit(lambda x: (x * 3.0 + 1.0).sum())(np.arange(7.0)).block_until_ready()
print("RESULT" + json.dumps({"folder": str(folder), "hits": events.count("/jax/compilation_cache/cache_hits"),
                             "minimum": jax.config.jax_persistent_cache_min_compile_time_secs}))
"""


def _compile_once(**env) -> dict:
    """What ``COMPILE_ONCE`` reports in a new process with ``env`` (and no JAX setting of the caller's), plus its
    stderr as ``"stderr"``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("JAX_")}
    result = subprocess.run([sys.executable, "-c", COMPILE_ONCE], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**environment, "KERAS_BACKEND": "jax", **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return {**json.loads(result.stdout.split("RESULT", 1)[1]), "stderr": result.stderr}


def test_the_cache_folder_defaults_to_the_users_cache_and_can_be_moved_or_turned_off(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_DIR_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jax_cache_dir() == tmp_path / "eipviz" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert jax_cache_dir() == Path.home() / ".cache" / "eipviz" / "jax"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    assert jax_cache_dir() == tmp_path / "elsewhere"
    for off in ("off", "OFF", ""):
        monkeypatch.setenv(CACHE_DIR_VARIABLE, off)
        assert jax_cache_dir() is None


def test_a_second_process_loads_the_program_the_first_compiled(tmp_path):
    folder = tmp_path / "cache"
    first = _compile_once(**{CACHE_DIR_VARIABLE: str(folder)})
    assert (first["folder"], first["hits"], first["minimum"]) == (str(folder), 0, 0.0)  # short compiles kept too
    assert any(folder.iterdir())
    assert _compile_once(**{CACHE_DIR_VARIABLE: str(folder)})["hits"] == 1


def test_turned_off_it_writes_nothing_and_a_cache_set_for_jax_itself_is_left_alone(tmp_path):
    assert _compile_once(**{CACHE_DIR_VARIABLE: "off"})["folder"] == "None"
    own = tmp_path / "jax-own"
    found = _compile_once(**{CACHE_DIR_VARIABLE: str(tmp_path / "ours"), "JAX_COMPILATION_CACHE_DIR": str(own)})
    assert found["folder"] == str(own) and found["minimum"] == 1.0  # JAX's own default, untouched
    assert not (tmp_path / "ours").exists()


def test_a_folder_that_cannot_be_made_turns_the_cache_off_with_a_warning_and_compiling_goes_on(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    found = _compile_once(**{CACHE_DIR_VARIABLE: str(tmp_path / "a-file" / "jax")})
    assert found["folder"] == "None" and "JAX's compilation cache is off: cannot create" in found["stderr"]
