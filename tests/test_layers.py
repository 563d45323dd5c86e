"""The layout is the architecture: layers import downward only, nothing imports in a circle,
query-time code never loads training code, and the public API survived the move.

ARCHITECTURE.md describes the layers; pyproject.toml's ``[tool.importlinter]`` states them as
contracts that import-linter checks here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

import walletfaq

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(walletfaq.__file__).resolve().parent
MAX_MODULE_LINES = 620  # "about 600": one module, one idea

PUBLIC_BEFORE_THE_MOVE = (
    "CorpusError IndexFormatError IndexMismatchError IndexWriteError ModelError QueryError "
    "WalletFAQError __version__ FAQRetriever HybridRetriever Hit Answer evaluate compare "
    "load_queries EvalReport QueryResult OperatingPoint paired_test diff_reports "
    "bundled_queries_path load_bundled_queries calibrate Calibration CalibrationWarning tune "
    "TuneResult AdaptedEncoder FinetunedEncoder FAQEntry Corpus load_corpus bundled_corpus_path "
    "Contact ContactDirectory load_contacts IndexSpec Encoder SentenceTransformerEncoder "
    "PresetEncoder PRESETS DEFAULT_MODEL doctor DoctorReport Finding"
).split()
"""``walletfaq.__all__`` at commit 5cd704e, before the layout by layer."""


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert status == 0, capsys.readouterr().out


@pytest.mark.parametrize("name", PUBLIC_BEFORE_THE_MOVE)
def test_every_name_exported_before_the_move_still_is(name: str) -> None:
    assert name in walletfaq.__all__
    assert getattr(walletfaq, name) is not None


@pytest.mark.parametrize(
    ("module", "name", "home"),
    [
        ("walletfaq.server", "create_app", "walletfaq.service"),
        ("walletfaq.server", "ServerSettings", "walletfaq.service"),
        ("walletfaq.serving", "ServedIndex", "walletfaq.service.holder"),
        ("walletfaq.evaluation", "METRIC_KEYS", "walletfaq.quality.evaluation"),
        ("walletfaq.evaluation", "evaluate", "walletfaq.quality.evaluation"),
        ("walletfaq.use_module", "USEM3Encoder", "walletfaq.encoders.use_module"),
    ],
)
def test_documented_old_module_paths_are_aliases_of_the_new_ones(
    module: str, name: str, home: str
) -> None:
    old = getattr(importlib.import_module(module), name)
    assert old is getattr(importlib.import_module(home), name)


def test_no_module_is_much_over_600_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text("utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_loading_a_tuned_index_and_asking_imports_no_training_code() -> None:
    script = (
        "import json, sys\n"
        "from tests.conftest import HashEncoder\n"
        "from walletfaq import FAQRetriever\n"
        "r = FAQRetriever.load('tests/fixtures/legacy/tuned', model=HashEncoder())\n"
        "assert type(r.encoder).__name__ == 'AdaptedEncoder'\n"
        "r.ask('登录不了'); r.answer('充值了钱没到'); r.ask_batch(['怎么退款'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "walletfaq.encoders.adapted" in loaded
    training = [m for m in loaded if m.startswith(("walletfaq.quality", "torch", "datasets"))]
    assert training == []
