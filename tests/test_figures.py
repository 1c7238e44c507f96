"""Figures: every figure rendered headless from small runs, checked through matplotlib's objects.

What is checked is what a reader relies on: one line / legend entry / panel per arm named as
in the scenario, axis labels with units, bands equal to the percentiles of ``profiles.csv``,
log axes where asked, bars and boxes equal to the tables, heat-map cells equal to the summary,
and captions (model, n, seed, version) in captions.md and in the files' metadata.
"""

import dataclasses
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from PIL import Image  # noqa: E402

import pkpd  # noqa: E402
from conftest import write_pk1cmt_with_drugs  # noqa: E402
from pkpd import figures  # noqa: E402
from pkpd.study.run import run_scenario  # noqa: E402
from pkpd.study.scenario import Arm, load_scenario  # noqa: E402

pytestmark = pytest.mark.models("ketamine_mg_pain")

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
PICKERING_ARMS = ["saline", "ketamine 0.5 mg/kg over 2 h", "ketamine 0.5 mg/kg + MgSO4 3 g"]


@pytest.fixture(scope="module")
def pickering(tmp_path_factory):
    """The default scenario, n = 10, every 3rd output time, written by ``run_scenario`` (with figures).

    The drawing of thresholds and windows is tested on KETAMINE (a threshold 10.5 ng/mL near a window edge at
    10 ng/mL); the shipped scenario puts its sourced levels on S_KETAMINE_VEN (tests/test_threshold_matrix.py)."""
    scenario = load_scenario(SCENARIOS / "pickering2020.toml").with_overrides(n=10)
    scenario = dataclasses.replace(scenario, times=scenario.times[::3], thresholds={"KETAMINE": [10.5], "MAGNESIUM": [1.2]},
                                   windows={"KETAMINE": [(10.0, 150.0)]})
    outdir = tmp_path_factory.mktemp("figures") / "pickering"
    run = run_scenario(scenario, outdir, progress=False)
    return scenario, run, outdir


@pytest.fixture(scope="module")
def sweep():
    scenario = load_scenario(SCENARIOS / "ketamine_sweep.toml").with_overrides(n=10)
    scenario = dataclasses.replace(scenario, times=scenario.times[::6])
    return scenario, run_scenario(scenario, progress=False)


@pytest.fixture(autouse=True)
def _render_and_close():
    yield
    matplotlib.pyplot.close("all")


def drawn(fig):
    """Run the full draw (layout, transforms, markers) without rasterising; return the figure."""
    fig.draw_without_rendering()
    return fig


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
            for t in legend.get_texts()]


def labelled(ax, prefix, kind="collections"):
    return {a.get_label().split("|", 1)[1]: a for a in getattr(ax, kind) if a.get_label().startswith(prefix + "|")}


def labels_top_down(ax):
    """Y tick labels from the top of the axes down."""
    ticks = zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()])
    top_first = sorted(ticks, key=lambda tick: tick[0], reverse=not ax.yaxis_inverted())
    return [text for _, text in top_first]


def time_factor(ax):
    return {"Time (h)": 1.0, "Time (d)": 1 / 24}[ax.get_xlabel()]


def assert_band(collection, x, low, high, rtol=1e-5):
    """The band's polygon passes through (x, low) and (x, high) at every time (profiles.csv keeps 6 digits)."""
    vertices = np.concatenate([path.vertices for path in collection.get_paths()])
    for xi, lo, hi in zip(np.asarray(x), np.asarray(low, float), np.asarray(high, float)):
        ys = vertices[np.abs(vertices[:, 0] - xi) <= 1e-9 * max(1.0, abs(xi)), 1]
        for value in (lo, hi):
            assert ys.size and np.min(np.abs(ys - value)) <= rtol * abs(value) + 1e-300, (xi, value, ys)


# ---------------------------------------------------------------------------
# The written set
# ---------------------------------------------------------------------------


