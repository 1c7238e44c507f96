"""Outputs are never half-written and never land on a user's files, whatever the environment.

Every case goes through the command line in process (``pkpd._cli.main``) and checks
the exit code, one line on stderr without a traceback, that nothing of the user's
changed, and that no temporary is left. Signals are raised by the test itself at a
chosen point (``signal.raise_signal`` inside a patched step), never timed. A full
disk, a read-only folder and an unreadable file are test doubles that raise the
OSError the system would raise (the tests may run as root, whom chmod does not stop).
"""

import builtins
import csv
import ctypes
import errno
import io
import json
import os
import signal
import subprocess
import sys
import types

import pandas as pd
import pytest
from matplotlib.figure import Figure

import pkpd._cli
import pkpd.study.run
from conftest import ROOT, write_pk1cmt_with_drugs
from pkpd import _output, figures
from pkpd._cli import main

STUDY = """
model = "pk1cmt.toml"
seed = 1
[population]
n = 3
[[arms]]
name = "oral"
doses = [{ drug = "CENT", amount = "10 mg" }]
[outputs]
times = { start = "0 h", stop = "6 h", step = "1 h" }
"""
DATA = ROOT / "scenarios" / "data" / "example_pk1cmt.csv"


@pytest.fixture()
def study(tmp_path):
    """A tiny scenario (3 subjects, 7 output times) in its own folder, with its model file."""
    folder = tmp_path / "study"
    folder.mkdir()
    write_pk1cmt_with_drugs(folder)
    (folder / "study.toml").write_text(STUDY)
    return folder / "study.toml"


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(DATA.read_bytes())
    return path


@pytest.fixture(autouse=True)
def sigterm_is_not_fatal_to_the_tests():
    """Should pkpd not handle SIGTERM, the test fails instead of the test process dying."""
    def unhandled(signum, frame):
        raise AssertionError("SIGTERM reached the default handler: pkpd did not handle it")
    previous = signal.signal(signal.SIGTERM, unhandled)
    yield
    signal.signal(signal.SIGTERM, previous)


def command(capsys, *argv, code):
    """Run ``pkpd ARGV`` in process; check the exit code and (on failure) one line, no traceback."""
    returned = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert returned == code, err
    if code:
        assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def snapshot(folder):
    """Every path under `folder` (hidden ones too) with its bytes; links as their target."""
    state = {}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(root, name)
            key = os.path.relpath(path, folder)
            if os.path.islink(path):
                state[key] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as stream:
                    state[key] = stream.read()
            else:
                state[key] = "folder"
    return state


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def run_output(study, target, *extra):
    """Write a pkpd output folder at `target` (no figures, to stay fast)."""
    assert main(["run", str(study), "-o", str(target), "--quiet", "--no-figures", *map(str, extra)]) == 0


# ---------------------------------------------------------------------------
# 1. run --force replaces only a folder pkpd wrote

def test_force_replaces_a_folder_pkpd_wrote(study, tmp_path, capsys):
    out = tmp_path / "out"
    run_output(study, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pkpd_output"] is True
    assert sorted(manifest["output_files"]) == ["exposure.csv", "inputs/pk1cmt.toml", "inputs/study.toml",
                                                "population.csv", "profiles.csv", "summary.csv"]
    command(capsys, "run", study, "-o", out, "--quiet", "--no-figures", "--force", "--n", "2", code=0)
    assert json.loads((out / "manifest.json").read_text())["n"] == 2
    assert temporaries(tmp_path) == []


def _user_folder(tmp_path, study):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("three weeks of work\n")
    return folder


def _pkpd_output_with_a_user_file(tmp_path, study):
    folder = tmp_path / "out"
    run_output(study, folder)
    (folder / "notes.txt").write_text("my reading of the results\n")
    return folder


def _pkpd_output_with_a_user_file_in_a_subfolder(tmp_path, study):
    folder = tmp_path / "out"
    run_output(study, folder)
    (folder / "extra").mkdir()
    (folder / "extra" / "keep.csv").write_text("1\n")
    return folder


def _manifest_without_marker(tmp_path, study):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"output_files": []}')
    return folder


