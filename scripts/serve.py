"""``make run``: import Keras once, then serve ``app.py`` with Streamlit in this same process.

``streamlit run`` imports nothing until a browser connects, so the first visitor
waited for TensorFlow's import (about 4 s here) on top of the page itself.
Here the import happens while the server starts; every argument is passed to
``streamlit run app.py`` as it is (``scripts/serve.py --server.port 8600``).
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
    os.chdir(ROOT)
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    sys.exit(streamlit_cli.main())
