"""Cell list and writer shared by the notebook generators (make_walkthrough.py, make_cnv.py)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


class Cells:
    def __init__(self):
        self.cells = []

    def md(self, text: str) -> None:
        self.cells.append(new_markdown_cell(text.strip("\n")))

    def code(self, text: str) -> None:
        self.cells.append(new_code_cell(text.strip("\n")))

    def write(self, out: Path) -> Path:
        """Validate and write the notebook, outputs cleared, with stable cell ids (a regeneration changes
        only what the generator changed)."""
        for i, cell in enumerate(self.cells):
            cell["id"] = f"cell-{i:02d}"
        nb = new_notebook(cells=self.cells, metadata={
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        })
        nbformat.validate(nb)
        nbformat.write(nb, out)
        return out
