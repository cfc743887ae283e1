"""Who may change things: the editor mode (the default) or a read-only viewer mode for sharing.

``EIPVIZ_MODE=viewer`` (or ``scripts/serve.py --viewer``) serves eipviz to people
who may look but not act: browsing runs, curves, galleries and explaining
their own images work; starting, stopping, resuming, renaming and deleting
runs, importing logs into the run store and loading uploaded model files are
refused here, in the library, whatever the pages show.

    >>> require_write("Deleting a run")   # raises EipvizError in viewer mode
"""

import os
import re

from eipviz.errors import EipvizError

MODE_VARIABLE = "EIPVIZ_MODE"
EDITOR, VIEWER = "editor", "viewer"
MODES = (EDITOR, VIEWER)
EDITORS_VARIABLE = "EIPVIZ_EDITORS"
# An absolute path: POSIX (not a URL's "//host/…", not "km/h" or "1/2") or Windows (C:\\…).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~\\-])(?:/[^\s/:'\"`,;()\[\]]+)+/?|\b[A-Za-z]:\\[^\s:'\"`,;()]*")


def access_mode() -> str:
    """``"editor"`` (the default) or ``"viewer"``, from ``EIPVIZ_MODE``; any other value raises."""
    mode = os.environ.get(MODE_VARIABLE, "").strip().lower() or EDITOR
    if mode not in MODES:
        raise EipvizError(f"Unknown mode. Received: {MODE_VARIABLE}={mode!r}. Choose one of: "
                          f"{', '.join(repr(m) for m in MODES)}.")
    return mode


def writes_allowed() -> bool:
    """True unless eipviz serves in viewer mode."""
    return access_mode() == EDITOR


def require_write(action: str) -> None:
    """Raise ``EipvizError`` saying ``action`` is refused when eipviz runs in viewer mode."""
    if not writes_allowed():
        raise EipvizError(f"{action} is not allowed: this eipviz is shared read-only "
                          f"({MODE_VARIABLE}={VIEWER}). Runs, curves and explanations can be viewed.")


def is_editor(email: str | None) -> bool:
    """Whether a signed-in account may change things where sign-in is configured: its address, or its domain
    written ``@school.org``, is listed in ``EIPVIZ_EDITORS`` (comma-separated; ``*``: any account).

    Signing in proves who someone is, not that they may act: with an identity provider open to anyone
    (any Google account), nobody listed means nobody may.
    """
    if not email or "@" not in email:
        return False
    email = email.strip().lower()
    listed = {entry.strip().lower() for entry in os.environ.get(EDITORS_VARIABLE, "").split(",") if entry.strip()}
    return "*" in listed or email in listed or "@" + email.rsplit("@", 1)[1] in listed


def without_paths(text: str) -> str:
    """``text`` with each absolute path cut to its last part (``/srv/data/cifar10_test.npz``: ``…/cifar10_test.npz``):
    what a read-only visitor is shown of the server's messages, whose folders are the server's own business."""
    return _ABSOLUTE_PATH.sub(lambda match: "…/" + re.split(r"[/\\]", match.group().rstrip("/\\"))[-1], text)