def _a_file(tmp_path, study):
    path = tmp_path / "results.csv"
    path.write_text("a,b\n1,2\n")
    return path


def _a_link_to_a_pkpd_output(tmp_path, study):
    run_output(study, tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    return tmp_path / "link"


def _the_scenario_folder(tmp_path, study):
    return study.parent


def _a_parent_of_the_scenario(tmp_path, study):
    return tmp_path


REFUSED = {
    "user_folder": (_user_folder, "has no manifest.json written by pkpd"),
    "pkpd_output_with_a_user_file": (_pkpd_output_with_a_user_file, "holds notes.txt, which pkpd did not write"),
    "user_file_in_a_subfolder": (_pkpd_output_with_a_user_file_in_a_subfolder, "holds extra"),
    "manifest_without_marker": (_manifest_without_marker, "has no manifest.json written by pkpd"),
    "file": (_a_file, "is a file, not an output folder"),
    "symlink": (_a_link_to_a_pkpd_output, "is a symbolic link"),
    "scenario_folder": (_the_scenario_folder, "contains"),
    "parent_of_scenario": (_a_parent_of_the_scenario, "contains"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_force_refuses_anything_but_a_pkpd_output(case, study, tmp_path, capsys):
    make, message = REFUSED[case]
    target = make(tmp_path, study)
    before = snapshot(tmp_path)
    err = command(capsys, "run", study, "-o", target, "--quiet", "--no-figures", "--force", code=2)
    assert err.startswith(f"error: {target}: ") and message in err, err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("where", [".", "", "cwd", "home"])
def test_force_refuses_the_current_and_home_folders(where, study, tmp_path, monkeypatch, capsys):
    # even when the folder looks like a pkpd output in every other way
    folder = tmp_path / "out"
    run_output(study, folder)
    monkeypatch.chdir(tmp_path if where == "home" else folder)
    monkeypatch.setenv("HOME", str(folder))
    before = snapshot(tmp_path)
    target = {"cwd": folder, "home": tmp_path / "study" / ".." / "out"}.get(where, where)
    err = command(capsys, "run", study, "-o", target, "--quiet", "--no-figures", "--force", code=2)
    expected = {".": "is the current folder", "": "-o: the output folder name is empty",
                "cwd": "is the current folder", "home": "is your home folder"}[where]
    assert expected in err, err
    assert snapshot(tmp_path) == before


def test_a_file_added_during_the_run_is_not_replaced(study, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_output(study, out)
    simulate_arms = pkpd.study.run.simulate_arms

    def user_adds_a_file(*args, **kwargs):
        (out / "notes.txt").write_text("added while pkpd ran\n")
        return simulate_arms(*args, **kwargs)

    monkeypatch.setattr(pkpd.study.run, "simulate_arms", user_adds_a_file)
    before_run = snapshot(out)
    err = command(capsys, "run", study, "-o", out, "--quiet", "--no-figures", "--force", code=2)
    assert "holds notes.txt, which pkpd did not write" in err
    assert (out / "notes.txt").read_text() == "added while pkpd ran\n"
    assert {k: v for k, v in snapshot(out).items() if k != "notes.txt"} == before_run
    assert temporaries(tmp_path) == []


# ---------------------------------------------------------------------------
# 2. simulate never overwrites its input, nor an existing file without --force

@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hardlink"])
@pytest.mark.parametrize("force", [False, True])
def test_simulate_refuses_to_overwrite_its_input(spelling, force, data, tmp_path, capsys):
    output = {"same": data, "dotted": tmp_path / "." / "sub" / ".." / "d.csv",
              "symlink": tmp_path / "link.csv", "hardlink": tmp_path / "hard.csv"}[spelling]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(data)
    os.link(data, tmp_path / "hard.csv")
    before = snapshot(tmp_path)
    err = command(capsys, "simulate", "pk1cmt", data, "-o", output, *(["--force"] if force else []), code=2)
    assert "is an input of this command" in err
    assert snapshot(tmp_path) == before


def test_simulate_replaces_an_existing_file_only_with_force(data, tmp_path, capsys):
    out = tmp_path / "o.csv"
    out.write_text("previous results\n")
    err = command(capsys, "simulate", "pk1cmt", data, "-o", out, code=2)
    assert f"error: {out}: output file exists; choose another or pass --force" in err
    assert out.read_text() == "previous results\n"
    command(capsys, "simulate", "pk1cmt", data, "-o", out, "--force", code=0)
    assert len(pd.read_csv(out)) == len(pd.read_csv(data))
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_simulate_output_has_normal_permissions(umask, data, tmp_path, capsys):
    previous = os.umask(umask)
    try:
        command(capsys, "simulate", "pk1cmt", data, "-o", tmp_path / "o.csv", code=0)
    finally:
        os.umask(previous)
    assert (tmp_path / "o.csv").stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------------
# 8. the environment: one line naming the path and the problem, nothing half-written

def test_simulate_output_that_is_a_folder(data, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    err = command(capsys, "simulate", "pk1cmt", data, "-o", tmp_path / "o", code=2)
    assert err == f"error: {tmp_path / 'o'}: is a folder; -o needs a file name\n"
    assert list((tmp_path / "o").iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "fifo", "dangling_link"])
def test_simulate_input_that_is_not_a_readable_file(kind, tmp_path, capsys):
    path = tmp_path / "d.csv"
    {"folder": path.mkdir, "fifo": lambda: os.mkfifo(path),
     "dangling_link": lambda: path.symlink_to(tmp_path / "gone.csv")}[kind]()
    err = command(capsys, "simulate", "pk1cmt", path, "-o", tmp_path / "o.csv", code=2)
    expected = {"folder": "is a folder, not a data file", "fifo": "not a regular file",
                "dangling_link": "data file not found"}[kind]
    assert err.startswith(f"error: {path}: {expected}"), err
    assert not (tmp_path / "o.csv").exists()


def test_unreadable_input_file(data, study, tmp_path, monkeypatch, capsys):
    # as root a chmod 000 file stays readable, so the test double raises what a user would get
    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    with monkeypatch.context() as patch:
        patch.setattr(pd, "read_csv", denied)
        err = command(capsys, "simulate", "pk1cmt", data, "-o", tmp_path / "o.csv", code=2)
    assert err == f"error: {data}: cannot read (permission denied)\n"
    opener = io.open

    def scenario_denied(file, *args, **kwargs):
        if os.fspath(file) == str(study):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        return opener(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", scenario_denied)
    monkeypatch.setattr(builtins, "open", scenario_denied)
    err = command(capsys, "run", study, "-o", tmp_path / "out", code=2)
    assert err.startswith("error: ") and str(study.name) in err and "permission denied" in err.lower(), err
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "out").exists()


@pytest.fixture()
def read_only(monkeypatch):
    """Make a folder refuse new files and folders as a read-only one does (even for root)."""
    def make(folder):
        folder = str(folder)
        for name in ("open", "mkdir"):
            original = getattr(os, name)

            def refusing(path, *args, original=original, **kwargs):
                if os.path.dirname(os.path.abspath(os.fspath(path))) == folder:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
                return original(path, *args, **kwargs)

            monkeypatch.setattr(os, name, refusing)
    return make


def test_read_only_output_folder(data, study, tmp_path, read_only, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    read_only(folder)
    err = command(capsys, "simulate", "pk1cmt", data, "-o", folder / "o.csv", code=2)
    assert err == f"error: {folder / 'o.csv'}: permission denied\n"
    err = command(capsys, "run", study, "-o", folder / "out", "--quiet", "--no-figures", code=2)
    assert err == f"error: {folder / 'out'}: permission denied\n"
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_for_real(data, tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        err = command(capsys, "simulate", "pk1cmt", data, "-o", folder / "o.csv", code=2)
    finally:
        folder.chmod(0o755)
    assert "permission denied" in err and list(folder.iterdir()) == []


def fill_the_disk(monkeypatch):
    """From now on every CSV write stops half-way with ENOSPC, after writing a first chunk."""
    def write_then_fail(frame, path_or_stream, **options):
        chunk = frame.head(1).to_string()
        if isinstance(path_or_stream, (str, os.PathLike)):
            with open(path_or_stream, "w") as stream:
                stream.write(chunk)
        else:
            path_or_stream.write(chunk)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", write_then_fail)


def test_full_disk_while_simulate_writes(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o.csv"
    out.write_text("previous results\n")
    fill_the_disk(monkeypatch)
    err = command(capsys, "simulate", "pk1cmt", data, "-o", out, "--force", code=2)
    assert err == f"error: {out}: no space left on device\n"
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "o.csv"]


def test_full_disk_while_run_writes(study, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_output(study, out)
    before = snapshot(tmp_path)
    fill_the_disk(monkeypatch)
    err = command(capsys, "run", study, "-o", out, "--quiet", "--no-figures", "--force", code=2)
    assert err == f"error: {out}: no space left on device\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["not_utf8", "deeply_nested"])
def test_unreadable_scenario_text(case, tmp_path, capsys):
    path = tmp_path / "study.toml"
    if case == "not_utf8":
        path.write_bytes(STUDY.encode("utf-8").replace(b'"oral"', b'"or\xe9al"'))
    else:
        path.write_text(STUDY + "x = " + "[" * 5000 + "]" * 5000 + "\n")
    for verb in ("validate", "run"):
        argv = [verb, path] + (["-o", tmp_path / "out"] if verb == "run" else [])
        err = command(capsys, *argv, code=2)
        assert err.startswith(f"error: {path}: ") or err.startswith(f"error: {path.name}: "), err
    assert not (tmp_path / "out").exists()


def test_out_of_memory_is_one_line(study, tmp_path, monkeypatch, capsys):
    def exhausted(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(pkpd.study.run, "simulate_arms", exhausted)
    err = command(capsys, "run", study, "-o", tmp_path / "out", "--quiet", code=2)
    assert err.startswith(f"error: {study}: not enough memory")
    assert not (tmp_path / "out").exists() and temporaries(tmp_path) == []


def test_a_defect_of_pkpd_is_labelled_as_such(study, tmp_path, monkeypatch, capsys):
    def defect(*args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(pkpd.study.run, "simulate_arms", defect)
    err = command(capsys, "run", study, "-o", tmp_path / "out", "--quiet", code=1)
    assert err.startswith("error: internal error in pkpd (TypeError: unsupported operand); please report it")
    monkeypatch.setenv("PKPD_DEBUG", "1")
    with pytest.raises(TypeError):
        main(["run", str(study), "-o", str(tmp_path / "out"), "--quiet"])


# ---------------------------------------------------------------------------
# 10, 11. SIGINT and SIGTERM: exit 130 / 143, nothing written, no temporaries

SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}


def _signal_after_first_write(monkeypatch, signum):
    """The first CSV is written in full, then `signum` arrives (as if from the terminal or `kill`)."""
    to_csv = pd.DataFrame.to_csv

    def write_then_signal(frame, *args, **kwargs):
        result = to_csv(frame, *args, **kwargs)
        signal.raise_signal(signum)
        return result

    monkeypatch.setattr(pd.DataFrame, "to_csv", write_then_signal)


@pytest.mark.parametrize("name", list(SIGNALS))
def test_signal_while_run_writes(name, study, tmp_path, monkeypatch, capsys):
    signum, code = SIGNALS[name]
    out = tmp_path / "out"
    run_output(study, out)
    before = snapshot(tmp_path)
    _signal_after_first_write(monkeypatch, signum)
    err = command(capsys, "run", study, "-o", out, "--quiet", "--no-figures", "--force", "--n", "2", code=code)
    assert err == f"interrupted ({name}); no output written\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", list(SIGNALS))
def test_signal_while_simulate_writes(name, data, tmp_path, monkeypatch, capsys):
    signum, code = SIGNALS[name]
    _signal_after_first_write(monkeypatch, signum)
    err = command(capsys, "simulate", "pk1cmt", data, "-o", tmp_path / "o.csv", code=code)
    assert err == f"interrupted ({name}); no output written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


@pytest.mark.parametrize("name", list(SIGNALS))
def test_signal_while_the_output_folder_is_swapped(name, study, tmp_path, monkeypatch, capsys):
    # arriving between moving the old output aside and renaming the new one into place,
    # the signal waits until the swap is complete: a whole new output, no .out.old-PID left
    signum, code = SIGNALS[name]
    out = tmp_path / "out"
    run_output(study, out)
    replace = os.replace

    def signal_mid_swap(source, destination, **options):
        replace(source, destination, **options)
        if ".old-" in os.fspath(destination):
            signal.raise_signal(signum)

    monkeypatch.setattr(os, "replace", signal_mid_swap)
    err = command(capsys, "run", study, "-o", out, "--quiet", "--no-figures", "--force", "--n", "2", code=code)
    assert err == f"interrupted ({name}); after writing {out}\n"
    assert json.loads((out / "manifest.json").read_text())["n"] == 2
    assert _output.foreign_content(out) is None
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("then", ["goes_on", "fails"])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_signal_swallowed_during_compilation_still_stops_the_run(name, then, study, tmp_path, monkeypatch, capsys):
    # numba compiles through llvmlite, which calls back into Python via ctypes (its object
    # cache hooks); an exception raised in such a callback is printed and dropped, and the run
    # went on to exit 0, or numba failed later ("no compiled object yet for <Library ...>")
    signum, code = SIGNALS[name]
    callback = ctypes.CFUNCTYPE(None)(lambda: signal.raise_signal(signum))
    simulate_arms = pkpd.study.run.simulate_arms

    def compile_then_simulate(*args, **kwargs):
        callback()  # the Interrupted raised by the handler inside is lost, as in compilation
        if then == "fails":
            raise RuntimeError("no compiled object yet for <Library 'queue_first'>")
        return simulate_arms(*args, **kwargs)

    monkeypatch.setattr(pkpd.study.run, "simulate_arms", compile_then_simulate)
    err = command(capsys, "run", study, "-o", tmp_path / "out", "--quiet", "--no-figures", code=code)
    assert err == f"interrupted ({name}); no output written\n"
    assert not (tmp_path / "out").exists() and temporaries(tmp_path) == []


def test_stale_temporaries_of_dead_processes_are_removed(study, data, tmp_path, capsys):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead = int(finished.stdout)
    (tmp_path / f".out.tmp-{dead}").mkdir()
    (tmp_path / f".out.tmp-{dead}" / "profiles.csv").write_bytes(b"")
    (tmp_path / f".o.csv.tmp-{dead}").write_text("ID,TIME\n1,")
    keep = [".out.tmp-1", ".out.tmp-x", f".other.tmp-{dead}", f".out.tmp-{dead}.mine", "notes.tmp-1"]
    for name in keep:  # a live process (init), or names not exactly ours
        (tmp_path / name).write_text("not pkpd's\n")
    run_output(study, tmp_path / "out")
    command(capsys, "simulate", "pk1cmt", data, "-o", tmp_path / "o.csv", code=0)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".") or "tmp" in p.name) == sorted(keep)


def test_an_interrupted_swap_is_undone_by_the_next_run(study, tmp_path):
    # a process killed between the two renames left the old output as .out.old-PID and no out
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    run_output(study, tmp_path / "out")
    previous = snapshot(tmp_path / "out")
    os.rename(tmp_path / "out", tmp_path / f".out.old-{int(finished.stdout)}")
    _output.remove_stale_temporaries(tmp_path / "out")
    assert snapshot(tmp_path / "out") == previous and temporaries(tmp_path) == []


# ---------------------------------------------------------------------------
# 12. CSV cells are never spreadsheet formulas; figures are byte-for-byte reproducible

def test_formula_cells_are_escaped_and_numbers_kept():
    frame = pd.DataFrame({"arm": ["=1+2", "+cmd", "-x", "@SUM(A1)", "\tx", "\rx", "ok", "-2", "+3", "1-2"],
                          "value": [-1.5, 2, -3, 4, 5, 6, 7, 8, 9, -1e-12], "=name": range(10)})
    escaped = _output.neutralise_formulas(frame)
    assert list(escaped.columns) == ["arm", "value", "'=name"]
    assert list(escaped["arm"]) == ["'=1+2", "'+cmd", "'-x", "'@SUM(A1)", "'\tx", "'\rx", "ok", "-2", "+3", "1-2"]
    assert list(frame["arm"])[0] == "=1+2"  # the caller's frame is left as it was
    stream = io.StringIO()
    _output.write_csv(frame.drop(index=5), stream)
    header, *rows = csv.reader(io.StringIO(stream.getvalue(), newline=""))
    assert [row[0] for row in rows] == ["'=1+2", "'+cmd", "'-x", "'@SUM(A1)", "'\tx", "ok", "-2", "+3", "1-2"]
    assert [row[1] for row in rows] == ["-1.5", "2.0", "-3.0", "4.0", "5.0", "7.0", "8.0", "9.0", "-1e-12"]


def test_arm_names_are_not_formulas_in_run_tables(study, tmp_path, capsys):
    study.write_text(STUDY.replace('name = "oral"', 'name = "=HYPERLINK(\\"http://x\\")"'))
    command(capsys, "run", study, "-o", tmp_path / "out", "--quiet", "--no-figures", code=0)
    for table in ("profiles", "exposure", "summary"):
        written = pd.read_csv(tmp_path / "out" / f"{table}.csv", dtype=str, keep_default_na=False)
        assert set(written["arm"]) == {"'=HYPERLINK(\"http://x\")"}, table
    assert float(pd.read_csv(tmp_path / "out" / "summary.csv")["median"].iloc[0]) >= 0


def test_figures_are_byte_for_byte_reproducible(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        fig = Figure(figsize=(2, 2))
        axes = fig.add_subplot()
        axes.fill_between([0, 1, 2], [0, 1, 0], [1, 2, 1], label="_band50|arm")
        axes.plot([0, 1, 2], [0.5, 1.5, 0.5], marker="o")
        axes.set_title("KETAMINE")
        figures.save_figure(fig, tmp_path / folder, "f", "caption")
    for suffix in ("svg", "png"):
        assert (tmp_path / "a" / f"f.{suffix}").read_bytes() == (tmp_path / "b" / f"f.{suffix}").read_bytes()


def test_an_interrupted_process_ends_without_noise(monkeypatch, capsys):
    # objects that llvmlite left half-built when compilation was cut short are freed as the
    # process ends, and their destructors fail ("Exception ignored in ..."): not worth a word
    monkeypatch.setattr(pkpd._cli, "main", lambda: 130)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    with pytest.raises(SystemExit) as ended:
        pkpd._cli.console()
    assert ended.value.code == 130
    try:
        raise AttributeError("'PipelineTuningOptions' object has no attribute '_as_parameter_'")
    except AttributeError as error:
        sys.unraisablehook(types.SimpleNamespace(exc_type=type(error), exc_value=error, exc_traceback=None,
                                                 err_msg="Exception ignored in", object=None))
    assert capsys.readouterr().err == ""