def test_run_writes_png_and_svg_with_captions_naming_model_n_seed_version(pickering):
    scenario, run, outdir = pickering
    folder = outdir / "figures"
    written = run.manifest["figures"]
    stems = [Path(item["file"]).stem for item in written]
    assert stems[0] == "regimen"
    for stem in ("ketamine_linear", "ketamine_log", "norketamine_log", "magnesium_linear", "exposure_ketamine",
                 "attainment_ketamine_within_10_150", "attainment_magnesium_above_1.2", "pain", "adverse_events"):
        assert stem in stems
    # pain is drawn as an effect figure; magnesium sits on a baseline, so no log plot; no sweep, no trial
    assert "pain_linear" not in stems and "magnesium_log" not in stems
    assert not any(s.startswith(("sweep_", "power")) for s in stems)
    captions = (folder / "captions.md").read_text(encoding="utf-8")
    version = pkpd.__version__
    for item in written:
        caption = item["caption"]
        for fact in ("ketamine_mg_pain", "n = 10 ", "seed 2020", f"pkpd {version}"):
            assert fact in caption, (item["file"], fact)
        assert f"`{item['file']}`: {caption}" in captions
        png = folder / item["file"]
        with Image.open(png) as image:
            assert image.info["Description"] == caption
            assert image.info["dpi"][0] == pytest.approx(300, abs=0.5)
            assert image.size[0] <= 300 * figures.style.PAGE_WIDTH_IN + 1
        svg = png.with_suffix(".svg").read_text(encoding="utf-8")
        description = re.search(r"<dc:description>(.*?)</dc:description>", svg, re.S).group(1)
        assert description == caption.replace("&", "&amp;").replace("<", "&lt;")


# ---------------------------------------------------------------------------
# 1. Concentration over time
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("log", [False, True])
def test_concentration_bands_equal_profiles_csv(pickering, log):
    scenario, run, outdir = pickering
    profiles = pd.read_csv(outdir / "profiles.csv")
    fig = drawn(figures.concentration_figure(run, scenario, "KETAMINE", log=log, all_arms=True))
    (ax,) = fig.axes
    # magnesium changes no ketamine concentration: the legend says the third arm's curve is the second's
    # (long entries are wrapped to stay within the figure's width)
    assert [text.replace("\n", " ") for text in legend_texts(fig)] == [
        *PICKERING_ARMS[:2], f"{PICKERING_ARMS[2]} (same curve as {PICKERING_ARMS[1]})",
        "25th-75th percentiles", "5th-95th percentiles"]
    assert ax.get_ylabel() == "Ketamine, racemic, arterial\nplasma (ng/mL)"   # wrapped beside the axis
    assert ax.get_yscale() == ("log" if log else "linear")
    factor = time_factor(ax)
    band50, band90 = labelled(ax, "_band50"), labelled(ax, "_band90")
    medians = {line.get_label(): line for line in ax.lines if line.get_label() in PICKERING_ARMS}
    assert list(band50) == list(band90) == list(medians) == PICKERING_ARMS
    for arm in PICKERING_ARMS:
        rows = profiles[(profiles["arm"] == arm) & (profiles["output"] == "KETAMINE")]
        x = rows["TIME (h)"].to_numpy() * factor
        assert_band(band50[arm], x, rows["P25"], rows["P75"])
        assert_band(band90[arm], x, rows["P5"], rows["P95"])
        line_x, line_y = medians[arm].get_data()
        np.testing.assert_allclose(line_x, x)
        expected = rows["P50"].to_numpy()
        if log:  # zeros are not drawn on a log axis
            expected = np.where(expected > 0, expected, np.nan)
        np.testing.assert_allclose(line_y, expected, rtol=1e-5)
    # threshold and window of the scenario drawn and labelled
    assert [line.get_ydata()[0] for line in ax.lines if line.get_label() == "_threshold"] == [10.5]
    texts = [t.get_text() for t in ax.texts]
    assert "10.5 ng/mL" in texts and "window 10-150 ng/mL" in texts
    # distinct colour, line style and marker per arm
    styles = {(m.get_color(), str(m.get_linestyle()), m.get_marker()) for m in medians.values()}
    assert len(styles) == 3


def test_concentration_leaves_out_arms_where_the_output_is_zero_and_says_so(pickering):
    scenario, run, _ = pickering
    fig = figures.concentration_figure(run, scenario, "KETAMINE")
    (ax,) = fig.axes
    medians = [line.get_label() for line in ax.lines if line.get_label() in PICKERING_ARMS]
    assert medians == PICKERING_ARMS[1:]                         # saline has no ketamine: not drawn
    assert labelled(ax, "_band50").keys() == set(PICKERING_ARMS[1:])
    # the arms keep the colours and markers they have in the other figures
    assert ax.lines[0].get_color() == figures.arm_style(1)["color"]
    caption = next(c for stem, _, c in figures.figure_set(run, scenario) if stem == "ketamine_linear")
    assert "Not drawn: saline (KETAMINE identically 0)." in caption
    # magnesium: every arm has its baseline, so every arm is drawn
    fig = figures.concentration_figure(run, scenario, "MAGNESIUM")
    assert [line.get_label() for line in fig.axes[0].lines if line.get_label() in PICKERING_ARMS] == PICKERING_ARMS


