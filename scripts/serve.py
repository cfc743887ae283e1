"""``make run``: import Keras and the pages' libraries once, then serve ``app.py`` in this same process.

``streamlit run`` imports nothing until a browser connects, so the first visitor
waited for TensorFlow, pandas and Plotly to import (about 5 s here) on top of
the page itself. Here that happens while the server starts; every argument is
passed to ``streamlit run app.py`` as it is (``scripts/serve.py --server.port 8600``).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamlit.web import cli as streamlit_cli  # noqa: E402

from eipviz.quiet import import_keras_quietly  # noqa: E402

if __name__ == "__main__":
    import_keras_quietly()
    import pandas  # noqa: F401  (what the pages import on their first run)
    import plotly.graph_objects  # noqa: F401

    import eipviz.explain.faithfulness  # noqa: F401
    import eipviz.explain.gallery  # noqa: F401
    import eipviz.explain.predict  # noqa: F401
    import eipviz.loading  # noqa: F401
    import eipviz.plots  # noqa: F401
    import eipviz.tables  # noqa: F401
    import eipviz.training.launcher  # noqa: F401
    os.chdir(ROOT)
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    sys.exit(streamlit_cli.main())
