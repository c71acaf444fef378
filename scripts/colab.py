"""Colab set-up: a first cell in every lesson, "Open in Colab" links in the README, and the install.

    python scripts/colab.py OWNER/NAME [--branch main]     # once, when the course is published
    python scripts/colab.py --install                      # what the set-up cell runs on Colab

OWNER/NAME is the course's public GitHub repository. The first form

* puts (or replaces) a first code cell, tagged `colab-setup`, in every `notebooks/*.ipynb`: on
  Colab it clones the repository, runs the second form and moves into `notebooks/` (so
  `../images/` resolves); anywhere else it does nothing;
* writes the table of badges between `<!-- colab-links -->` and `<!-- /colab-links -->` in
  README.md.

Run it once when the repository is published (or moved), then re-run the lessons
(`python scripts/nbtools.py run notebooks/*.ipynb`) so that the saved outputs stay in order.

`--install` installs the course (editable) with pip, constrained to the torch, torchvision and
torchaudio already installed: Colab's own CUDA builds stay (pip fails rather than replace them),
and it prints what it installed or upgraded. Only a successful install writes `.colab-installed`
in the course's folder, and the set-up cell installs whenever that file is missing: a failed
install (a conflict, the network) is tried again when the cell runs again.
"""
from __future__ import annotations
import argparse, importlib, re, subprocess, sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = "colab-setup"
BEGIN, END = "<!-- colab-links -->", "<!-- /colab-links -->"

CELL = '''\
# On Colab: fetch the course and install its helpers (keeping Colab's torch). Anywhere else this cell does nothing.
import os, sys, subprocess
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/course"):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}",
                        "https://github.com/{repo}", "/content/course"], check=True)
    if not os.path.exists("/content/course/.colab-installed"):   # an install that failed is tried again on the next run
        subprocess.run([sys.executable, "/content/course/scripts/colab.py", "--install"], check=True)
    sys.path.insert(0, "/content/course")  # importable before the runtime restarts
    os.chdir("/content/course/notebooks")'''
KEEP = ("torch", "torchvision", "torchaudio")  # the platform's builds (CUDA on Colab): never replaced
INSTALLED = ".colab-installed"                  # written after a successful install; the cell installs until it exists


def installed() -> dict[str, str]:
    "{normalised distribution name: version} of what this Python has installed."
    importlib.invalidate_caches()
    return {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
            for d in metadata.distributions() if d.metadata["Name"]}


def install(course: Path = ROOT, run=subprocess.run) -> dict[str, str]:
    """pip-install the course at `course` (editable) without touching the installed torch family;
    print and return {name: version} of what was installed or changed."""
    before = installed()
    keep = [f"{p}=={before[p]}" for p in KEEP if p in before]
    constraints = Path(course) / ".colab-constraints.txt"
    constraints.write_text("".join(k + "\n" for k in keep))
    run([sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints), "-e", str(course)], check=True)
    after = installed()
    changed = {n: v for n, v in sorted(after.items()) if before.get(n) != v}
    print("installed:", ", ".join(f"{n} {v}" for n, v in changed.items()) or "nothing new")
    print("kept:", ", ".join(keep) if keep else "no torch was installed before: pip chose one")
    (Path(course) / INSTALLED).write_text("".join(f"{n}=={v}\n" for n, v in changed.items()))   # the set-up cell's "done"
    return changed


def check_repo(repo: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise ValueError(f"give the repository as OWNER/NAME (e.g. my-org/diffusion-editing-course), got {repo!r}")
    return repo


def check_branch(branch: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", branch) or branch.startswith("-"):
        raise ValueError(f"give a branch name such as main or dev, got {branch!r}")
    return branch


def setup_cell_source(repo: str, branch: str = "main") -> str:
    return CELL.format(repo=check_repo(repo), branch=check_branch(branch))


def stamp_notebook(path: Path, repo: str, branch: str = "main") -> None:
    "Insert the set-up cell first in the notebook at `path`, replacing an earlier one."
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if TAG not in c.metadata.get("tags", [])]
    nb.cells.insert(0, nbformat.v4.new_code_cell(setup_cell_source(repo, branch), metadata={"tags": [TAG]}))
    nbformat.write(nb, path)


def links_table(repo: str, notebooks: list[Path], branch: str = "main") -> str:
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    rows = [f"| `{p.name}` | [![Open in Colab]({badge})](https://colab.research.google.com/github/{check_repo(repo)}"
            f"/blob/{branch}/notebooks/{p.name}) |" for p in notebooks]
    return "\n".join(["| lesson | |", "|---|---|", *rows])


def stamp_readme(path: Path, repo: str, notebooks: list[Path], branch: str = "main") -> None:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no {BEGIN} ... {END} block to fill")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{links_table(repo, notebooks, branch)}\n{END}{tail}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", help="OWNER/NAME of the course's GitHub repository")
    ap.add_argument("--branch", default="main")
    ap.add_argument("--install", action="store_true", help="install the course here, keeping the installed torch")
    a = ap.parse_args(argv)
    if a.install:
        install()
        return 0
    if a.repo is None: ap.error("give OWNER/NAME (or --install)")
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for p in notebooks: stamp_notebook(p, a.repo, a.branch)
    stamp_readme(ROOT / "README.md", a.repo, notebooks, a.branch)
    print(f"stamped {len(notebooks)} notebooks and README.md for github.com/{a.repo} ({a.branch}); "
          f"now re-run them: python scripts/nbtools.py run notebooks/*.ipynb")


if __name__ == "__main__":
    sys.exit(main())