def test_threshold_near_a_window_edge_is_drawn_once(pickering):
    scenario, run, _ = pickering
    (ax,) = figures.concentration_figure(run, scenario, "KETAMINE").axes
    bounds = [line.get_ydata()[0] for line in ax.lines if line.get_label() == "_window_bound"]
    thresholds = [line.get_ydata()[0] for line in ax.lines if line.get_label() == "_threshold"]
    assert thresholds == [10.5] and bounds == [150]              # the window edge at 10 ng/mL is not drawn


def test_log_axis_starts_at_a_stated_fraction_of_the_peak(pickering):
    scenario, run, _ = pickering
    fig = figures.concentration_figure(run, scenario, "KETAMINE", log=True)
    rows = run.profiles[run.profiles["output"] == "KETAMINE"]
    top = rows[["P5", "P50", "P95"]].to_numpy().max()
    assert fig.axes[0].get_ylim()[0] == pytest.approx(top * figures.time_course.LOG_FLOOR_FRACTION)
    caption = next(c for stem, _, c in figures.figure_set(run, scenario) if stem == "ketamine_log")
    assert f"log scale from {top * 1e-3:.3g} ng/mL (1/1000 of the highest value drawn)" in caption


def test_concentration_time_axis_focuses_on_the_infusion_but_draws_everything(pickering):
    scenario, run, _ = pickering
    fig = figures.concentration_figure(run, scenario, "KETAMINE")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "Time (h)" and ax.get_xlim()[1] < 72
    assert ax.lines[0].get_xdata()[-1] == pytest.approx(scenario.times[-1])
    full = figures.concentration_figure(run, scenario, "KETAMINE", focus=False)
    assert full.axes[0].get_xlabel() == "Time (d)"


# ---------------------------------------------------------------------------
# 2. Regimen
# ---------------------------------------------------------------------------


def test_regimen_draws_each_arm_with_labelled_infusion_bars(pickering):
    scenario, _, _ = pickering
    fig = drawn(figures.regimen_figure(scenario))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "Time (h)"
    bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert bold == PICKERING_ARMS
    texts = [t.get_text() for t in ax.texts]
    assert "no drug" in texts
    assert texts.count("ketamine 0.5 mg/kg over 2 h") == 3  # arm name once, dose label twice
    assert "magnesium 3 g MgSO4·7H2O over 30 min" in texts
    bars = labelled(ax, "_dose")
    assert sorted(bars) == ["ketamine 0.5 mg/kg + MgSO4 3 g|0", "ketamine 0.5 mg/kg + MgSO4 3 g|1",
                            "ketamine 0.5 mg/kg over 2 h|0"]

    def start_width(collection):
        (path,) = collection.get_paths()
        x = path.vertices[:, 0]
        return x.min(), x.max() - x.min()

    assert start_width(bars["ketamine 0.5 mg/kg over 2 h|0"]) == pytest.approx((0.5, 2.0))
    assert start_width(bars["ketamine 0.5 mg/kg + MgSO4 3 g|0"]) == pytest.approx((0.0, 0.5))
    assert start_width(bars["ketamine 0.5 mg/kg + MgSO4 3 g|1"]) == pytest.approx((0.5, 2.0))
    assert not fig.pkpd_widened


def test_regimen_bolus_ticks_and_infusion_by_rate(pickering):
    scenario, _, _ = pickering
    custom = dataclasses.replace(scenario, raw={}, arms=[
        Arm("bolus x3", pkpd.Regimen([pkpd.Dose(20.0, "KET_CENT", time=1.0, every=12.0, count=3)])),
        Arm("by rate", pkpd.Regimen([pkpd.Dose(10.0, "KET_CENT", rate=5.0)]))])
    fig = drawn(figures.regimen_figure(custom))
    (ax,) = fig.axes
    (ticks,) = labelled(ax, "_bolus", "lines").values()
    np.testing.assert_allclose(ticks.get_xdata(), [1.0, 13.0, 25.0])
    assert ticks.get_marker() == "|"
    (bar,) = labelled(ax, "_dose")["by rate|0"].get_paths()
    assert np.ptp(bar.vertices[:, 0]) == pytest.approx(2.0)  # 10 mg at 5 mg/h
    texts = [t.get_text() for t in ax.texts]
    assert "ketamine 20 mg bolus, every 12 h ×3" in texts and "ketamine 10 mg at 5 mg/h" in texts


