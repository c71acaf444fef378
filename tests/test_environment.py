"""The locked environment: requirements/lock.txt pins everything pyproject.toml asks for, within its ranges."""
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import nbtools  # noqa: E402


def locked(lock=nbtools.LOCK):
    "name -> [(version, marker)] for every pin in the lock (a package may have one pin per platform or Python)."
    pins = {}
    for line in Path(lock).read_text().splitlines():
        if not line or line[0] in " #": continue
        req = Requirement(line.rstrip(" \\"))
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: not an exact pin"
        pins.setdefault(canonicalize_name(req.name), []).append((spec.version, req.marker))
    return pins


def test_lock_pins_every_dependency_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["course"]]
    pins = locked()
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in the lock: run `make lock`"
        for v, _ in pins[name]:
            assert req.specifier.contains(v, prereleases=True), f"lock pins {req.name}=={v}, outside {req.specifier}: run `make lock`"


def test_lock_has_hashes_and_covers_the_build():
    text = nbtools.LOCK.read_text()
    entries = [l for l in text.splitlines() if l and l[0] not in " #"]
    assert all(l.endswith("\\") for l in entries), "every pin carries --hash lines"
    assert "setuptools" in locked(), "the editable install builds with a locked setuptools (--no-build-isolation)"


def test_lock_mismatches_reads_versions_and_markers(tmp_path):
    import packaging
    lock = tmp_path / "lock.txt"
    lock.write_text(f"packaging=={packaging.__version__} \\\n    --hash=sha256:00\n"
                    "packaging==0.0.1 ; sys_platform == 'no-such-platform' \\\n    --hash=sha256:00\n"
                    "no-such-package-anywhere==1.0 \\\n    --hash=sha256:00\n")
    assert nbtools.lock_mismatches(lock) == [("no-such-package-anywhere", "1.0", None)]


def test_conda_environment_installs_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert "- -r requirements/lock.txt" in text and "- python=3.11" in text
    assert "--python-version 3.11" in (ROOT / "Makefile").read_text(), "the lock is resolved for the Python conda installs"


def test_the_suites_workers_share_the_cores(request):
    "make test's xdist workers (conftest.py): each one's torch threads are its share of the cores, kernels alike."
    import os, torch, pytest
    threads = getattr(request.config, "worker_threads", None)
    if threads is None: pytest.skip("not on make test's xdist workers, or OMP_NUM_THREADS chosen by the caller")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads == max(1, cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    assert torch.get_num_threads() == threads and os.environ["OMP_NUM_THREADS"] == str(threads)  # kernels inherit it


def test_every_lesson_has_its_place_in_the_suites_order(request):
    "conftest.py's LONGEST_FIRST names each lesson once (a lesson left out would run after the others, whatever its length)."
    conf = next(p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == str(ROOT / "conftest.py"))
    lessons = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    places = {name: [p for p in conf.LONGEST_FIRST if name.startswith(p)] for name in lessons}
    assert all(len(p) == 1 for p in places.values()), places
    assert len(conf.LONGEST_FIRST) == len(lessons), "LONGEST_FIRST names a lesson that is not there"
