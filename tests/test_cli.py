"""The tempipe command: outputs written, failures reported, exit codes."""

import json
import subprocess
import sys

import pandas as pd

from tempipe.cli import main
from tempipe.shape_model import ShapeModel


def test_demo_analysis_writes_outputs(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["analyze", "--demo", "hot-injection", "--n-images", "1", "--out", str(out),
                 "--quiet"]) == 0
    table = pd.read_parquet(out / "particles.parquet")
    csv = pd.read_csv(out / "particles.csv")
    assert len(table) == len(csv) > 100
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["n_particles"] == len(table)
    size = summary["overall"]["major_axis"]
    assert size["mean_nm"] == table["major_axis_length_nm"].mean()
    truth = pd.read_csv(sorted((out / "images").glob("*.csv"))[0])
    assert abs(size["mean_nm"] / truth["major_axis_length_nm"].mean() - 1) < 0.05
    assert "particles" in capsys.readouterr().out


def test_failures_are_listed_and_exit_code_says_so(tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_text("hello")
    assert main(["analyze", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["failures"][0]["image"] == "x.png"
    assert "FAILED x.png" in capsys.readouterr().err


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "holds no micrographs" in capsys.readouterr().err


def test_demo_names_are_the_demo_batches():
    from tempipe.cli import DEMO_NAMES
    from tempipe.demo import DEMO_BATCHES

    assert DEMO_NAMES == tuple(DEMO_BATCHES)


def test_parser_does_not_import_torch_or_the_simulator():
    """``tempipe datasets``/``--help`` start fast: building the parser loads no heavy stage."""
    code = ("import sys; from tempipe.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'tempipe.simulate', 'tempipe.fit') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_command_writes_weights_card_and_diagnostics(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["train", "--n-samples", "300", "--epochs", "1", "--jobs", "1", "--quiet",
                 "--context-px", "3", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["epochs_run"] == 1 and card["config"]["n_samples"] == 300
    assert card["architecture"]["context_px"] == 3
    assert ShapeModel.load(out).context_px == 3  # its crops keep a 3-px ring
    assert {"rmse_l_ratio", "round_d_accuracy"} <= set(card["test"])
    assert sorted(p.name for p in tmp_path.glob("*_qq_d.*"))  # the paper's diagnostics
    assert "RMSE L_ratio" in capsys.readouterr().out
