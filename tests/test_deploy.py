"""make deploy: copies a board's firmware onto a CIRCUITPY-like folder, refuses anything else."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import deploy  # noqa: E402


def fake_drive(tmp_path):
    (tmp_path / "boot_out.txt").write_text(
        "Adafruit CircuitPython 9.2.1 on 2024-11-20; Raspberry Pi Pico with rp2040\n"
    )
    return str(tmp_path)


def test_refuses_folder_without_boot_out(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(deploy.DeployError, match="boot_out.txt"):
        deploy.deploy("module", str(tmp_path), circup=False)
    assert sorted(os.listdir(tmp_path)) == ["precious.txt"]


def test_refuses_unknown_board(tmp_path):
    with pytest.raises(deploy.DeployError, match="host, module"):
        deploy.deploy("modul", fake_drive(tmp_path), circup=False)


@pytest.mark.parametrize("board,folder", [("module", "module_fw"), ("host", "host_fw")])
def test_copies_board_lib_and_shared_as_py(tmp_path, board, folder):
    drive = fake_drive(tmp_path)
    deploy.deploy(board, drive, circup=False)
    lib = set(os.listdir(os.path.join(drive, "lib")))
    assert "bms_link.py" in lib  # shared/ lands in lib/
    for name in os.listdir(os.path.join(ROOT, folder, "lib")):
        if name.endswith(".py"):
            assert name in lib
    assert not any(n.endswith(".mpy") for n in lib)
    for top in ("code.py", "settings.toml"):
        if os.path.exists(os.path.join(ROOT, folder, top)):
            assert os.path.exists(os.path.join(drive, top))


def test_keeps_the_boards_own_settings(tmp_path):
    drive = fake_drive(tmp_path)
    (tmp_path / "settings.toml").write_text("CELL_COUNT = 7\n")
    deploy.deploy("module", drive, circup=False)
    assert (tmp_path / "settings.toml").read_text() == "CELL_COUNT = 7\n"


def test_force_writes_without_boot_out(tmp_path):
    deploy.deploy("module", str(tmp_path), force=True, circup=False)
    assert os.path.exists(os.path.join(str(tmp_path), "lib", "bms_link.py"))


def test_make_deploy_refuses_plain_folder(tmp_path):
    rc = deploy.main(["--board", "host", "--drive", str(tmp_path), "--no-circup"])
    assert rc == 2
    assert os.listdir(tmp_path) == []
