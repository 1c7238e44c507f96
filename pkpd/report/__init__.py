"""``pkpd report OUTDIR``: a run's output folder as one document a reviewer can read.

One self-contained HTML file (figures embedded as data URIs: it opens with no network and no
other file) and a PDF of the same content, printed from that HTML by headless Chromium
(:mod:`pkpd.report._browser`, which says why Chromium). Both are built from the folder alone:
the manifest, the tables, the figures and the copies of the inputs a run keeps
(:mod:`pkpd.report._record`), so a report can be made again, or later, from any run folder.

Sections (:mod:`pkpd.report._sections`) are data driven: each has a loader and a template,
and is rendered only when the run has what it shows (power with ``power.csv``, ...).

Writing is atomic: both files are written under temporary names beside their place, the
manifest then lists them (so ``pkpd run --force`` may later replace the folder), and they are
renamed into place; an interrupted report leaves the folder as it was.
"""

import os
import re
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .._errors import OutputError
from .._output import FILES, MANIFEST, reason, remove_stale_temporaries
from ._folder import RunFolder

HTML = "report.html"
PDF = "report.pdf"


@dataclass
class Report:
    """The files a report wrote, and what the browser found when printing (None without a PDF)."""
    html: Path
    pdf: Path | None
    pages: int | None = None


def render_html(folder: RunFolder) -> str:
    """The report as one HTML document (text), every figure embedded."""
    import jinja2

    from ..study.run import versions
    from ._sections import SECTIONS

    templates = resources.files(__package__) / "templates"
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    sections = []
    for section in SECTIONS:
        context = section.load(folder)
        if context is not None:
            sections.append({"name": section.name, "title": section.title, "context": context,
                             "template_file": section.template_file})
    info = folder.manifest
    title = info["scenario"].get("description") or info["scenario"]["file"]
    return environment.get_template("report.html.j2").render(
        title=title, version=versions().get("pkpd"), css=(templates / "report.css").read_text(encoding="utf-8"),
        sections=sections, scenario_file=info["scenario"]["file"], model_name=info["model"]["name"],
        n=info["n"], seed=info["seed"], created=info.get("created_utc", ""))


def build_report(outdir: Path | str, *, pdf: bool = True, force: bool = False) -> Report:
    """Write ``report.html`` (and ``report.pdf``) into a run's output folder.

    Parameters
    ----------
    outdir : str or Path
        A folder ``pkpd run`` wrote.
    pdf : bool
        Also print the PDF (needs Chromium: ``apt-get install chromium``, or ``PKPD_CHROMIUM``).
    force : bool
        Replace a report the folder already has.

    Returns
    -------
    Report

    Raises
    ------
    OutputError
        The folder is not a run output of this pkpd, or already has a report (without `force`).
    """
    folder = RunFolder.open(outdir)
    targets = [folder.path / HTML] + ([folder.path / PDF] if pdf else [])
    for target in targets:
        if target.exists() and not force:
            raise OutputError("report exists; pass --force to replace it", file=target)
    for target in targets:
        remove_stale_temporaries(target)
    temporaries = {target: target.parent / f".{target.name}.tmp-{os.getpid()}" for target in targets}
    try:
        text = render_html(folder)
        temporaries[folder.path / HTML].write_text(text, encoding="utf-8")
        pages = _print_pdf(text, temporaries[folder.path / PDF], folder) if pdf else None
        _list_in_manifest(folder, [t.name for t in targets])
        for target, temporary in temporaries.items():
            os.replace(temporary, target)
        if not pdf and force and (folder.path / PDF).exists():  # an older PDF would no longer match the HTML
            (folder.path / PDF).unlink()
    except OSError as error:
        raise OutputError(reason(error), file=folder.path / HTML) from None
    finally:
        for temporary in temporaries.values():
            if temporary.exists():
                temporary.unlink()
    return Report(html=folder.path / HTML, pdf=folder.path / PDF if pdf else None, pages=pages)


def _print_pdf(text, target, folder):
    """Print the HTML `text` to `target` with Chromium; return the number of pages.

    The page is loaded from a private temporary folder as ``report.html`` (the browser takes
    a file's type from its name, and the one beside the output is named ``.report.html.tmp-PID``)."""
    from ._browser import Browser, BrowserError

    footer = f"{folder.manifest['scenario']['file']}, seed {folder.manifest['seed']}"
    with tempfile.TemporaryDirectory(prefix="pkpd-report-") as scratch:
        page = Path(scratch) / HTML
        page.write_text(text, encoding="utf-8")
        try:
            with Browser() as browser:
                browser.open(page)
                data = browser.pdf(footer=footer)
        except BrowserError as error:
            raise OutputError(f"cannot print the PDF: {error}; --no-pdf writes the HTML only",
                              file=folder.path / PDF) from None
    target.write_bytes(data)
    return pdf_pages(data)


def pdf_pages(data):
    """Number of pages of a PDF (its page tree's /Count), or None when it cannot be read."""
    counts = [int(c) for c in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data)]
    counts += [int(c) for c in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", data)]
    return max(counts) if counts else None


def _list_in_manifest(folder, names):
    """Add the report's files to the manifest's list of the folder's files (atomically)."""
    import json

    from .._output import write_file_atomically

    manifest = dict(folder.manifest)
    manifest[FILES] = sorted(set(manifest.get(FILES, [])) | set(names))
    write_file_atomically(folder.path / MANIFEST, lambda stream: stream.write(json.dumps(manifest, indent=2)),
                          force=True)