def test_regimen_labels_without_file_text_use_model_units(pickering):
    scenario, _, _ = pickering
    bare = dataclasses.replace(scenario, raw={})
    labels = figures.regimen_labels(bare)
    assert labels["saline"] == []
    assert labels["ketamine 0.5 mg/kg + MgSO4 3 g"] == ["magnesium 12.18 mmol over 30 min",
                                                        "ketamine 0.5 mg/kg over 2 h"]


# ---------------------------------------------------------------------------
# 3. Exposure
# ---------------------------------------------------------------------------


def test_exposure_boxes_match_the_exposure_table(pickering):
    scenario, run, _ = pickering
    fig = drawn(figures.exposure_figure(run, scenario, "KETAMINE"))
    assert [ax.get_xlabel().replace("\n", " ") for ax in fig.axes] == [
        "Ketamine, racemic, arterial plasma: Cmax (ng/mL)", "Ketamine, racemic, arterial plasma: AUC (ng/mL·h)"]
    for ax, metric in zip(fig.axes, ["cmax", "auc"]):
        assert labels_top_down(ax) == PICKERING_ARMS
        medians, points = labelled(ax, "_median", "lines"), labelled(ax, "_points", "lines")
        for arm in PICKERING_ARMS:
            values = run.exposure.query("arm == @arm and output == 'KETAMINE' and metric == @metric")["value"]
            assert medians[arm].get_xdata()[0] == pytest.approx(values.median())
            # n = 10: every subject drawn as a point
            np.testing.assert_allclose(np.sort(points[arm].get_xdata()), np.sort(values.to_numpy()))


# ---------------------------------------------------------------------------
# 4. Target attainment
# ---------------------------------------------------------------------------


def test_attainment_is_the_percentage_of_subjects_inside_the_window(pickering):
    scenario, run, _ = pickering
    fig = drawn(figures.attainment_figure(run, scenario, "KETAMINE", ("within", 10.0, 150.0)))
    (ax,) = fig.axes
    assert legend_texts(fig) == PICKERING_ARMS
    assert ax.get_ylabel() == "Subjects within 10-150 ng/mL (%)"
    lines = {line.get_label(): line for line in ax.lines}
    for arm in PICKERING_ARMS:
        values = run.results[arm].output("KETAMINE")
        expected = 100 * np.mean((values >= 10) & (values <= 150), axis=0)
        np.testing.assert_allclose(lines[arm].get_ydata(), expected)
    assert lines["saline"].get_ydata().max() == 0
    assert lines["ketamine 0.5 mg/kg over 2 h"].get_ydata().max() == 100


# ---------------------------------------------------------------------------
# 5. Effects
# ---------------------------------------------------------------------------


def test_pain_has_one_panel_per_arm_with_bands_from_profiles(pickering):
    scenario, run, _ = pickering
    fig = drawn(figures.pain_figure(run, scenario))
    assert [ax.get_title() for ax in fig.axes] == PICKERING_ARMS
    assert fig.axes[0].get_ylabel() == "Daily pain (NRS 0-10)" and fig.axes[-1].get_xlabel() == "Time (d)"
    profiles = run.profiles[run.profiles["output"] == "PAIN"]
    saline = profiles[profiles["arm"] == "saline"]
    for ax, arm in zip(fig.axes, PICKERING_ARMS):
        assert ax.get_ylim() == (0, 10)
        rows = profiles[profiles["arm"] == arm]
        x = rows["TIME (h)"].to_numpy() / 24
        assert_band(labelled(ax, "_band50")[arm], x, rows["P25"], rows["P75"])
        assert_band(labelled(ax, "_band90")[arm], x, rows["P5"], rows["P95"])
        reference = labelled(ax, "_reference", "lines")
        if arm != "saline":  # the placebo median repeated for comparison
            np.testing.assert_allclose(reference["saline"].get_ydata(), saline["P50"])
    assert legend_texts(fig) == ["median, saline"]


def test_adverse_event_bars_are_mean_peak_probability(pickering):
    scenario, run, _ = pickering
    fig = drawn(figures.adverse_event_figure(run, scenario))
    (ax,) = fig.axes
    assert labels_top_down(ax) == PICKERING_ARMS
    assert "(expected % of subjects)" in ax.get_xlabel()
    bars = labelled(ax, "_incidence", "patches")
    for arm in PICKERING_ARMS:
        expected = 100 * run.results[arm].output("P_PSYCHO").max(axis=1).mean()
        assert bars[arm].get_width() == pytest.approx(expected)
    background = 100 * scenario.model.parameters["P_PSY0"].value     # the fitted background on saline
    assert bars["saline"].get_width() == pytest.approx(background)
    assert bars["ketamine 0.5 mg/kg over 2 h"].get_width() > background


