"""Widgets after Run All, read from the code: no later cell rebinds a name a widget's callback reads.

The widget probe (conftest.py) moves every control after Run All, but only on this machine, where each
lesson's real-photo cell stops at `if torch.cuda.is_available():`. On Colab that branch runs and binds
names too (`sd`, `photo`, `out`, `mk`, ...). So every global name a callback reads (through
`symtable`, also inside the notebook's own functions it calls) is checked against every name a later
cell binds, in any branch. A later `from x import f` of the very `f` an earlier cell imported binds
the same object again and is allowed (the real-photo cells import what they use, to run on their
own); anything else is the bug lesson 5 once had: `out, mk = ledits_edit(...)` after a callback that
drew into a global `out`."""
import ast
import json
import symtable
from pathlib import Path
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET_CALLS = {"interactive", "interact", "interact_manual", "interactive_output", "observe", "on_click", "on_submit"}


def code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def imports(tree: ast.AST) -> dict:
    "name -> where it comes from ('module:attr' or 'module'), for every import in the cell, in any branch."
    out = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            out.update({a.asname or a.name: f"{'.' * n.level}{n.module}:{a.name}" for a in n.names})
        elif isinstance(n, ast.Import):
            out.update({a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0] for a in n.names})
    return out


def bound(table: symtable.SymbolTable) -> set:
    "The names a cell binds at the notebook's top level (assigned, imported, def'd; in any branch)."
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}


def functions(table: symtable.SymbolTable) -> dict:
    return {t.get_name(): t for t in table.get_children() if t.get_type() == "function"}


def reads(fn: symtable.SymbolTable) -> set:
    "The global names a function reads, its nested functions' and lambdas' too."
    names = {s.get_name() for s in fn.get_symbols() if s.is_global() and s.is_referenced()}
    for child in fn.get_children(): names |= reads(child)
    return names


def callbacks(tree: ast.AST) -> set:
    "Names of the functions a cell hands to a widget: interactive(f, ...), w.observe(f, ...), b.on_click(f)."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Name):
            name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None)
            if name in WIDGET_CALLS: out.add(n.args[0].id)
    return out


def rebound_names(sources: list[str]) -> list[str]:
    """For each widget callback: the names it reads (directly or through the notebook's functions it calls)
    that a cell after the widget's binds again, other than by re-importing the same object."""
    trees = [ast.parse(s) for s in sources]
    tables = [symtable.symtable(s, f"cell {i}", "exec") for i, s in enumerate(sources)]
    defined, origin, problems = {}, {}, []
    for i, (tree, table) in enumerate(zip(trees, tables)):
        defined.update(functions(table))
        for name, where in imports(tree).items(): origin.setdefault(name, where)
        for cb in sorted(callbacks(tree)):
            if cb not in defined: continue                # a lambda's or a library's: nothing of ours to follow
            names, todo = set(), [cb]
            while todo:                                   # the callback and the notebook functions it calls
                f = todo.pop()
                new = reads(defined[f]) - names
                names |= new
                todo += [n for n in new if n in defined and n != f]
            for j in range(i + 1, len(sources)):
                same = {n for n, w in imports(trees[j]).items() if origin.get(n) == w}
                for name in sorted((bound(tables[j]) & names) - same):
                    problems.append(f"callback {cb}() of code cell {i} reads `{name}`, which code cell {j} binds again")
    return problems


@pytest.mark.parametrize("lesson", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_no_later_cell_rebinds_what_a_widget_reads(lesson):
    assert rebound_names(code_cells(NOTEBOOKS / lesson)) == []


def test_the_check_sees_lesson_5s_old_bug_and_a_rebinding_in_a_gpu_branch():
    old = ["import ipywidgets as widgets\nfrom course_utils.plotting import show_images\nout = widgets.Output()",
           "def draw(s):\n    with out:\n        out.clear_output(); show_images([s], ['x'], 'y')\n"
           "w = widgets.IntSlider()\nw.observe(draw, 'value')",
           "out, mk = ledits_edit(m, inv, [])"]
    assert rebound_names(old) == ["callback draw() of code cell 1 reads `out`, which code cell 2 binds again"]
    helper = ["def title(s): return f's = {s}' + suffix\nsuffix = ''",
              "def show(scale): plt.title(title(scale))\nui = widgets.interactive(show, scale=1.0)",
              "import torch\nif torch.cuda.is_available():\n    suffix = ' on SD 1.5'"]
    assert rebound_names(helper) == ["callback show() of code cell 1 reads `suffix`, which code cell 2 binds again"]
    same = ["from course_utils.plotting import show_images as si", "def f(x): si(x)\nui = interactive(f, x=1)",
            "from course_utils.plotting import show_images as si", "from course_utils.latents import latents_to_pil as si"]
    assert rebound_names(same) == ["callback f() of code cell 1 reads `si`, which code cell 3 binds again"]


def test_every_lesson_with_widgets_has_a_callback_the_check_follows():
    "The check above would pass vacuously if it found no callbacks: it must find one wherever a lesson uses ipywidgets."
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        sources = code_cells(path)
        if any("ipywidgets" in s for s in sources):
            found = set().union(*(callbacks(ast.parse(s)) for s in sources))
            assert found, f"{path.name} uses ipywidgets, but no callback was found"
