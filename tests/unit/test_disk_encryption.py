"""disk_encryption on recorded/reconstructed layouts: fake sysfs trees (Linux), snapshot sections
(Windows), fdesetup outputs (macOS). Fixture sources: tests/fixtures/disk_encryption/README.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agent.core.errors import ParseError
from agent.posture.checks.disk_encryption import check as de
from agent.posture.checks.disk_encryption import linux as de_linux
from agent.posture.checks.disk_encryption import macos as de_macos
from agent.posture.checks.disk_encryption import windows as de_windows
from agent.posture.checks.disk_encryption.linux import Enc
from agent.posture.checks.disk_encryption.windows import Bde
from agent.posture.model import Status
from tests.conftest import FIXTURES
from tests.fakes import FakeRunner, Recorded, make_ctx

FIX = FIXTURES / "disk_encryption"
LINUX_CASES = sorted(p.stem for p in (FIX / "linux").glob("*.json")
                     if not p.stem.startswith("lsblk_"))


def _load(rel: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIX / rel).read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------------------------------------
# A fake /sys + /proc tree shaped like the kernel's


class SysTree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dirs: dict[str, Path] = {}

    def _link(self, link: Path, target: Path) -> None:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))

    def add(self, dev: dict[str, Any]) -> None:
        name, (major, minor) = dev["name"], dev["dev"].split(":")
        if "parent" in dev:
            d = self.dirs[dev["parent"]] / name
        else:
            d = self.root / "sys" / dev.get("devpath", f"devices/virtual/block/{name}")
        d.mkdir(parents=True)
        self.dirs[name] = d
        kind = "partition" if "parent" in dev else "disk"
        (d / "dev").write_text(f"{major}:{minor}\n")
        (d / "uevent").write_text(f"MAJOR={major}\nMINOR={minor}\nDEVNAME={name}\nDEVTYPE={kind}\n")
        (d / "slaves").mkdir()
        (d / "holders").mkdir()
        if "parent" in dev:
            (d / "partition").write_text(name[-1] + "\n")
        if "dm_uuid" in dev:
            (d / "dm").mkdir()
            (d / "dm" / "name").write_text(dev["dm_name"] + "\n")
            (d / "dm" / "uuid").write_text(dev["dm_uuid"] + "\n")
        if dev.get("md"):
            (d / "md").mkdir()
        if "backing_file" in dev:
            (d / "loop").mkdir()
            (d / "loop" / "backing_file").write_text(dev["backing_file"] + "\n")
        for slave in dev.get("slaves", []):
            self._link(d / "slaves" / slave, self.dirs[slave])
            self._link(self.dirs[slave] / "holders" / name, d)
        self._link(self.root / "sys/class/block" / name, d)
        if "parent" not in dev:
            self._link(self.root / "sys/block" / name, d)
        self._link(self.root / "sys/dev/block" / dev["dev"], d)

    def btrfs(self, fsid: str, members: list[str]) -> None:
        for m in members:
            self._link(self.root / "sys/fs/btrfs" / fsid / "devices" / m, self.dirs[m])

    def mountinfo(self, lines: list[str]) -> None:
        p = self.root / "proc/self/mountinfo"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + "\n")


def build(tmp: Path, layout: dict[str, Any]) -> Path:
    tree = SysTree(tmp / "root")
    tree.root.mkdir()
    for dev in layout["devices"]:
        tree.add(dev)
    for fsid, members in layout.get("btrfs", {}).items():
        tree.btrfs(fsid, members)
    tree.mountinfo(layout["mountinfo"])
    return tree.root


def lsblk_runner(layout: dict[str, Any]) -> FakeRunner:
    if layout.get("lsblk") is None:
        return FakeRunner()  # no lsblk: the cross-check is skipped
    return FakeRunner({("lsblk",): Recorded(json.dumps(layout["lsblk"]).encode())})


def run_linux(tmp: Path, layout: dict[str, Any], runner: FakeRunner | None = None) -> Any:
    root = build(tmp, layout)
    ctx = make_ctx("linux", root=root, home=Path(layout.get("home", "/home/staff")),
                   runner=runner if runner is not None else lsblk_runner(layout))
    return de.check(ctx)


# ---------------------------------------------------------------------------------------------
# Linux: the real-machine layouts


@pytest.mark.parametrize("case", LINUX_CASES)
def test_linux_layouts(case: str, tmp_path: Path) -> None:
    layout = _load(f"linux/{case}.json")
    expect = layout["expect"]
    f = run_linux(tmp_path, layout)
    assert f.status.value == expect["status"], (f.summary, f.evidence)
    assert f.evidence["root"]["state"] == expect["root"]
    assert f.evidence["home"]["state"] == expect["home"]
    assert f.evidence["root"]["device"] == expect["root_device"]
    assert [n["device"] for n in f.evidence["root"]["chain"]] == expect["chain"]
    if "summary" in expect:
        assert f.summary.key == expect["summary"]
    if f.status is Status.FAIL:
        assert f.remediation == "disk_encryption.linux"
    if layout.get("lsblk") is not None:  # the cross-check ran and agreed
        assert f.evidence["lsblk_cross_check"] is True
        assert f.evidence["root"]["lsblk"] == expect["root"]


def test_ubuntu_chain_names_crypt_and_lvm(tmp_path: Path) -> None:
    f = run_linux(tmp_path, _load("linux/ubuntu_lvm_on_luks.json"))
    lv, crypt = f.evidence["root"]["chain"]
    assert lv["kind"] == "dm-lvm" and lv["dm_name"] == "ubuntu--vg-ubuntu--lv"
    assert crypt["kind"] == "crypt" and crypt["dm_uuid"].startswith("CRYPT-LUKS2-")
    assert crypt["slaves"] == ["/dev/nvme0n1p3"]
    assert f.evidence["root"]["source"] == "/dev/mapper/ubuntu--vg-ubuntu--lv"


def test_usb_volume_is_ignored(tmp_path: Path) -> None:
    f = run_linux(tmp_path, _load("linux/usb_encrypted_plain_root.json"))
    assert "dm-0" not in json.dumps(f.evidence["root"]) + json.dumps(f.evidence["home"])


def test_fedora_btrfs_resolves_the_mapper_source(tmp_path: Path) -> None:
    f = run_linux(tmp_path, _load("linux/fedora_btrfs_on_luks.json"))
    assert f.evidence["root"]["maj_min"] == "0:27"
    assert f.evidence["home"]["mount_point"] == "/home"


# ---------------------------------------------------------------------------------------------
# Linux: edge cases built inline


def _plain_disk(name: str = "sda", dev: str = "8:0") -> dict[str, Any]:
    return {"name": name, "dev": dev, "devpath": f"devices/pci0000:00/0000:00:17.0/ata1/{name}"}


def test_btrfs_raid1_over_one_plain_member_is_plain(tmp_path: Path) -> None:
    layout = {
        "devices": [_plain_disk(), {"name": "sda2", "dev": "8:2", "parent": "sda"},
                    _plain_disk("sdb", "8:16"), {"name": "sdb2", "dev": "8:18", "parent": "sdb"},
                    {"name": "dm-0", "dev": "253:0", "dm_name": "luks-a",
                     "dm_uuid": "CRYPT-LUKS2-aaaa-luks-a", "slaves": ["sda2"]}],
        "btrfs": {"fsid-1": ["dm-0", "sdb2"]},
        "mountinfo": ["61 1 0:27 /root / rw - btrfs /dev/mapper/luks-a rw,subvol=/root"],
    }
    f = run_linux(tmp_path, layout)
    assert f.status is Status.FAIL and f.evidence["root"]["state"] == "plain"


def test_md_raid_over_two_luks_members_is_encrypted(tmp_path: Path) -> None:
    layout = {
        "devices": [_plain_disk(), {"name": "sda1", "dev": "8:1", "parent": "sda"},
                    _plain_disk("sdb", "8:16"), {"name": "sdb1", "dev": "8:17", "parent": "sdb"},
                    {"name": "dm-0", "dev": "253:0", "dm_name": "c0", "dm_uuid": "CRYPT-LUKS2-x-c0",
                     "slaves": ["sda1"]},
                    {"name": "dm-1", "dev": "253:1", "dm_name": "c1", "dm_uuid": "CRYPT-LUKS2-y-c1",
                     "slaves": ["sdb1"]},
                    {"name": "md0", "dev": "9:0", "md": True, "slaves": ["dm-0", "dm-1"]}],
        "mountinfo": ["21 1 9:0 / / rw - ext4 /dev/md0 rw"],
    }
    f = run_linux(tmp_path, layout)
    assert f.status is Status.PASS
    assert f.evidence["root"]["chain"][0]["kind"] == "md"


def test_md_raid_of_plain_partitions_is_plain(tmp_path: Path) -> None:
    layout = {
        "devices": [_plain_disk(), {"name": "sda1", "dev": "8:1", "parent": "sda"},
                    _plain_disk("sdb", "8:16"), {"name": "sdb1", "dev": "8:17", "parent": "sdb"},
                    {"name": "md0", "dev": "9:0", "md": True, "slaves": ["sda1", "sdb1"]}],
        "mountinfo": ["21 1 9:0 / / rw - ext4 /dev/md0 rw"],
    }
    assert run_linux(tmp_path, layout).status is Status.FAIL


def test_verity_and_integrity_are_not_encryption(tmp_path: Path) -> None:
    layout = {
        "devices": [_plain_disk(), {"name": "sda3", "dev": "8:3", "parent": "sda"},
                    {"name": "dm-0", "dev": "254:0", "dm_name": "usr",
                     "dm_uuid": "CRYPT-VERITY-959135d6b3894b3b8125503de238d5c4-usr",
                     "slaves": ["sda3"]}],
        "mountinfo": ["21 1 254:0 / / ro - ext4 /dev/mapper/usr ro"],
    }
    f = run_linux(tmp_path, layout)
    assert f.status is Status.FAIL and f.evidence["root"]["chain"][0]["kind"] == "dm-verity"


@pytest.mark.parametrize("fstype,source", [("overlay", "overlay"), ("zfs", "rpool/ROOT/ubuntu"),
                                           ("nfs4", "fs:/export/root")])
def test_opaque_root_is_unknown_with_reason(fstype: str, source: str, tmp_path: Path) -> None:
    layout = {"devices": [], "mountinfo": [f"21 1 0:31 / / rw - {fstype} {source} rw"]}
    f = run_linux(tmp_path, layout)
    assert f.status is Status.UNKNOWN
    assert fstype in f.evidence["root"]["reason"]
    assert f.remediation == "disk_encryption.unknown"


def test_unresolvable_source_is_unknown(tmp_path: Path) -> None:
    layout = {"devices": [], "mountinfo": ["21 1 0:27 / / rw - btrfs /dev/mapper/gone rw"]}
    f = run_linux(tmp_path, layout)
    assert f.status is Status.UNKNOWN and "/dev/mapper/gone" in f.evidence["root"]["reason"]


def test_plain_root_beats_unknown_home(tmp_path: Path) -> None:
    layout = {"devices": [_plain_disk(), {"name": "sda1", "dev": "8:1", "parent": "sda"}],
              "mountinfo": ["21 1 8:1 / / rw - ext4 /dev/sda1 rw",
                            "40 21 0:50 / /home rw - nfs4 srv:/home rw"]}
    f = run_linux(tmp_path, layout)
    assert f.status is Status.FAIL and f.evidence["home"]["state"] == "unknown"


def test_loop_follows_its_backing_file(tmp_path: Path) -> None:
    """systemd-homed style: the home is a loop image stored on the (encrypted) root."""
    layout = {
        "devices": [_plain_disk("nvme0n1", "259:0"),
                    {"name": "nvme0n1p2", "dev": "259:2", "parent": "nvme0n1"},
                    {"name": "dm-0", "dev": "253:0", "dm_name": "root",
                     "dm_uuid": "CRYPT-LUKS2-abcd-root", "slaves": ["nvme0n1p2"]},
                    {"name": "loop0", "dev": "7:0", "backing_file": "/home/staff.img"}],
        "mountinfo": ["21 1 253:0 / / rw - ext4 /dev/mapper/root rw",
                      "50 21 7:0 / /home/staff rw - ext4 /dev/loop0 rw"],
    }
    f = run_linux(tmp_path, layout)
    assert f.status is Status.PASS
    assert [n["kind"] for n in f.evidence["home"]["chain"]] == ["loop", "crypt"]


def test_sysfs_missing_falls_back_to_lsblk(tmp_path: Path) -> None:
    layout = _load("linux/ubuntu_lvm_on_luks.json")
    root = tmp_path / "root"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mountinfo").write_text("\n".join(layout["mountinfo"]) + "\n")
    ctx = make_ctx("linux", root=root, runner=lsblk_runner(layout))
    f = de.check(ctx)
    assert f.status is Status.PASS
    assert "lsblk used" in f.evidence["root"]["reason"]


def test_sysfs_and_lsblk_disagree_is_unknown(tmp_path: Path) -> None:
    layout = _load("linux/luks2_root_nvme.json")
    plain = {"blockdevices": [{"name": "root", "kname": "dm-0", "maj:min": "254:0",
                               "type": "lvm"}]}
    runner = FakeRunner({("lsblk",): Recorded(json.dumps(plain).encode())})
    f = run_linux(tmp_path, layout, runner)
    assert f.status is Status.UNKNOWN
    assert "lsblk says plain" in f.evidence["root"]["reason"]


def test_broken_lsblk_does_not_hide_the_sysfs_answer(tmp_path: Path) -> None:
    runner = FakeRunner({("lsblk",): Recorded(b"", 1, b"lsblk: failed to access sysfs")})
    f = run_linux(tmp_path, _load("linux/luks2_root_nvme.json"), runner)
    assert f.status is Status.PASS and "lsblk_error" in f.evidence


# ---------------------------------------------------------------------------------------------
# Linux: pure parsers


def test_parse_mountinfo_unescapes_and_rejects_garbage() -> None:
    entries = de_linux.parse_mountinfo(
        "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n")
    assert entries[0].mount_point == "/mnt two" and entries[0].source == "/dev/root"
    assert (entries[0].major, entries[0].minor) == (98, 0)
    with pytest.raises(ParseError):
        de_linux.parse_mountinfo("not a mountinfo line\n")
    with pytest.raises(ParseError):
        de_linux.parse_mountinfo("")


def test_mount_for_longest_prefix_and_overmount() -> None:
    entries = de_linux.parse_mountinfo("\n".join([
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw",
        "2 1 8:2 / /home rw - ext4 /dev/sda2 rw",
        "3 1 8:3 / /homework rw - ext4 /dev/sda3 rw",
        "4 1 8:4 / /home rw - ext4 /dev/sda4 rw",  # mounted over the first /home
    ]))
    assert (m := de_linux.mount_for(entries, "/home/staff")) and m.source == "/dev/sda4"
    assert (m := de_linux.mount_for(entries, "/homeless")) and m.source == "/dev/sda1"


def test_lsblk_real_recording_from_this_vm() -> None:
    trees = de_linux.parse_lsblk((FIX / "linux/lsblk_debian12_vm_plain_vda.json").read_text())
    assert de_linux.lsblk_state(trees, maj_min="254:0") is Enc.PLAIN
    assert de_linux.lsblk_state(trees, maj_min="252:9") is Enc.UNKNOWN


def test_lsblk_lv_under_two_parents_needs_crypt_on_both() -> None:
    layout = _load("linux/lvm_span_luks_and_plain_pv.json")
    trees = de_linux.parse_lsblk(json.dumps(layout["lsblk"]))
    assert de_linux.lsblk_state(trees, maj_min="253:2") is Enc.PLAIN
    assert de_linux.lsblk_state(trees, maj_min="253:1") is Enc.ENCRYPTED
    assert de_linux.lsblk_state(trees, kname="dm-0") is Enc.ENCRYPTED


@pytest.mark.parametrize("text", ["", "[]", '{"blockdevices": 3}', '{"blockdevices": [1]}'])
def test_lsblk_garbage_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        de_linux.parse_lsblk(text)


# ---------------------------------------------------------------------------------------------
# Windows


WINDOWS_CASES = sorted(p.stem for p in (FIX / "windows").glob("*.json"))


@pytest.mark.parametrize("case", WINDOWS_CASES)
def test_windows_snapshots(case: str) -> None:
    data = _load(f"windows/{case}.json")
    ctx = make_ctx("windows", snapshot={"bitlocker": data["bitlocker"]})
    f = de.check(ctx)
    expect = data["expect"]
    assert f.status.value == expect["status"], (f.summary, f.evidence)
    assert f.summary.key == expect["summary"]
    if "remediation" in expect:
        assert f.remediation == expect["remediation"]


def test_windows_profile_drive_counts() -> None:
    data = _load("windows/windows11_pro_ja_profile_on_d_encrypting.json")
    f = de.check(make_ctx("windows", snapshot={"bitlocker": data["bitlocker"]}))
    assert [d["drive"] for d in f.evidence["drives"]] == ["C:", "D:"]
    assert f.summary.params["drive"] == "D:"


def test_windows_wmi_is_the_stronger_source() -> None:
    data = _load("windows/windows11_pro_elevated_wmi_single_object.json")
    f = de.check(make_ctx("windows", snapshot={"bitlocker": data["bitlocker"]}))
    assert f.evidence["drives"][0]["source"] == "wmi"
    assert f.evidence["drives"][0]["shell_protection"] == 2


@pytest.mark.parametrize("value,state", [
    (1, Bde.ON), (2, Bde.OFF), (3, Bde.ENCRYPTING), (4, Bde.DECRYPTING), (5, Bde.SUSPENDED),
    (6, Bde.ON), (8, Bde.WAITING_ACTIVATION), (0, Bde.NOT_AVAILABLE), (None, Bde.NOT_AVAILABLE),
    (7, Bde.UNKNOWN), (True, Bde.UNKNOWN), ("x", Bde.UNKNOWN), ("1", Bde.ON)])
def test_shell_value_mapping(value: Any, state: Bde) -> None:
    assert de_windows.shell_state(value) is state


@pytest.mark.parametrize("protection,conversion,state", [
    (1, 1, Bde.ON), (0, 1, Bde.SUSPENDED), (2, 1, Bde.ON), (0, 0, Bde.OFF),
    (0, 2, Bde.ENCRYPTING), (0, 4, Bde.ENCRYPTING), (0, 3, Bde.DECRYPTING),
    (0, 5, Bde.DECRYPTING), (None, 1, Bde.UNKNOWN), (1, 9, Bde.UNKNOWN)])
def test_wmi_mapping(protection: Any, conversion: Any, state: Bde) -> None:
    vol = {"DriveLetter": "C:", "ProtectionStatus": protection, "ConversionStatus": conversion}
    assert de_windows.wmi_state(vol) is state


def test_windows_waiting_for_activation_is_not_called_suspended() -> None:
    section = {"system_drive": "C:", "profile_drive": "C:", "shell_protection": {"C:": 8},
               "wmi": [{"DriveLetter": "C:", "ProtectionStatus": 0, "ConversionStatus": 1}]}
    f = de.check(make_ctx("windows", snapshot={"bitlocker": section}))
    assert f.status is Status.FAIL
    assert f.summary.key == "disk_encryption.windows.waiting_activation"


@pytest.mark.parametrize("section", [
    {"profile_drive": "C:", "shell_protection": {"C:": 1}},
    {"system_drive": "C:", "profile_drive": "C:"},
    {"system_drive": "not a drive", "shell_protection": {"C:": 1}},
])
def test_windows_malformed_section_is_a_parse_error(section: dict[str, Any]) -> None:
    with pytest.raises(ParseError):
        de.check(make_ctx("windows", snapshot={"bitlocker": section}))


def test_windows_wmi_error_falls_back_to_the_shell_value() -> None:
    section = {"system_drive": "C:", "profile_drive": "C:", "shell_protection": {"C:": 1},
               "wmi": None, "wmi_error": "Access denied"}
    f = de.check(make_ctx("windows", snapshot={"bitlocker": section}))
    assert f.status is Status.PASS and f.evidence["wmi_error"] == "Access denied"
    assert f.evidence["drives"][0]["source"] == "shell"


def test_windows_missing_drive_value_is_unknown() -> None:
    section = {"system_drive": "C:", "profile_drive": "C:", "shell_protection": {"D:": 1}}
    f = de.check(make_ctx("windows", snapshot={"bitlocker": section}))
    assert f.status is Status.UNKNOWN


# ---------------------------------------------------------------------------------------------
# macOS


MACOS_CASES = sorted(p.stem for p in (FIX / "macos").glob("*.json"))


@pytest.mark.parametrize("case", MACOS_CASES)
def test_macos_fdesetup(case: str) -> None:
    data = _load(f"macos/{case}.json")
    runner = FakeRunner({
        ("fdesetup", "isactive"): Recorded(data["isactive"]["stdout"].encode(),
                                           data["isactive"]["exit"]),
        ("fdesetup", "status"): Recorded(data["status"].encode()),
    })
    f = de.check(make_ctx("macos", runner=runner))
    assert f.status.value == data["expect"]["status"]
    assert f.summary.key == data["expect"]["summary"]
    assert f.evidence["status"] == data["status"].strip()


@pytest.mark.parametrize("code,stdout", [(1, ""), (0, "false"), (3, ""), (0, "")])
def test_macos_disagreeing_or_odd_answers_are_unknown(code: int, stdout: str) -> None:
    f = de_macos.evaluate_fdesetup(code, stdout, None)
    assert f.status is Status.UNKNOWN and f.remediation == "disk_encryption.unknown"


def test_macos_status_failure_is_only_evidence() -> None:
    runner = FakeRunner({("fdesetup", "isactive"): Recorded(b"true\n", 0),
                         ("fdesetup", "status"): Recorded(b"", 1, b"boom")})
    f = de.check(make_ctx("macos", runner=runner))
    assert f.status is Status.PASS and "unavailable" in f.evidence["status"]


# --- issue 17, findings 4 and 10 ---------------------------------------------------------------

def test_roaming_unc_profile_is_not_a_bad_drive() -> None:
    data = _load("windows/windows11_pro_roaming_profile_unc.json")
    f = de.check(make_ctx("windows", snapshot={"bitlocker": data["bitlocker"]}))
    assert f.status is Status.PASS, f.summary
    assert [d["drive"] for d in f.evidence["drives"]] == ["C:"]
    assert f.evidence["profile_on_network_share"] == "\\\\FS01\\PROFILES$"


def test_encrypting_is_one_rule_on_windows_and_macos() -> None:
    win = de_windows.evaluate_windows([de_windows.DriveFacts("C:", Bde.ENCRYPTING, "shell", 3,
                                                             None)])
    mac = de_macos.evaluate_fdesetup(2, "true\n", "FileVault is On.\nEncryption in progress\n")
    assert win.status is mac.status is Status.WARN