def test_effect_figures_only_when_the_model_has_the_outputs(pickering):
    scenario, run, _ = pickering
    model = dataclasses.replace(scenario.model, outputs={k: v for k, v in scenario.model.outputs.items()
                                                         if v.role not in ("pain_score", "adverse_event_probability")})
    stripped = dataclasses.replace(scenario, model=model, variables=["KETAMINE"])
    stems = []
    for stem, fig, _ in figures.figure_set(run, stripped):
        stems.append(stem)
        matplotlib.pyplot.close(fig)
    assert "pain" not in stems and "adverse_events" not in stems and "ketamine_linear" in stems


# ---------------------------------------------------------------------------
# 6. Sweep
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("output, metric", [("S_KETAMINE_VEN", "time_within_10.5_75"), ("KETAMINE", "auc")])
def test_sweep_heat_map_cells_equal_summary(sweep, output, metric):
    scenario, run = sweep
    sweep_table = scenario.raw["sweep"]
    fig = drawn(figures.sweep_figure(run, scenario, output, metric))
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == [f"every {v}" for v in sweep_table["every"]]
    summary = run.summary.query("output == @output and metric == @metric").set_index("arm")["median"]
    assert labels_top_down(panels[0])[::-1] == sweep_table["amount"]  # the lowest dose at the bottom
    for ax, every in zip(panels, sweep_table["every"]):
        assert [t.get_text() for t in ax.get_xticklabels()] == sweep_table["duration"]
        cells = ax.images[0].get_array()
        for i, amount in enumerate(sweep_table["amount"]):
            for j, duration in enumerate(sweep_table["duration"]):
                arm = sweep_table["name"].format(amount=amount, duration=duration, every=every)
                assert cells[i, j] == pytest.approx(summary[arm])
        assert len(ax.texts) == cells.size
    assert panels[0].get_ylabel() == "Dose" and panels[0].get_xlabel() == "Infusion duration"
    colorbar = next(ax for ax in fig.axes if not ax.images)
    unit = "(h)" if metric.startswith("time") else "(ng/mL·h)"
    assert colorbar.get_xlabel().endswith(unit)


def test_sweep_incidence_heat_map_and_many_arm_layouts(sweep):
    scenario, run = sweep
    arms = [arm.name for arm in scenario.arms]
    assert len(arms) == 18
    fig = drawn(figures.sweep_figure(run, scenario, "P_PSYCHO", "incidence"))
    incidence = figures.adverse_event_incidence(run)["incidence"]
    cells = fig.axes[0].images[0].get_array()
    assert cells[0, 0] == pytest.approx(incidence["0.5 mg/kg over 40 min every 7 d"])
    # more arms than fit one panel: one titled panel per arm, bands still the profiles' percentiles
    fig = drawn(figures.concentration_figure(run, scenario, "KETAMINE"))
    assert [ax.get_title() for ax in fig.axes] == arms
    rows = run.profiles.query("arm == @arms[4] and output == 'KETAMINE'")
    assert_band(labelled(fig.axes[4], "_band50")[arms[4]], rows["TIME (h)"].to_numpy() / 24, rows["P25"],
                rows["P75"])
    # regimen as one row per arm: weekly until 28 d gives 4 infusions, every 35 d one
    fig = drawn(figures.regimen_figure(scenario))
    (ax,) = fig.axes
    assert labels_top_down(ax) == arms
    bars = labelled(ax, "_dose")
    assert len(bars["0.5 mg/kg over 40 min every 7 d|0"].get_paths()) == 4
    assert len(bars["2 mg/kg over 4 h every 35 d|0"].get_paths()) == 1
    assert legend_texts(fig) == ["ketamine"]


# ---------------------------------------------------------------------------
# 7. Trial power
# ---------------------------------------------------------------------------


def power_table():
    rows = []
    for comparison, scale in (("ketamine vs saline", 0.3), ("ketamine + Mg vs saline", 0.5)):
        for n_total in (10, 20, 40):
            power = 1 - np.exp(-scale * n_total / 10)
            rows.append(dict(comparison=comparison, n_total=n_total, power=power, power_low=power - 0.04,
                             power_high=min(power + 0.04, 1.0), mean_estimate=-0.6, sd_estimate=1.1, replicates=200))
    return pd.DataFrame(rows)


