"""Every page opens in AppTest without an exception."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

TIMEOUT = 180  # the first run imports TensorFlow and builds models


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_app_entry_runs():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_models_page_shows_counts_and_flags_wrong_seed_annotations():
    at = open_page("models.py")
    at.selectbox[0].select("sepconv59k").run()
    assert not at.exception
    assert any("sepconv2" in w.value for w in at.warning)
    assert at.metric[0].value == "58,965"
