"""genlab course --notebook: every step's quick notebook is valid nbformat v4, runs top to
bottom in a fresh kernel (nbclient) and prints the page's numbers, exactly, for the same
options; its last cell, the step's oracle check, agrees. Every step runs here, in CI's
default run: the quick settings of the steps that train a network (7, 9, A: 100 steps of
32 images) keep each under a minute on 2 cores."""

import time

import pytest

from genlab.course import STEPS, Options, run_step, write_index
from genlab.course.notebook import INSTALL, TAG_NUMBERS, TAG_ORACLE, number_line

nbformat = pytest.importorskip("nbformat", reason="pip install 'genlab[notebook]'")
nbclient = pytest.importorskip("nbclient", reason="pip install 'genlab[notebook]'")

QUICK = Options(quick=True)
KEYS = [s.key for s in STEPS]


@pytest.fixture(scope="module")
def kernel():
    """The kernel the notebooks name, python3 of this Python (jupyter_client starts a
    kernelspec whose argv is `python` with this interpreter)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip(
            "no Jupyter kernel named python3: run `python -m ipykernel install --sys-prefix` "
            "in this environment (make's install step does)"
        )
    return "python3"


def execute(nb, kernel, folder):
    client = nbclient.NotebookClient(
        nb, timeout=1800, kernel_name=kernel, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return nb


def printed(nb, tag):
    """The text the cells with this tag printed, line by line."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code" and tag in cell.metadata.get("tags", []):
            for out in cell.outputs:
                if out.output_type == "stream" and out.name == "stdout":
                    lines += out.text.splitlines()
    return lines


@pytest.mark.parametrize("key", KEYS)
def test_quick_notebook_runs_and_prints_the_pages_numbers(key, kernel, tmp_path):
    start = time.perf_counter()
    result = run_step(key, out=tmp_path, options=QUICK, notebook=True)
    nb = nbformat.read(result.notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    execute(nb, kernel, tmp_path)
    shown = sorted(line.split("  # ")[0] for line in printed(nb, TAG_NUMBERS))
    assert shown == sorted(number_line(k, v) for k, v in result.numbers.items())
    oracle = printed(nb, TAG_ORACLE)
    assert oracle and all(line.startswith("ok ") for line in oracle), oracle
    figures = [c for c in nb.cells if "figure" in c.metadata.get("tags", [])]
    assert figures and all(
        any("image/png" in o.get("data", {}) for o in c.outputs) for c in figures
    )
    print(f"step {key}: page and notebook in {time.perf_counter() - start:.1f} s")


def test_notebooks_in_both_languages_share_their_code(tmp_path):
    en = nbformat.read(run_step("2", "en", tmp_path / "en", QUICK, True).notebook, 4)
    ja = nbformat.read(run_step("2", "ja", tmp_path / "ja", QUICK, True).notebook, 4)
    for nb in (en, ja):
        nbformat.validate(nb)
    code = [[c.source for c in nb.cells if c.cell_type == "code"] for nb in (en, ja)]
    assert len(code[0]) == len(code[1])
    differ = [i for i, (a, b) in enumerate(zip(*code, strict=True)) if a != b]
    assert len(differ) == 1 and "replay('2', 'ja'" in code[1][differ[0]]  # only the language
    words = "".join(c.source for c in ja.cells if c.cell_type == "markdown")
    assert "最尤推定" in words and "$$" in words and "## オラクルによる検証" in words
    assert code[0][-1].startswith("def oracle(numbers, options):")  # the last cell
    # the page's code block, verbatim, is a code cell
    assert any(s.startswith("import numpy as np\n\ndef fit_heights(") for s in code[0])


def test_the_install_cell_installs_only_where_genlab_is_missing():
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(INSTALL)
    compile(python, "install", "exec")
    assert "except ImportError:\n    get_ipython().run_line_magic('pip', 'install genlab')" in (
        python
    )


def test_the_index_and_the_command_line_link_the_notebooks(tmp_path, capsys, monkeypatch):
    from genlab.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["course", "4", "--quick", "--notebook", "--lang", "ja", "--out", "c"]) == 0
    out = capsys.readouterr().out
    assert "notebook written to c/04-mixture/04-mixture.ipynb" in out
    index = write_index("ja", tmp_path / "c").read_text()
    assert '<a href="04-mixture/04-mixture.ipynb">ノートブック</a>' in index
    assert index.count(".ipynb") == 1  # only the step that has one
    assert main(["course", "4", "--quick", "--out", "d"]) == 0  # no --notebook: no notebook
    assert not list((tmp_path / "d").rglob("*.ipynb"))