def test_power_curve_with_monte_carlo_intervals(pickering):
    table = power_table()
    fig = drawn(figures.power_figure(table))
    (ax,) = fig.axes
    assert legend_texts(fig) == ["ketamine vs saline", "ketamine + Mg vs saline"]
    assert ax.get_xlabel() == "Number of subjects (total)" and ax.get_ylabel() == "Power (%)"
    for container, comparison in zip(ax.containers, ["ketamine vs saline", "ketamine + Mg vs saline"]):
        rows = table[table["comparison"] == comparison]
        line, _, (bars,) = container.lines
        np.testing.assert_allclose(line.get_xdata(), rows["n_total"])
        np.testing.assert_allclose(line.get_ydata(), 100 * rows["power"])
        segments = np.array(bars.get_segments())
        np.testing.assert_allclose(segments[:, 0, 1], 100 * rows["power_low"])
        np.testing.assert_allclose(segments[:, 1, 1], 100 * rows["power_high"])
    # part of the run's set when the run has a power table
    scenario, run, _ = pickering
    captions = {}
    for stem, fig, caption in figures.figure_set(dataclasses.replace(run, power=table), scenario):
        captions[stem] = caption
        matplotlib.pyplot.close(fig)
    assert "200 simulated trials" in captions["power"] and "seed 2020" in captions["power"]


def test_power_marks_the_sample_size_for_80_percent_or_says_it_is_not_reached(pickering):
    table = power_table()   # ketamine vs saline: at most 70 % at n = 40; with Mg: 86 % at n = 40, 63 % at 20
    assert figures.sample_size_for_power(table) == {"ketamine vs saline": None, "ketamine + Mg vs saline": 40.0}
    (ax,) = drawn(figures.power_figure(table)).axes
    needed = {line.get_label() for line in ax.lines if line.get_label().startswith("_needed|")}
    assert needed == {"_needed|ketamine + Mg vs saline"}
    assert [line.get_xdata()[0] for line in ax.lines if line.get_label().startswith("_needed|")] == [40]
    (text,) = [t for t in ax.texts if t.get_gid() == "not_reached"]
    assert text.get_text() == "80 % not reached in the grid (1 of 2 comparisons)"
    (ax,) = figures.power_figure(table[table["comparison"] == "ketamine vs saline"]).axes
    assert [t.get_text() for t in ax.texts if t.get_gid() == "not_reached"] == ["80 % not reached in the grid"]
    scenario, run, _ = pickering
    caption = next(c for stem, fig, c in figures.figure_set(dataclasses.replace(run, power=table), scenario)
                   if stem == "power")
    assert "ketamine vs saline: 80 % not reached in the grid; ketamine + Mg vs saline: n = 40 reaches 80 %" in caption
    from pkpd._cli import _summary_lines   # and the console says it too

    console = _summary_lines(dataclasses.replace(run, power=table), scenario)
    assert re.search(r"power ketamine vs saline +80 % not reached in the grid", console)
    assert re.search(r"power ketamine \+ Mg vs saline +80 % reached at n = 40", console)


def test_adverse_event_bars_are_labelled_as_monte_carlo_uncertainty_of_the_mean(pickering):
    scenario, run, _ = pickering
    (ax,) = figures.adverse_event_figure(run, scenario).axes
    assert "Monte Carlo 95 % interval of the mean over 10 virtual subjects" in ax.get_xlabel()
    caption = next(c for stem, fig, c in figures.figure_set(run, scenario) if stem == "adverse_events")
    assert "Monte Carlo uncertainty of simulating 10 virtual subjects (not the uncertainty of a prediction" in caption


def test_sweep_over_a_model_parameter_is_a_heat_map_axis():
    # magnesium_interaction sweeps ALPHA: its rows are the ALPHA values, its cells the
    # summary medians of those arms; the regimen schematic still shows each arm's doses.
    scenario = load_scenario(SCENARIOS / "magnesium_interaction.toml").with_overrides(n=6)
    scenario = dataclasses.replace(scenario, times=scenario.times[::24])
    run = run_scenario(scenario, progress=False)
    fig = drawn(figures.sweep_figure(run, scenario, "RELIEF", "auc"))
    (ax,) = [ax for ax in fig.axes if ax.images]
    assert ax.get_ylabel() == "ALPHA" and labels_top_down(ax)[::-1] == ["-0.5", "0.0", "1.0"]
    summary = run.summary.query("output == 'RELIEF' and metric == 'auc'").set_index("arm")["median"]
    cells = ax.images[0].get_array()
    for i, alpha in enumerate(["-0.5", "0.0", "1.0"]):
        assert cells[i, 0] == pytest.approx(summary[f"ketamine + MgSO4, ALPHA {alpha}"])
    assert cells[0, 0] < cells[1, 0] < cells[2, 0]  # antagonism < additive < synergy
    bars = labelled(drawn(figures.regimen_figure(scenario)).axes[0], "_dose")
    assert {name.split("|")[0] for name in bars} >= {arm.name for arm in scenario.arms}


