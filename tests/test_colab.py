"The Colab set-up cell and README links that scripts/colab.py writes."
import importlib.util, os, shutil, subprocess, sys, types
from pathlib import Path
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("colab_script", ROOT / "scripts" / "colab.py")
colab = importlib.util.module_from_spec(spec); spec.loader.exec_module(colab)


def run_cell(source, monkeypatch, on_colab):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(("run", cmd)))
    monkeypatch.setattr(os, "chdir", lambda p: calls.append(("chdir", p)))
    monkeypatch.setattr(sys, "path", list(sys.path))
    if on_colab: monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else: monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "<colab-cell>", "exec"), {})
    return calls


def test_cell_does_nothing_off_colab(monkeypatch):
    assert run_cell(colab.setup_cell_source("an-org/a-course"), monkeypatch, on_colab=False) == []


def test_cell_clones_installs_and_enters_notebooks_on_colab(monkeypatch):
    monkeypatch.setattr(os.path, "isdir", lambda p: False)
    calls = run_cell(colab.setup_cell_source("an-org/a-course", "dev"), monkeypatch, on_colab=True)
    (_, clone), (_, pip), chdir = calls
    assert clone[:2] == ["git", "clone"] and "https://github.com/an-org/a-course" in clone and "dev" in clone
    assert pip[1:4] == ["-m", "pip", "install"] and pip[-1] == "/content/course"
    assert chdir == ("chdir", "/content/course/notebooks")


def test_stamp_is_idempotent_and_first(tmp_path):
    nb = tmp_path / "lesson.ipynb"
    shutil.copy(ROOT / "notebooks" / "00_parts_of_stable_diffusion.ipynb", nb)
    n = len(nbformat.read(nb, 4).cells)
    colab.stamp_notebook(nb, "an-org/a-course"); colab.stamp_notebook(nb, "an-org/b-course")
    cells = nbformat.read(nb, 4).cells
    assert len(cells) == n + 1 and colab.TAG in cells[0].metadata.tags and "b-course" in cells[0].source


def test_readme_links_every_notebook(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{colab.BEGIN}\nold\n{colab.END}\nrest\n")
    nbs = sorted((ROOT / "notebooks").glob("*.ipynb"))
    colab.stamp_readme(readme, "an-org/a-course", nbs)
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro") and text.rstrip().endswith("rest")
    for p in nbs: assert f"colab.research.google.com/github/an-org/a-course/blob/main/notebooks/{p.name}" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="block"): colab.stamp_readme(readme, "an-org/a-course", nbs)


def test_bad_repo_is_refused():
    with pytest.raises(ValueError, match="OWNER/NAME"): colab.setup_cell_source("https://github.com/x")
