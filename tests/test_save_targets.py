"""What a save may replace: one rule for ``FAQRetriever.save`` and ``HybridRetriever.save``.

A save replaces only a new or empty directory, or one that is provably an index of its kind:
its marker file (``manifest.json`` / ``hybrid.json``) verifies against its own checksum, and the
directory holds nothing that format does not write. Anything else is refused with
:class:`IndexFormatError` and left exactly as it was.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from walletfaq import Corpus, FAQRetriever, HybridRetriever, IndexFormatError

from .conftest import TINY_ENTRIES, HashEncoder


@dataclass(frozen=True)
class Kind:
    """One saved format: how to save it, its marker file and what a hand-written marker says."""

    name: str
    save: Callable[[Path], Path]
    marker: str
    forged_marker: dict[str, object]


def _kinds() -> dict[str, Kind]:
    primary = FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES), model=HashEncoder())
    hybrid = HybridRetriever([primary])
    return {
        "faq": Kind("faq", primary.save, "manifest.json", {"format": "walletfaq-index"}),
        "hybrid": Kind("hybrid", hybrid.save, "hybrid.json", {"format": "walletfaq-hybrid"}),
    }


KINDS = _kinds()


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (``None`` for a folder)."""
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def test_an_index_beside_a_readme_and_a_backup_folder_is_left_untouched(kind, tmp_path) -> None:
    target = kind.save(tmp_path / "idx")
    (target / "README.md").write_text("how we deploy", "utf-8")
    (target / "backup").mkdir()
    (target / "backup" / "old.tar").write_bytes(b"tar")
    before = snapshot(target)
    with pytest.raises(IndexFormatError, match=r"did not write \(README.md, backup/\)"):
        kind.save(target)
    assert snapshot(target) == before


def test_a_directory_holding_only_a_hand_written_marker_is_refused(kind, tmp_path) -> None:
    target = tmp_path / "idx"
    target.mkdir()
    (target / kind.marker).write_text(json.dumps(kind.forged_marker), "utf-8")
    with pytest.raises(IndexFormatError, match=f"its {kind.marker} is not ours"):
        kind.save(target)
    assert json.loads((target / kind.marker).read_text("utf-8")) == kind.forged_marker


@pytest.mark.parametrize(
    "text", ["[]", '"walletfaq"', "3", "null", "[" * 100_000 + "]" * 100_000, "{", "\ufffe"]
)
def test_a_marker_that_is_no_json_object_is_refused_not_a_crash(kind, tmp_path, text) -> None:
    target = tmp_path / "idx"
    target.mkdir()
    (target / kind.marker).write_text(text, "utf-8")
    with pytest.raises(IndexFormatError, match="is not ours"):
        kind.save(target)


def test_a_symbolic_link_inside_an_index_is_not_ours(kind, tmp_path) -> None:
    target = kind.save(tmp_path / "idx")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not ours", "utf-8")
    (target / "link").symlink_to(outside)
    with pytest.raises(IndexFormatError, match=r"did not write \(link\)"):
        kind.save(target)
    assert outside.read_text("utf-8") == "not ours"


def test_an_index_of_its_own_kind_and_an_empty_directory_are_replaced(kind, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kind.save(empty) == empty.resolve()
    assert kind.save(empty) == empty.resolve()  # now an index of its kind


def test_a_save_of_one_kind_never_replaces_the_other_kind(tmp_path) -> None:
    faq, hybrid = KINDS["faq"], KINDS["hybrid"]
    plain, fused = faq.save(tmp_path / "plain"), hybrid.save(tmp_path / "fused")
    with pytest.raises(IndexFormatError, match="did not write"):
        hybrid.save(plain)
    with pytest.raises(IndexFormatError, match="did not write"):
        faq.save(fused)


def test_a_hybrid_member_folder_with_a_foreign_file_is_not_ours(tmp_path) -> None:
    target = KINDS["hybrid"].save(tmp_path / "fused")
    (target / "member-0" / "notes.txt").write_text("mine", "utf-8")
    with pytest.raises(IndexFormatError, match=r"did not write \(member-0/\)"):
        KINDS["hybrid"].save(target)
    assert (target / "member-0" / "notes.txt").read_text("utf-8") == "mine"


# ----------------------------------------------------------------------------- the rule, generated
FOREIGN = ["README.md", "backup/", "notes.txt", "member-x/", ".hidden"]


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved index of each kind, whose entries the generated directories copy."""
    return {name: kind.save(tmp_path_factory.mktemp(name) / "idx") for name, kind in KINDS.items()}


def _build(root: Path, reference: Path, kind: Kind, names: set[str], marker: str) -> None:
    """Fill ``root`` with ``names``: copies of the ``reference`` index's entries, foreign files
    or folders; the marker genuine, forged or left out."""
    root.mkdir()
    for name in names:
        path = root / name.rstrip("/")
        if name in FOREIGN:
            if name.endswith("/"):
                path.mkdir()
                (path / "kept.txt").write_text("x", "utf-8")
            else:
                path.write_text("x", "utf-8")
        elif name.endswith("/"):
            shutil.copytree(reference / name.rstrip("/"), path)
        elif name != kind.marker:
            shutil.copyfile(reference / name, path)
    if marker == "genuine":
        shutil.copyfile(reference / kind.marker, root / kind.marker)
    elif marker == "forged":
        (root / kind.marker).write_text(json.dumps(kind.forged_marker), "utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_save_replaces_exactly_the_directories_the_rule_allows(references, data) -> None:
    kind = KINDS[data.draw(st.sampled_from(sorted(KINDS)), label="kind")]
    reference = references[kind.name]
    owned = sorted(p.name + ("/" if p.is_dir() else "") for p in reference.iterdir())
    owned.remove(kind.marker)
    names = data.draw(st.sets(st.sampled_from(owned + FOREIGN)), label="entries")
    marker = data.draw(st.sampled_from(["genuine", "forged", "absent"]), label="marker")
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "idx"
        _build(target, reference, kind, names, marker)
        before = snapshot(target)
        allowed = not before or (not set(names) & set(FOREIGN) and marker == "genuine")
        try:
            kind.save(target)
        except IndexFormatError:
            assert not allowed, f"refused a replaceable directory: {sorted(before)}"
            assert snapshot(target) == before  # refused: untouched
        else:
            assert allowed, f"replaced a directory holding {sorted(before)}"
