"""A run's output folder as the report reads it: the manifest, the tables, the inputs' copies.

Nothing here writes. A folder that is not a pkpd run output, or that an older pkpd wrote
(its manifest has no ``report_inputs``), or that lost a file its manifest lists, is refused
with one line naming the folder and what is missing.
"""

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from .._errors import OutputError
from ..model import load_model
from .._output import FILES, MANIFEST, MARKER


@dataclass
class RunFolder:
    """One ``pkpd run`` output folder, read on demand.

    Attributes
    ----------
    path : Path
    manifest : dict
        ``manifest.json``.
    """
    path: Path
    manifest: dict = field(repr=False)

    @classmethod
    def open(cls, path):
        """Check `path` is a complete run output of this pkpd and return it; raise OutputError."""
        path = Path(path)
        if not path.is_dir():
            raise OutputError("not found" if not path.exists() else "is not a folder; give a pkpd run output folder",
                              file=path)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = None
        if not isinstance(manifest, dict) or manifest.get(MARKER) is not True:
            raise OutputError(f"is not a pkpd run output (no {MANIFEST} written by `pkpd run`)", file=path)
        if not isinstance(manifest.get("report_inputs"), dict):
            raise OutputError(f"was written by an older pkpd ({MANIFEST} has no report_inputs); run the scenario "
                              "again with `pkpd run` to report on it", file=path)
        for name in manifest.get(FILES, []):
            if not (path / name).is_file():
                raise OutputError(f"{MANIFEST} lists {name}, which is missing; run the scenario again", file=path)
        return cls(path=path, manifest=manifest)

    def table(self, name):
        """A CSV table of the folder (``summary.csv``), or None when the run has none."""
        if name not in self.manifest.get(FILES, []):
            return None
        return pd.read_csv(self.path / name, keep_default_na=True)

    def has(self, name):
        return name in self.manifest.get(FILES, [])

    @cached_property
    def scenario_text(self):
        return (self.path / self.manifest["report_inputs"]["scenario"]).read_text(encoding="utf-8")

    @cached_property
    def model(self):
        """The scenario's model, loaded from the folder's copy of its file (parsed, not compiled)."""
        return load_model(self.path / self.manifest["report_inputs"]["models"][self.manifest["model"]["name"]])

    def figure_path(self, file):
        return self.path / "figures" / file
