"""Seconds to a rendered Misclassified gallery when several browser sessions open it at the same moment.

Real browser (Debian's Chromium, headless, one context per session), the app as
``make run`` serves it (``scripts/serve.py``), a fresh server for every sample:
all sessions navigate at once and each is timed from its navigation to its
first gallery row (image and both CAMs) on screen. The server loads the model
once and reads its test-set evaluation once for all of them.

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/concurrent_sessions.py [--sessions 6] [--runs 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from browser_sessions import open_galleries_at_once, summary  # noqa: E402
from screenshots import CHROMIUM, CHROMIUM_FLAGS, free_port, start_streamlit  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default=None, help="a shipped model (default: the page's own default)")
    args = parser.parse_args()
    url_tail = "misclassified" + (f"?model={args.model}" if args.model else "")
    all_seconds: list[float] = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as runs:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        for _ in range(args.runs):
            port = free_port()
            server = start_streamlit(port, {**os.environ, "EIPVIZ_RUNS_DIR": runs})
            try:
                pages, seconds = open_galleries_at_once(browser, f"http://127.0.0.1:{port}/{url_tail}", args.sessions)
                for page in pages:
                    page.context.close()
            finally:
                server.kill()
                server.wait(timeout=30)
            all_seconds += seconds
            print(f"{args.sessions} sessions at once: {summary(seconds)}", flush=True)
        browser.close()
    print(f"\n{args.sessions} concurrent sessions, {args.runs} fresh servers (CPU, {os.cpu_count()} cores)\n")
    print("| sessions | samples | median s | worst s |")
    print("| --- | --- | --- | --- |")
    print(f"| {args.sessions} | {len(all_seconds)} | {statistics.median(all_seconds):.2f} | {max(all_seconds):.2f} |")


if __name__ == "__main__":
    main()
