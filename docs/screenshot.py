"""Retake ``docs/playground.png``: the bundled service's playground after a question.

    python docs/screenshot.py [--index DIR] [--question TEXT]

Builds (or reuses) the bundled index, starts ``walletfaq serve`` on 127.0.0.1 with it, asks the
question in the playground at ``/`` with Debian's headless Chromium (``apt-get install
chromium fonts-noto-cjk``; the CJK font shows the Chinese) driven by playwright, and saves the
page. Nothing leaves the machine: the page loads only from the local service.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
OUT = Path(__file__).resolve().parent / "playground.png"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="a saved index (default: the bundled corpus, built)")
    parser.add_argument("--question", default="充值了钱没到账咋办")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    walletfaq = [sys.executable, "-m", "walletfaq"]
    index = args.index
    if index is None:
        index = str(Path(tempfile.mkdtemp()) / "idx")
        subprocess.run([*walletfaq, "-q", "build", "--out", index], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*walletfaq, "-q", "serve", "--index", index, "--port", str(port)])
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("walletfaq serve did not become ready")
            time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 900, "height": 900})
            page.goto(url + "/")
            page.wait_for_selector("#category option[value='top-up']", state="attached")
            page.fill("#question", args.question)
            page.click("#ask")
            page.wait_for_selector("#confident, #fallback")
            page.wait_for_selector("#hits li.hit")
            Path(args.out).write_bytes(page.screenshot(full_page=True))
            browser.close()
        print(f"wrote {args.out}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
