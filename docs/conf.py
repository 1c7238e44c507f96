"""Sphinx configuration of the pkpd documentation (``sphinx-build -W -b html docs OUT``).

The API reference, one page per library model and the scenario-key reference are generated
at each build by ``docs/_ext/pkpd_docs.py`` from the package itself (its ``__all__``, the
model files through :func:`pkpd.load_model`, the scenario checker's allowed-key lists).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))     # the pkpd of this checkout, not an installed one
sys.path.insert(0, str(HERE / "_ext"))

import pkpd  # noqa: E402

project = "pkpd"
version = release = pkpd.__version__
author = "pkpd"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser", "pkpd_docs"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["README.md", "_build"]     # docs/README.md describes an image file, not a page
# docs/models/README.md (the model-file format) sits where README.md's link models/README.md points
myst_heading_anchors = 3
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "alabaster"
html_theme_options = {"page_width": "1280px"}   # the model pages' tables have up to seven columns
