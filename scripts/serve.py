"""``make run``: warm up once, then serve ``app.py`` with Streamlit in this same process.

``streamlit run`` imports nothing until a browser connects, so the first visitor
waited for TensorFlow, pandas and Plotly to import (about 5 s here) on top of
the page itself. Here that happens while the server starts, together with
TensorFlow's first traced call (about 0.2 s) and the test images the
explanation pages open on. Every shipped model is then loaded into the pages'
own model cache and its default Grad-CAM traced (about 4 s for all five), so
the first gallery of any shipped model skips its 0.5-1.3 s of load and trace.
Last, all of that is frozen out of the garbage collector's scans (``gc.freeze``),
which Streamlit runs twice after every page run.
Every argument is passed to ``streamlit run app.py``
as it is (``scripts/serve.py --server.port 8600``), except ``--viewer``, which
serves the read-only viewer mode (``EIPVIZ_MODE=viewer``), and ``--no-preload``,
which skips loading the shipped models (a server for the Train or Curves page
only starts with about 5 s less CPU; the first gallery of each model then
loads it). The server listens
on 127.0.0.1 only (``.streamlit/config.toml``) unless given
``--server.address 0.0.0.0``.
"""

import gc
import os
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamlit.web import cli as streamlit_cli  # noqa: E402

from eipviz.images import MAX_IMAGE_BYTES  # noqa: E402
from eipviz.quiet import import_keras_quietly  # noqa: E402


def warm_up() -> None:
    """Import what the pages import, run one tiny classifier through TensorFlow, read the test splits."""
    import keras
    import numpy as np
    import pandas  # noqa: F401  (what the pages import on their first run)
    import plotly.graph_objects  # noqa: F401

    import eipviz.explain.faithfulness  # noqa: F401
    import eipviz.explain.gallery  # noqa: F401
    import eipviz.explain.predict  # noqa: F401
    import eipviz.explain.sanity  # noqa: F401  (scipy.stats: 0.45 s of the cold Misclassified page)
    import eipviz.loading  # noqa: F401
    import eipviz.tables  # noqa: F401
    import eipviz.training.launcher  # noqa: F401
    from eipviz.classifier import Classifier
    from eipviz.data import CLASS_NAMES, load_test_split
    from eipviz.errors import EipvizError

    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(2, 3, activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    tiny = Classifier(keras.Model(inputs, outputs), "warm-up", "unit_scale", ("a", "b"), None, "features", "warm-up")
    images = np.zeros((2, 8, 8, 3), np.uint8)
    tiny.probabilities(images)
    tiny.cams(images)
    # The sanity check clones the model: under JAX, Keras' serialisation then imports TensorFlow when it is
    # installed, 2.4 s of the first check (a helper's profile, 2026-11-28); now at start-up.
    keras.models.clone_model(tiny.model)
    for dataset in CLASS_NAMES:
        try:
            load_test_split(dataset)  # cached in this process; the pages read the same arrays
        except EipvizError:
            pass  # the page that needs it says what is missing


def preload_shipped_models() -> None:
    """Put every shipped model in the pages' bounded model cache, its default Grad-CAM traced on two test images."""
    import logging

    from app_pages.common import cached_zoo_model
    from eipviz.errors import EipvizError
    from eipviz.evaluation import dataset_test_split
    from eipviz.weights import shipped_models

    # Outside a browser session Streamlit warns that its spinner has no page to draw on, and TensorFlow that
    # several functions were traced: both are expected here.
    quieted = [logging.getLogger(name) for name in ("streamlit.runtime.scriptrunner_utils.script_run_context",
                                                      "tensorflow")]
    levels = [logger.level for logger in quieted]
    for logger in quieted:
        logger.setLevel(logging.ERROR)
    for name in shipped_models():
        try:
            classifier = cached_zoo_model(name)
            images, _ = dataset_test_split(classifier)
            classifier.cams(images[:2])
        except EipvizError:
            continue  # the page that opens it says what is wrong
    for logger, level in zip(quieted, levels):
        logger.setLevel(level)


OWN_FLAGS = ("--viewer", "--no-preload")
# Servers shared with people who may not change anything, unless the command line or a STREAMLIT_* variable
# says otherwise. An uncaught error shows its type, not the server's paths in a traceback (viewer mode, and
# sign-in, where visitors who are no editors see the viewer's pages). Viewers upload images only, of 20 MB at
# most: Streamlit's upload endpoint keeps each file up to maxUploadSize in the session's memory, whatever its
# page shows (at the editors' 300 MB, for model files, one viewer held 1,000 MB with four requests).
SHARED_SETTINGS = {"client.showErrorDetails": ("STREAMLIT_CLIENT_SHOW_ERROR_DETAILS", "type")}
VIEWER_SETTINGS = {"server.maxUploadSize": ("STREAMLIT_SERVER_MAX_UPLOAD_SIZE", MAX_IMAGE_BYTES // 2**20),
                   **SHARED_SETTINGS}
SECRETS = ROOT / ".streamlit" / "secrets.toml"


def _shared_flags(arguments: list[str], settings: dict) -> list[str]:
    """``--name=value`` for each of ``settings`` that neither ``arguments`` nor its environment variable sets."""
    return [f"--{name}={value}" for name, (variable, value) in settings.items()
            if variable not in os.environ and not any(argument.startswith(f"--{name}") for argument in arguments)]


def _login_configured() -> bool:
    """An ``[auth]`` section in ``.streamlit/secrets.toml`` (Streamlit's ``st.login``)."""
    try:
        return "auth" in tomllib.loads(SECRETS.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False


def settings_from(arguments: list[str]) -> list[str]:
    """Apply ``--viewer`` (sets ``EIPVIZ_MODE=viewer``) and check eipviz's own settings; return Streamlit's arguments.

    A bad ``EIPVIZ_MODE`` or ``EIPVIZ_MAX_RUNS`` raises ``EipvizError`` before anything is served.
    """
    from eipviz.access import MODE_VARIABLE, VIEWER, access_mode
    from eipviz.training.queue import run_slots

    if "--viewer" in arguments:
        os.environ[MODE_VARIABLE] = VIEWER
    print(f"eipviz: {access_mode()} mode; at most {len(run_slots())} training run(s) at once "
          f"({', '.join(run_slots())})", flush=True)
    arguments = [argument for argument in arguments if argument not in OWN_FLAGS]
    shared = VIEWER_SETTINGS if access_mode() == VIEWER else SHARED_SETTINGS if _login_configured() else {}
    return [*_shared_flags(arguments, shared), *arguments]  # first: after a "--" they would be the script's


def main() -> int:
    """Warm up, then hand over to ``streamlit run app.py`` with this script's arguments."""
    from eipviz.errors import EipvizError

    try:
        arguments = settings_from(sys.argv[1:])
        import_keras_quietly()  # refuses a backend or keras.json eipviz cannot run with, before serving
    except EipvizError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    warm_up()
    if "--no-preload" not in sys.argv[1:]:
        preload_shipped_models()
    # Streamlit runs two full garbage collections after every script run: its own (runner.postScriptGC)
    # and one in keras.backend.clear_session, which it also calls. Frozen, the half a million objects
    # imported and preloaded above are no longer scanned each time: a new session's page load cost the
    # server 0.61 s of CPU, now 0.05 s (benchmarks/rerun_cpu.py). They are kept for the server's life
    # anyway (the model cache has room for every shipped model).
    gc.collect()
    gc.freeze()
    os.chdir(ROOT)
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *arguments]
    return streamlit_cli.main()


if __name__ == "__main__":
    sys.exit(main())