# ---------------------------------------------------------------------------
# Issue 20: the points left (grid at dose times, fast-then-slow outputs, per-dose panels, labels)
# ---------------------------------------------------------------------------

INFUSION = """
model = "pk1cmt.toml"
seed = 1
[population]
n = 3
variability = false
[[arms]]
name = "75-min infusion"
doses = [{ drug = "CENT", amount = "10 mg", duration = "75 min" }]
[outputs]
times = { start = "0 h", stop = "6 h", step = "1 h" }
variables = ["CP"]
"""


def median_line(ax, arm):
    return next(line for line in ax.lines if line.get_label() == arm)


@pytest.mark.models("pk1cmt")
def test_concentration_curve_is_exact_at_the_infusion_end(tmp_path):
    # a 75-min infusion on a 1-h grid: the end of the infusion (the peak) is added to the output grid
    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "infusion.toml").write_text(INFUSION)
    scenario = load_scenario(tmp_path / "infusion.toml")
    assert scenario.times.tolist() == [0.0, 1.0, 1.25, 2.0, 3.0, 4.0, 5.0, 6.0]
    run = run_scenario(scenario, progress=False)
    line = median_line(figures.concentration_figure(run, scenario, "CP", focus=False).axes[0], "75-min infusion")
    x, y = line.get_xdata(), line.get_ydata()
    # closed form of a zero-order input into one compartment: R/CL (1 - exp(-CL/V t)), CL 1 L/h, V 20 L
    peak = 10 / 1.25 / 1.0 * (1 - np.exp(-1.0 / 20.0 * 1.25))
    assert x[np.argmax(y)] == 1.25 and y.max() == pytest.approx(peak, rel=1e-6)


def test_fast_then_slow_output_gets_a_panel_on_its_peak(pickering):
    # magnesium: up in 30 min, back to baseline over days; on one axis in days its peak is a few pixels wide
    scenario, run, _ = pickering
    fig = drawn(figures.concentration_figure(run, scenario, "MAGNESIUM"))
    peak_axes, whole = fig.axes
    assert peak_axes.get_xlabel() == "Time (h)" and peak_axes.get_xlim()[1] == fig.pkpd_peak_end
    line = median_line(peak_axes, "ketamine 0.5 mg/kg + MgSO4 3 g")
    x, y = line.get_xdata(), line.get_ydata()
    # the peak is inside the first panel, at least a third of the way from its left edge
    assert fig.pkpd_peak_end / 3 >= x[np.argmax(y)] > 0
    assert median_line(whole, "ketamine 0.5 mg/kg + MgSO4 3 g").get_xdata().tolist() == (x * time_factor(whole)).tolist()
    assert x[np.argmax(y)] <= figures.time_course.PEAK_FRACTION * whole.get_xlim()[1] / time_factor(whole)
    # ketamine (a 2-h infusion, its decline shown over hours) keeps one axes
    assert drawn(figures.concentration_figure(run, scenario, "KETAMINE")).pkpd_peak_end is None


@pytest.mark.parametrize("output", ["P_PSYCHO", "PAIN", "ANALGESIA", "KETAMINE", "exposure MAGNESIUM"])
def test_axis_labels_in_words_are_clear_of_the_legend_and_inside_the_figure(pickering, output):
    scenario, run, _ = pickering
    if output == "exposure MAGNESIUM":
        fig = figures.exposure_figure(run, scenario, "MAGNESIUM")
    elif output == "PAIN":
        fig = figures.pain_figure(run, scenario)
    else:
        fig = figures.concentration_figure(run, scenario, output)
    FigureCanvasAgg(fig).draw()   # laid out and rendered as when saved
    renderer = fig.canvas.get_renderer()
    whole = fig.bbox
    labels = [label for ax in fig.axes for label in (ax.yaxis.label, ax.xaxis.label) if label.get_text()]
    legends = [legend.get_window_extent(renderer) for legend in fig.legends]
    for label in labels:
        box = label.get_window_extent(renderer)
        assert whole.x0 - 1 <= box.x0 and box.x1 <= whole.x1 + 1 and whole.y0 - 1 <= box.y0 and box.y1 <= whole.y1 + 1, \
            label.get_text()
        assert not any(box.overlaps(legend) for legend in legends), label.get_text()
    for legend in legends:
        assert whole.x0 - 1 <= legend.x0 and legend.x1 <= whole.x1 + 1
    if output == "exposure MAGNESIUM":   # the AUC of an endogenous substance: above its baseline, and said so
        assert fig.axes[1].get_xlabel().replace("\n", " ") == "Magnesium, total, plasma: AUC above baseline (mmol/L·h)"
        return
    words = {"P_PSYCHO": "Probability of psychotomimetic\nadverse event (solicited)", "PAIN": "Daily pain (NRS 0-10)",
             "ANALGESIA": "Acute analgesia (fraction)", "KETAMINE": "Ketamine, racemic, arterial\nplasma (ng/mL)"}[output]
    assert fig.axes[0].get_ylabel() == words


