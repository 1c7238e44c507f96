"""The sections of a report: each is a loader (folder -> template context, or None to leave the
section out) and a template block ``templates/sections/NAME.html.j2``.

:data:`SECTIONS` lists them in report order. A section whose input is not in the run folder
(``power.csv`` of a run without a ``[trial]``, ``search.csv`` of a run without a search)
returns None and is not rendered, so adding a section is one loader here, one entry in
:data:`SECTIONS` and one template file.
"""

import base64
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

import numpy as np
import pandas as pd

from ..study.run import PACKAGES
from ._diagram import diagram_figure
from ._folder import RunFolder

PNG_DPI = 300              # the figures' resolution (pkpd.figures.save_figure)
POWER_TARGET = 0.8
ASSUMPTION = re.compile(r"\bASSUM(?:PTION|ED)S?\b")
DOI = re.compile(r"doi:\s*(10\.\d{4,9}/[^\s,;)]+[^\s,;).])", re.IGNORECASE)
PMID = re.compile(r"PMID:?\s*(\d{6,9})")
CITATION = re.compile(r"([A-Z][A-Za-z\u00C0-\u017F'\-]+(?: (?:et al\.?|and|&) [A-Z][A-Za-z\-]+)?,? \(?(?:19|20)\d\d[a-z]?)")


@dataclass(frozen=True)
class Section:
    """One report section: its anchor and heading, the loader that returns its context (None: the
    run has nothing for it) and its template (``templates/sections/TEMPLATE.html.j2``; default: name)."""
    name: str
    title: str
    load: Callable[[RunFolder], dict | None]
    template: str = ""

    @property
    def template_file(self):
        return f"sections/{self.template or self.name}.html.j2"


# ---------------------------------------------------------------------------
# helpers


def data_uri(data, mime):
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def png_width_in(data):
    """Width in inches of a PNG saved at PNG_DPI (from its IHDR chunk)."""
    width = struct.unpack(">I", data[16:20])[0]
    return width / PNG_DPI


