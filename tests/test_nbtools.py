"""scripts/nbtools.py: a lesson executed in a fresh kernel from its folder, and its cells' timings read back."""
import sys
from pathlib import Path
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import nbtools  # noqa: E402


def test_execute_runs_in_the_notebooks_folder_and_times_every_code_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# a lesson"),
                                         nbformat.v4.new_code_cell("import os, time\ntime.sleep(0.3)\nprint(os.getcwd())"),
                                         nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    done = nbtools.execute(path)
    assert done.cells[1].outputs[0]["text"].strip() == str(tmp_path)
    assert nbformat.read(path, as_version=4).cells[1].outputs == [], "execute saves nothing"
    cells = nbtools.cell_seconds(done)
    assert [(i, line) for i, _, line in cells] == [(1, "import os, time"), (2, "x = 1")]
    assert cells[0][1] >= 0.3 > cells[1][1] >= 0


def test_saved_notebooks_keep_text_and_figures_but_no_widget_they_could_not_draw(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import ipywidgets as w\nfrom tqdm.auto import tqdm\n"
        "for _ in tqdm(range(2), desc='steps'): pass\nprint('measured')\nw.IntSlider(3)")])
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    done = nbtools.execute(path)
    views = lambda nb: sum(nbtools.WIDGET_VIEW in o.get("data", {}) for o in nb.cells[0].outputs)
    assert views(done) == 2 and "widgets" in done.metadata          # what the kernel hands back: the bar, the slider
    clean = nbtools.strip_widgets(done)
    assert views(clean) == 0 and "widgets" not in clean.metadata
    assert "measured\n" in [o.get("text") for o in clean.cells[0].outputs], "printed output is kept"


def test_the_saved_lessons_show_no_widget_without_its_state():
    "A widget output saved without its state shows as an error in JupyterLab: `make notebooks` strips both."
    for path in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        views = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if nbtools.WIDGET_VIEW in o.get("data", {})]
        assert not views, f"{path.name}: cells {views} display a widget whose state is not saved"
