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
