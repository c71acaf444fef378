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
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    calls = run_cell(colab.setup_cell_source("an-org/a-course", "dev"), monkeypatch, on_colab=True)
    (_, clone), (_, install), chdir = calls
    assert clone[:2] == ["git", "clone"] and "https://github.com/an-org/a-course" in clone and "dev" in clone
    assert install[1:] == ["/content/course/scripts/colab.py", "--install"]
    assert chdir == ("chdir", "/content/course/notebooks")


@pytest.mark.parametrize("installed", [False, True])
def test_cell_run_again_installs_until_an_install_succeeded(monkeypatch, installed):
    "The clone is there; the install runs again unless a successful one left its mark (.colab-installed)."
    monkeypatch.setattr(os.path, "isdir", lambda p: True)
    monkeypatch.setattr(os.path, "exists", lambda p: installed and p == "/content/course/.colab-installed")
    calls = run_cell(colab.setup_cell_source("an-org/a-course"), monkeypatch, on_colab=True)
    assert [c[0] for c in calls] == (["chdir"] if installed else ["run", "chdir"])
    assert installed or calls[0][1][1:] == ["/content/course/scripts/colab.py", "--install"]


def test_bad_branch_is_refused():
    for branch in ("main; rm -rf /", "a b", "--upload-pack=x", 'x"'):
        with pytest.raises(ValueError, match="branch name"): colab.setup_cell_source("an-org/a-course", branch)


def fake_colab_env(monkeypatch, before, after):
    "installed() answers `before` until pip runs, then `after`; pip's command is recorded."
    state, cmds = {"now": before}, []
    monkeypatch.setattr(colab, "installed", lambda: dict(state["now"]))
    def run(cmd, check):
        cmds.append(cmd); state["now"] = after
    return run, cmds


def test_install_keeps_colabs_torch_and_says_what_it_installed(tmp_path, monkeypatch, capsys):
    colab_has = {"torch": "2.8.0+cu126", "torchvision": "0.23.0+cu126", "numpy": "2.0.2", "transformers": "4.56.0"}
    after = {**colab_has, "diffusers": "0.42.1", "transformers": "5.0.0", "course-utils": "0.1.0"}
    run, cmds = fake_colab_env(monkeypatch, colab_has, after)
    changed = colab.install(tmp_path, run)
    (cmd,) = cmds
    assert cmd[1:4] == ["-m", "pip", "install"] and cmd[-2:] == ["-e", str(tmp_path)]
    constraints = (tmp_path / ".colab-constraints.txt").read_text().split()
    assert cmd[cmd.index("-c") + 1] == str(tmp_path / ".colab-constraints.txt")
    assert constraints == ["torch==2.8.0+cu126", "torchvision==0.23.0+cu126"]  # torchaudio absent: nothing to keep
    assert changed == {"course-utils": "0.1.0", "diffusers": "0.42.1", "transformers": "5.0.0"}
    out = capsys.readouterr().out
    assert "installed: course-utils 0.1.0, diffusers 0.42.1, transformers 5.0.0" in out
    assert "kept: torch==2.8.0+cu126, torchvision==0.23.0+cu126" in out
    assert (tmp_path / colab.INSTALLED).read_text().split() == ["course-utils==0.1.0", "diffusers==0.42.1", "transformers==5.0.0"]


def test_a_failed_install_leaves_no_mark(tmp_path, monkeypatch):
    def run(cmd, check): raise subprocess.CalledProcessError(1, cmd)
    monkeypatch.setattr(colab, "installed", lambda: {"torch": "2.8.0"})
    with pytest.raises(subprocess.CalledProcessError): colab.install(tmp_path, run)
    assert not (tmp_path / colab.INSTALLED).exists()


def test_installed_reads_this_python():
    have = colab.installed()
    import torch, nbformat
    assert have["torch"] == torch.__version__.split("+")[0] or have["torch"] == torch.__version__
    assert have["nbformat"] == nbformat.__version__


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
