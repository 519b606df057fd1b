"""Japanese and English catalogues are complete, keep the same placeholders, and cover the code."""

from __future__ import annotations

import ast
import re
import string

from agent.core import i18n
from agent.posture.model import Status
from tests.conftest import REPO


def _placeholders(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_catalogues_have_the_same_keys() -> None:
    ja, en = i18n.catalogue("ja"), i18n.catalogue("en")
    assert sorted(set(en) - set(ja)) == []
    assert sorted(set(ja) - set(en)) == []


def test_placeholders_match() -> None:
    ja, en = i18n.catalogue("ja"), i18n.catalogue("en")
    mismatched = {k: (_placeholders(en[k]), _placeholders(ja[k])) for k in en
                  if _placeholders(en[k]) != _placeholders(ja[k])}
    assert mismatched == {}


def test_japanese_texts_are_japanese() -> None:
    """A copied English string in ja/ is a missing translation."""
    kana_or_kanji = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    untranslated = [k for k, v in i18n.catalogue("ja").items() if not kana_or_kanji.search(v)]
    assert untranslated == []


def _literal_keys() -> set[str]:
    """Every msg("...")/Finding(..., "remediation") key the core names literally."""
    keys: set[str] = set()
    for path in (REPO / "agent").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "msg" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                keys.add(str(node.args[0].value))
    return keys


def test_every_message_key_in_the_code_is_translated() -> None:
    missing = sorted(k for k in _literal_keys() if k not in i18n.catalogue("en"))
    assert missing == []


def test_every_status_and_check_has_a_name() -> None:
    from agent.posture.registry import CHECKS

    for lang in i18n.LANGS:
        cat = i18n.catalogue(lang)
        assert all(f"status.{s.value}" in cat for s in Status)
        assert all(f"check.{cid}" in cat for cid, _ in CHECKS)
        for cid, _ in CHECKS:
            assert f"remediation.{cid}.unknown.title" in cat, cid
            assert f"remediation.{cid}.unknown.steps" in cat, cid


def test_language_detection() -> None:
    assert i18n.detect_language({"LANG": "ja_JP.UTF-8"}) == "ja"
    assert i18n.detect_language({"LANG": "en_US.UTF-8"}) == "en"
    assert i18n.detect_language({"LANG": "de_DE.UTF-8"}) == "en"
    assert i18n.detect_language({"LANG": "C.UTF-8", "BYOD_AGENT_LANG": "ja"}) == "ja"
    assert i18n.detect_language({"LC_ALL": "C"}) == "ja"


def test_missing_params_do_not_crash() -> None:
    assert "{name}" in i18n.text("os_supported.supported_open", "en")