REPEATED = """
model = "pk1cmt.toml"
seed = 1
[population]
n = 2
variability = false
[[arms]]
name = "single"
doses = [{ drug = "CENT", amount = "10 mg", duration = "1 h" }]
[[arms]]
name = "every 12 h x3"
doses = [{ drug = "CENT", amount = "10 mg", duration = "1 h", every = "12 h", count = 3 }]
[outputs]
times = { start = "0 h", stop = "36 h", step = "30 min" }
variables = ["CP"]
"""


@pytest.fixture(scope="module")
def repeated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("repeated")
    write_pk1cmt_with_drugs(folder)
    (folder / "repeated.toml").write_text(REPEATED)
    scenario = load_scenario(folder / "repeated.toml")
    return scenario, run_scenario(scenario, progress=False)


def peaks_by_superposition(n_doses, interval=12.0):
    """Cmax after each 1-h infusion of 10 mg into one compartment (CL 1 L/h, V 20 L): the end of each
    infusion, the new dose's rise plus what is left of the earlier ones (closed form)."""
    k = 1.0 / 20.0
    end = 10.0 / 1.0 * (1 - np.exp(-k * 1.0))   # R/CL (1 - exp(-k T)), mg/L
    return [sum(end * np.exp(-k * interval * j) for j in range(n)) for n in range(1, n_doses + 1)]


@pytest.mark.models("pk1cmt")
def test_repeated_regimen_has_one_panel_per_dose(repeated):
    scenario, run = repeated
    fig = drawn(figures.dose_figure(run, scenario, "CP"))
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["dose 1 (at 0 h)", "dose 2 (at 12 h)", "dose 3 (at 1 d)"]
    for ax, peak in zip(axes, peaks_by_superposition(3)):
        line = median_line(ax, "every 12 h x3")
        x, y = line.get_xdata(), line.get_ydata()
        assert x[0] == 0 and x[np.argmax(y)] == 1.0 and y.max() == pytest.approx(peak, rel=1e-6)
        assert ax.get_xlim() == (0, fig.pkpd_span) and fig.pkpd_span <= 12.0
    assert len({ax.get_ylim() for ax in axes}) == 1    # one y axis: a build-up shows
    stems = [stem for stem, _, _ in figures.figure_set(run, scenario)]
    assert "cp_per_dose" in stems
    # no arm repeats a dose: no per-dose figure
    single = dataclasses.replace(scenario, arms=scenario.arms[:1])
    assert figures.dose_figure(run, single, "CP") is None


@pytest.mark.models("pk1cmt")
def test_console_gives_cmax_per_dose_of_a_repeated_regimen(repeated):
    from pkpd._cli import _summary_lines

    scenario, run = repeated
    lines = [line for line in _summary_lines(run, scenario).splitlines() if "per dose" in line]
    assert [line.split()[:5] for line in lines] == [["every", "12", "h", "x3", "CP"]] * 2
    cmax = next(line for line in lines if " cmax " in line)
    assert "per dose 1, 2, 3: median" in cmax and cmax.endswith("mg/L")
    values = [float(v) for v in cmax.split("median ")[1].removesuffix(" mg/L").split(", ")]
    assert values == pytest.approx(peaks_by_superposition(3), rel=1e-3)   # printed with 4 digits


@pytest.mark.models("pk1cmt")
def test_dose_times_join_the_grid_only_up_to_a_limit(tmp_path):
    # a dose every minute for two years: the grid stays as written (the run's memory check speaks, not this)
    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "often.toml").write_text(INFUSION.replace('duration = "75 min" }',
                                                          'duration = "30 s", every = "1 min", until = "730 d" }'))
    assert load_scenario(tmp_path / "often.toml").times.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
