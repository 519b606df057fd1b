"""The help desk's view of a bundle: summary first, in the desk's language, every value ours
translated (agent/presentation/bundle_view.py through render.as_text/as_html).

The bundle is this machine's real export (tests/fixtures/diag/debian12_blocked_demo_policy.json
says where it came from), read back by the real reader.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agent.diagnostics import render
from agent.diagnostics.reader import open_bundle
from agent.presentation import bundle_view
from tests.conftest import REPO
from tests.unit.test_bundle_reader import _with_manifest, _zip

FIXTURE = REPO / "tests" / "fixtures" / "diag" / "debian12_blocked_demo_policy.json"


def _digest(**changes: Any) -> dict[str, Any]:
    rec = json.loads(FIXTURE.read_text(encoding="utf-8"))
    rec.update(changes)
    files = [(f"{name}.json", json.dumps(rec[name]).encode())
             for name in ("posture", "decision", "policy", "connectivity") if rec.get(name)]
    man = json.loads(dict(_with_manifest(files))["manifest.json"])
    man.update(bundle_id="BB33-XWBM", redaction_level="standard",
               created_at="2026-12-01T21:42:37Z", agent_version="0.1.0")
    return render.digest(open_bundle(_zip([*files, ("manifest.json", json.dumps(man).encode())])))


# Words of ours that must never appear raw in a Japanese view (names and evidence aside).
RAW = re.compile(r"\b(pass|fail|unknown|standard|strict|True|False|true|false|unsigned|"
                 r"Integrity|Compliant|skipped|failed|without client certificate|block)\b")


def _without_evidence(text: str) -> str:
    """The summary part: everything above the folded details."""
    return text.split("各項目の詳しい情報", maxsplit=1)[0]


def test_japanese_summary_leads_and_is_japanese() -> None:
    text = render.as_text(_digest(), "ja")
    lines = text.splitlines()
    assert lines[1].startswith("改ざんの確認: 署名がありません")
    assert lines[2] == "判定: 下の問題を直すまで、このPCでは在宅勤務の接続ができません。"
    assert "ポリシー: demo-city(通し番号 1) [デモ用ポリシー]" in text
    assert "判定ID: 4VEDLK2M" in text and "個人情報の置き換え: 標準(ログを含む)" in text
    summary = _without_evidence(text)
    assert "6項目中5項目に対応が必要です" in summary
    assert "職員への表示: ディスクの暗号化: 直すまで接続できません。" in summary
    first, fine = "✖ 不合格  更新プログラム", "問題のない項目(1件): OSのサポート"
    assert summary.index(first) < summary.index(fine)
    assert RAW.findall(summary) == [], RAW.findall(summary)
    # Evidence is folded below, with our own values (booleans) translated.
    details = text.split("各項目の詳しい情報")[1]
    assert "reboot_required: いいえ" in details and "名前解決 失敗" in details
    assert "利用者の証明書なし" in details


def test_lang_really_changes_the_output() -> None:
    d = _digest()
    ja, en = render.as_text(d, "ja"), render.as_text(d, "en")
    assert ja != en
    assert "Integrity: unsigned (file hashes match the manifest)" in en
    assert "5 of 6 items need attention" in en or "of 6" in en
    # In English the desk still sees what the staff member read, in Japanese.
    assert "Shown to the staff member (Japanese): システムのディスク" in en
    assert "What the staff member was told (Japanese)" in en


def test_html_has_the_same_summary_with_details_folded() -> None:
    page = render.as_html(_digest(), "ja")
    assert "<html lang='ja'>" in page and "判定: 下の問題を直すまで" in page
    assert page.index("6項目中5項目に対応が必要です") < page.index("<details>")
    assert "demo-city(通し番号 1)" in page
    visible = re.sub(r"<details>.*?</details>|<style>.*?</style>", "", page, flags=re.S)
    visible = re.sub(r"<[^>]+>", " ", visible)
    assert RAW.findall(visible) == [], RAW.findall(visible)


def test_tampered_and_refused_policy_are_translated() -> None:
    d = _digest(policy={"status": "refused", "reason": {"ja": "署名が正しくありません",
                                                        "en": "bad signature"}})
    d["verification"]["hashes_ok"] = False
    d["verification"]["problems"] = ["posture.json: content does not match the manifest "
                                     "(modified)"]
    view = bundle_view.build(d, "ja")
    assert view.integrity == ("改ざんされています: posture.json: "
                              "中身が目録と一致しません(書き換えられています)")
    assert any(f.value.startswith("受け付けず") and "署名が正しくありません" in f.value
               for f in view.facts)


def test_signer_problems_are_translated() -> None:
    d = _digest()
    d["verification"].update(signed=True, signature_ok=True, signer="unknown key",
                             signer_problem="no city CA to check the signer against (give it "
                                            "with --ca)")
    assert "--ca で指定" in bundle_view.integrity(d, "ja")
    assert bundle_view.integrity(d, "en") == (
        "NOT VERIFIED: signed by an unknown key (no city CA to check the signer against "
        "(give it with --ca))")


@pytest.mark.parametrize("value", [None, 3, "x", [1], {"checks": "no"}])
def test_hostile_shapes_give_a_view_not_a_crash(value: Any) -> None:
    d = _digest()
    for key in ("decision", "checks", "verification", "host", "policy", "connectivity_targets"):
        d[key] = value
    view = bundle_view.build(d, "ja")
    assert view.title.startswith("診断ファイル")
    assert render.as_text(d, "ja") and render.as_html(d, "ja")