def number(value, digits=4):
    """A number as short text ('–' for a missing one)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def _scenario_question(text):
    """The comment block that opens a scenario file: the question it asks (``#`` removed)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if lines or stripped:
                break
            continue
        lines.append(stripped.lstrip("#").strip())
    return " ".join(" ".join(lines).split())


def _title(folder):
    scenario = folder.manifest["scenario"]
    return scenario.get("description") or scenario["file"]


# ---------------------------------------------------------------------------
# loaders


def question_section(folder):
    info = folder.manifest
    return {"question": _scenario_question(folder.scenario_text) or _title(folder),
            "answer": answer_paragraph(folder), "n": info["n"], "seed": info["seed"],
            "warnings": info.get("warnings", [])}


def answer_paragraph(folder):
    """One paragraph from the run's numbers: per arm the first concentration's Cmax, the fraction of
    subjects reaching each level, adverse-event incidence; the trial's power, when there is one."""
    summary = folder.table("summary.csv")
    model = folder.model
    sentences = [f"In {folder.manifest['n']} virtual subjects per arm (the same subjects in every arm; model "
                 f"{model.name}, seed {folder.manifest['seed']}):"]
    concentration = None
    if summary is not None:
        concentration = next((o for o in summary["output"].unique()
                              if o in model.outputs and model.outputs[o].role == "concentration"
                              and _cmax_positive(summary, o)), None)
    for arm in folder.manifest["arms"]:
        name = arm["name"]
        if not arm["doses"]:
            sentences.append(f"{name}: no drug given.")
            continue
        parts = []
        if concentration is not None:
            row = _row(summary, name, concentration, "cmax")
            if row is not None:
                title = model.outputs[concentration].title.lower()
                parts.append(f"median peak {title} {number(row['median'], 3)} {row['unit']} "
                             f"(90 % of subjects {number(row['p5'], 3)}-{number(row['p95'], 3)})")
            for _, level in summary[(summary["arm"] == name) & (summary["output"] == concentration)
                                    & summary["metric"].str.startswith(("fraction_reaching", "fraction_entering"))].iterrows():
                what = "reach" if level["metric"].startswith("fraction_reaching") else "enter the window"
                parts.append(f"{100 * level['median']:.0f} % {what} {level['level']}")
        for output, spec in model.outputs.items():
            if spec.role == "adverse_event_probability" and summary is not None:
                row = _row(summary, name, output, "cmax")
                if row is not None:
                    parts.append(f"expected {spec.event} incidence {100 * row['mean']:.1f} %")
        sentences.append(f"{name}: {'; '.join(parts) or 'see the tables'}.")
    power = folder.table("power.csv")
    if power is not None:
        for comparison, needed in sample_size_needed(power).items():
            sentences.append(f"Power of {comparison}: {needed}.")
    return " ".join(sentences)


def _cmax_positive(summary, output):
    rows = summary[(summary["output"] == output) & (summary["metric"] == "cmax")]
    return bool((rows["median"] > 0).any())


def _row(summary, arm, output, metric):
    rows = summary[(summary["arm"] == arm) & (summary["output"] == output) & (summary["metric"] == metric)]
    return rows.iloc[0] if len(rows) else None


def sample_size_needed(power, target=POWER_TARGET):
    """{comparison: 'N subjects in total reach 80 %' or 'not reached in the grid (at most P % at N)'}."""
    found = {}
    for comparison, rows in power.groupby("comparison", sort=False):
        rows = rows.sort_values("n_total")
        reached = rows[rows["power"] >= target]
        if len(reached):
            found[comparison] = (f"{int(reached['n_total'].iloc[0])} subjects in total reach {100 * target:g} % "
                                 f"(estimated power {100 * reached['power'].iloc[0]:.0f} %)")
        else:
            best = rows.loc[rows["power"].idxmax()]
            found[comparison] = (f"{100 * target:g} % not reached in the grid (at most {100 * best['power']:.0f} % "
                                 f"at {int(best['n_total'])} subjects)")
    return found


def regimen_section(folder):
    rows = []
    for arm in folder.manifest["arms"]:
        if not arm["doses"]:
            rows.append(dict.fromkeys(("drug", "per_kg", "at_median", "rate", "duration", "start", "repeat"), "–")
                        | {"arm": arm["name"], "written": "no drug"})
        for dose in arm["doses"]:
            resolved = dose["resolved"]
            unit, time_unit = resolved["unit"], resolved["time_unit"]
            repeat = "once"
            if dose.get("every") and (dose.get("count", 1) > 1 or dose.get("until") is not None):
                repeat = f"every {number(dose['every'])} {time_unit}, {resolved['administrations']:g} doses"
            rows.append({
                "arm": arm["name"], "drug": resolved["drug"], "written": resolved.get("written", ""),
                "per_kg": f"{number(resolved['amount_per_kg'])} {unit}/kg" if resolved["amount_per_kg"] is not None else "–",
                "at_median": (f"{number(resolved['amount_at_median_weight'])} {unit}"
                              if resolved["amount_at_median_weight"] is not None else "–"),
                "rate": (f"{number(resolved['rate_per_kg'])} {unit}/kg/{time_unit} = "
                         f"{number(resolved['rate_at_median_weight'])} {unit}/{time_unit}"
                         if resolved["rate_per_kg"] is not None else "bolus"),
                "duration": f"{number(dose['duration'])} {time_unit}" if dose.get("duration") else "–",
                "start": f"{number(dose.get('start') or 0)} {time_unit}", "repeat": repeat})
    weights = {d["resolved"]["median_weight_kg"] for arm in folder.manifest["arms"] for d in arm["doses"]}
    weights.discard(None)
    times = folder.manifest["times"]
    return {"rows": rows, "median_weight": number(next(iter(weights)), 3) if weights else None,
            "times": f"{number(times['start'])}-{number(times['stop'])} {times['unit']}, {times['count']} output times"}


def model_section(folder):
    model = folder.model
    info = folder.manifest["model"]
    figure = diagram_figure(model, _reported_outputs(folder))
    buffer = BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    parameters = []
    for name, recorded in info["parameters"].items():
        described = model.parameters.get(name)
        parameters.append({"name": name, "value": number(recorded["value"], 6), "unit": recorded["unit"],
                           "description": described.description if described else "",
                           "source": recorded["source"], "reliability": recorded["reliability"] or "–"})
    compartments = [{"number": model.numbers.get(c, ""), "name": c, "unit": model.compartment_units.get(c, ""),
                     "ode": model.odes[c]} for c in model.compartments]
    outputs = [{"name": name, "label": o.label, "role": o.role, "expression": o.expression}
               for name, o in model.outputs.items()]
    return {"name": model.name, "description": model.description, "file": info["file"], "method": info["method"],
            "rtol": info["rtol"], "atol": info["atol"],
            "diagram": data_uri(buffer.getvalue(), "image/svg+xml"), "compartments": compartments,
            "derived": [{"name": k, "expression": v} for k, v in model.derived.items()],
            "outputs": outputs, "parameters": parameters,
            "dosing": [{"compartment": c, "modifiers": ", ".join(f"{k} = {v}" for k, v in m.items())}
                       for c, m in model.dosing.items()]}


def _reported_outputs(folder):
    summary = folder.table("summary.csv")
    outputs = list(dict.fromkeys(summary["output"])) if summary is not None else []
    return [o for o in outputs if o in folder.model.outputs] or None


def assumptions_section(folder):
    """Every text of the inputs that states an assumption: parameter, variability and residual
    sources, covariate sources, and the scenario's opening comment."""
    found = []
    model_info = folder.manifest["model"]
    for name, parameter in model_info["parameters"].items():
        if ASSUMPTION.search(parameter["source"] or "") or parameter["reliability"] == "assumption":
            found.append({"where": f"parameter {name}", "text": parameter["source"]})
        if parameter["reliability"] == "override":
            found.append({"where": f"parameter {name}", "text": "value set for this run (override), not the file's"})
    for kind, block in (model_info.get("variability") or {}).items():
        if ASSUMPTION.search(str(block.get("source", ""))):
            found.append({"where": f"variability ({kind.upper()})", "text": block["source"]})
    for output, block in (model_info.get("residual") or {}).items():
        if ASSUMPTION.search(str(block.get("source", ""))):
            found.append({"where": f"residual error of {output}", "text": block["source"]})
    population = folder.table("population.csv")
    if population is not None:
        for _, row in population.iterrows():
            if ASSUMPTION.search(str(row["source"])):
                found.append({"where": f"covariate {row['covariate']}", "text": row["source"]})
    question = _scenario_question(folder.scenario_text)
    for sentence in re.split(r"(?<=[.;:])\s+", question):
        if ASSUMPTION.search(sentence):
            found.append({"where": f"scenario {folder.manifest['scenario']['file']}", "text": sentence})
    return {"entries": found} if found else None


def population_section(folder):
    table = folder.table("population.csv")
    if table is None:
        return None
    rows = [{"covariate": r["covariate"], "unit": "" if pd.isna(r["unit"]) else r["unit"],
             "distribution": "" if pd.isna(r["distribution"]) else r["distribution"],
             "median": number(r["median"], 3), "range": f"{number(r['p5'], 3)}-{number(r['p95'], 3)}",
             "source": "" if pd.isna(r["source"]) else r["source"]} for _, r in table.iterrows()]
    return {"rows": rows, "n": folder.manifest["n"]}


def variability_section(folder):
    info = folder.manifest["model"]
    blocks = []
    for kind, block in (info.get("variability") or {}).items():
        omega = np.asarray(block.get("omega", []), dtype=float)
        forms = block.get("forms") or ["exp"] * len(block.get("parameters", []))
        rows = []
        for index, name in enumerate(block.get("parameters", [])):
            variance = float(omega[index, index]) if omega.size else float("nan")
            cv = (100 * np.sqrt(np.expm1(variance)) if forms[index] == "exp" else float("nan"))
            correlated = [block["parameters"][j] for j in range(len(omega)) if j != index and omega[index, j] != 0]
            rows.append({"parameter": name, "omega2": number(variance), "cv": number(cv, 3) if np.isfinite(cv) else "–",
                         "form": forms[index], "correlated": ", ".join(correlated) or "–"})
        blocks.append({"kind": {"iiv": "Between subjects (IIV)", "iov": "Between occasions (IOV)"}.get(kind, kind),
                       "rows": rows, "source": block.get("source", "")})
    residual = [{"output": name, "additive": number(r.get("additive", 0)), "proportional": number(r.get("proportional", 0)),
                 "source": r.get("source", "")} for name, r in (info.get("residual") or {}).items()]
    if not blocks and not residual:
        return None
    return {"blocks": blocks, "residual": residual, "applied": folder.manifest.get("variability", True)}


def figures_section(folder):
    figures = []
    for number_, entry in enumerate(folder.manifest.get("figures", []), start=1):
        data = folder.figure_path(entry["file"]).read_bytes()
        figures.append({"number": number_, "file": entry["file"], "caption": entry["caption"],
                        "uri": data_uri(data, "image/png"), "width_in": round(png_width_in(data), 3)})
    return {"figures": figures} if figures else None


def summary_section(folder):
    """Per output: arms as rows, metrics as columns, each cell the median (5th-95th percentiles)."""
    summary = folder.table("summary.csv")
    if summary is None:
        return None
    model = folder.model
    tables = []
    for output, rows in summary.groupby("output", sort=False):
        metrics = list(dict.fromkeys(rows["metric"]))
        header = []
        for metric in metrics:
            first = rows[rows["metric"] == metric].iloc[0]
            unit = first["unit"] if isinstance(first["unit"], str) and first["unit"] != "1" else ""
            level = first.get("level")
            # fraction_reaching_10.5 -> "reaching 10.5 ng/mL"; auc of an endogenous substance -> "auc above baseline MG0"
            label = (metric.replace("_", " ") if not isinstance(level, str)
                     else f"{metric.split('_')[1] if '_' in metric else metric} {level}")
            header.append(f"{label} ({unit})" if unit else label)
        body = []
        for arm, arm_rows in rows.groupby("arm", sort=False):
            cells = []
            for metric in metrics:
                row = arm_rows[arm_rows["metric"] == metric]
                if row.empty:
                    cells.append("–")
                    continue
                row = row.iloc[0]
                if np.isfinite(row["p5"]):
                    cells.append(f"{number(row['median'], 3)} ({number(row['p5'], 3)}-{number(row['p95'], 3)})")
                else:
                    cells.append(f"{100 * row['median']:.0f} %" if metric.startswith("fraction") else number(row["median"], 3))
            body.append({"arm": arm, "cells": cells})
        label = model.outputs[output].label if output in model.outputs else output
        tables.append({"output": output, "label": label, "header": header, "rows": body})
    return {"tables": tables}


def power_section(folder):
    power = folder.table("power.csv")
    if power is None:
        return None
    return {"needed": sample_size_needed(power), "table": _html_table(power)}


def csv_section(file, note):
    """A loader for a table another part of pkpd writes (search, uncertainty, sensitivity): the
    table itself, when the run has it."""
    def load(folder):
        table = folder.table(file)
        if table is None:
            return None
        return {"file": file, "note": note, "table": _html_table(table)}
    return load


def _html_table(table, rows=60):
    shown = table.head(rows)
    return {"columns": list(shown.columns),
            "rows": [[number(v) if isinstance(v, float) else v for v in record] for record in shown.itertuples(index=False)],
            "more": max(0, len(table) - rows)}


def reproducibility_section(folder):
    info = folder.manifest
    inputs = info["report_inputs"]
    command = info.get("command") or f"pkpd run {inputs['scenario']} -o OUTDIR --n {info['n']} --seed {info['seed']}"
    overrides = [f"--set {name}={p['value']:g}" for name, p in info["model"]["parameters"].items()
                 if p["reliability"] == "override"]
    again = f"pkpd run {folder.path.name}/{inputs['scenario']} -o NEW_FOLDER --n {info['n']} --seed {info['seed']}"
    if overrides and "--set" not in command:
        again += " " + " ".join(overrides)
    versions = [{"name": name, "version": info["versions"].get(name) or "not installed"}
                for name in [*PACKAGES, "python"] if name in info["versions"]]
    hashes = [{"what": f"scenario {info['scenario']['file']}", "sha256": info["scenario"]["sha256"]},
              {"what": f"model {info['model']['file']}", "sha256": info["model"]["sha256"]}]
    hashes += [{"what": f"model {arm['model']['file']} (arm {arm['name']})", "sha256": arm["model"]["sha256"]}
               for arm in info["arms"] if "model" in arm]
    return {"command": command, "again": again, "versions": versions, "hashes": hashes, "seed": info["seed"],
            "created": info.get("created_utc"), "wall_time": info.get("wall_time_s"), "n": info["n"]}


def references_section(folder):
    """DOIs and PMIDs named in the model file and the scenario, with the citation before each."""
    found = {}
    for text in (folder.model.source_text, folder.scenario_text):
        text = " ".join(text.split())
        for pattern, kind in ((DOI, "doi"), (PMID, "pmid")):
            for match in pattern.finditer(text):
                key = (kind, match.group(1).rstrip("."))
                if key in found:
                    continue
                before = CITATION.findall(text[max(0, match.start() - 160):match.start()])
                found[key] = before[-1].rstrip(" (,") if before else ""
    references = [{"citation": citation, "kind": kind, "id": ident,
                   "url": f"https://doi.org/{ident}" if kind == "doi" else f"https://pubmed.ncbi.nlm.nih.gov/{ident}/"}
                  for (kind, ident), citation in found.items()]
    references.sort(key=lambda r: (r["citation"] or "~").lower())
    return {"references": references} if references else None


SECTIONS = [
    Section("question", "Question and answer", question_section),
    Section("regimen", "Regimens", regimen_section),
    Section("model", "Model", model_section),
    Section("assumptions", "Assumptions", assumptions_section),
    Section("population", "Population", population_section),
    Section("variability", "Variability", variability_section),
    Section("figures", "Figures", figures_section),
    Section("summary", "Summary tables", summary_section),
    Section("power", "Trial power", power_section),
    Section("search", "Regimen search", csv_section("search.csv", "Candidate regimens evaluated on common virtual subjects."), "table"),
    Section("uncertainty", "Parameter uncertainty", csv_section("uncertainty.csv", "Intervals over parameter draws (outer loop)."), "table"),
    Section("sensitivity", "Sensitivity", csv_section("sensitivity.csv", "Sensitivity of the outcomes to each parameter."), "table"),
    Section("reproducibility", "Reproducibility", reproducibility_section),
    Section("references", "References", references_section),
]
