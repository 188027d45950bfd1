"""The committed notebooks: each .ipynb holds the cells of its jupytext percent source (.py), and is stored
executed, so that a reader on GitHub sees its plots without running it (inline PNGs, no error outputs).
Executing them is the slow tier's job (test_notebook.py, test_notebook_cnv.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_notebooks import assert_paired, assert_rendered

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STORED = [("walkthrough.ipynb", 4), ("cnv.ipynb", 3)]


@pytest.mark.parametrize("name", [name for name, _ in STORED])
def test_stored_notebook_matches_its_source(name):
    pytest.importorskip("jupytext")
    assert_paired(NOTEBOOKS / name)


@pytest.mark.parametrize("name,min_images", STORED)
def test_stored_notebook_shows_its_outputs(name, min_images):
    pytest.importorskip("nbformat")
    assert_rendered(NOTEBOOKS / name, min_images=min_images)
