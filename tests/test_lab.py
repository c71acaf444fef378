"""The README's first command: `make lab` starts JupyterLab and it serves the lessons (no browser needed).

`make lab` runs scripts/lab.py in the course's environment; here the same script runs with this
interpreter, as this user and, when the tests run as root, also as an unprivileged user.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
TOKEN = "course-test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def get(port, path, timeout=5):
    sep = "&" if "?" in path else "?"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}{sep}token={TOKEN}", timeout=timeout) as r:
        return r.status, r.read().decode()


def serve_and_check(tmp_path, prefix=()):
    "Start scripts/lab.py (headless, on a free port), wait until it serves notebooks/, check it, stop it."
    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "IPYTHONDIR": str(tmp_path / "ipython"), "HOME": str(tmp_path)}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen([*prefix, sys.executable, str(ROOT / "scripts" / "lab.py"), "--no-browser", f"--port={port}",
                             "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            try:
                status, body = get(port, "/api/contents"); break
            except OSError:
                if time.time() > deadline: pytest.fail("JupyterLab did not answer within 120 s")
                time.sleep(0.5)
        assert status == 200
        served = sorted(c["name"] for c in json.loads(body)["content"] if c["type"] == "notebook")
        assert served == LESSONS, "the server's root is not notebooks/"
        status, page = get(port, "/lab/tree/" + LESSONS[0])
        assert status == 200 and "JupyterLab" in page
        specs = json.loads(get(port, "/api/kernelspecs")[1])
        assert specs["default"] in specs["kernelspecs"]
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()


def test_lab_serves_the_lessons(tmp_path):
    serve_and_check(tmp_path)


def test_lab_serves_the_lessons_to_an_unprivileged_user():
    "Run as root, the tests also start the course as `nobody` (so both paths of scripts/lab.py run)."
    if not hasattr(os, "geteuid") or os.geteuid() != 0: pytest.skip("not root: the test above ran as a normal user")
    setpriv = shutil.which("setpriv")
    if not setpriv: pytest.skip("setpriv (util-linux) is not installed")
    prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    probe = subprocess.run([*prefix, sys.executable, str(ROOT / "scripts" / "lab.py"), "--version"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("user nobody cannot run this environment or read this checkout (e.g. a venv whose Python is under /root)")
    shared = Path(tempfile.mkdtemp(prefix="course-lab-"))   # pytest's tmp_path sits in a folder only root may enter
    try:
        os.chmod(shared, 0o777)
        serve_and_check(shared, prefix)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_make_lab_runs_the_script():
    "`make lab` is scripts/lab.py in the course's environment (dry run: nothing is installed or started)."
    if not shutil.which("make"): pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # `make test` runs us
    out = subprocess.run(["make", "--no-print-directory", "-n", "lab", "VENV=/nonexistent/venv"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert out[-1].split()[:2] == ["/nonexistent/venv/bin/python", "scripts/lab.py"]
    out = subprocess.run(["make", "--no-print-directory", "-n", "lab", "VENV=/nonexistent/venv", "LAB_ARGS=--ip=0.0.0.0 --no-browser"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert out[-1].split() == ["/nonexistent/venv/bin/python", "scripts/lab.py", "--ip=0.0.0.0", "--no-browser"]


def test_lab_asks_for_allow_root_only_as_root():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import lab
    finally:
        sys.path.pop(0)
    cmd = lab.command(["--no-browser"])
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"] and cmd[-1] == "--no-browser"
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)
