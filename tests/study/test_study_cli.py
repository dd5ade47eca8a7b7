"""`counterpoint study list|run|report` as a user types them (nothing trains here)."""

from __future__ import annotations

from counterpoint.cli import main


def test_list_names_the_shipped_studies(capsys):
    assert main(["study", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("quick", "collapse", "controls"):
        assert name in out
    assert "9 conditions × 3 seeds" in out


def test_dry_run_prints_every_run_and_trains_nothing(tmp_path, capsys):
    out_dir = tmp_path / "s"
    assert main(["study", "run", "controls", "--dry-run", "--out", str(out_dir), "--seeds", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "kl_cov/seed1 [fresh]" in out and "18 runs of 60 steps" in out
    assert not out_dir.exists()


def test_mistakes_exit_2_with_the_reason(tmp_path, capsys):
    assert main(["study", "run", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["study", "run", "quick", "--only", "zz", "--dry-run"]) == 2
    assert "--only: unknown conditions ['zz']" in capsys.readouterr().err
    assert main(["study", "report", str(tmp_path)]) == 2
    assert "not a study folder" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps: 0\nseeds: [0]\nconditions: {a: {}}\n")
    assert main(["study", "run", str(bad), "--dry-run"]) == 2
    assert "steps: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_run_dir_refuses_a_used_folder_and_resume_together(tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "config.json").write_text("{}")
    assert main(["run", "--run-dir", str(used)]) == 2
    assert (
        f"--run-dir {used}: the folder is not empty; continue a run there with --resume {used}"
        in capsys.readouterr().err
    )
    assert main(["run", "--run-dir", str(tmp_path / "new"), "--resume", str(used)]) == 2
    assert "--run-dir and --resume: give one" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
