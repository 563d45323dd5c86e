"""TREC export: run and qrels files that trec_eval (via ir-measures) scores as the report does."""

from __future__ import annotations

from pathlib import Path

import ir_measures
import pytest

from walletfaq import FAQRetriever, WalletFAQError, evaluate
from walletfaq.quality.evaluation import EvalReport

from .test_evaluate import QUERIES

MEASURES = {
    "recall@1": ir_measures.Success @ 1,
    "recall@3": ir_measures.Success @ 3,
    "ndcg@10": ir_measures.nDCG @ 10,
    "map@10": ir_measures.AP @ 10,
    "precision@3": ir_measures.P @ 3,
    "mrr@10": ir_measures.RR @ 10,
}


@pytest.fixture
def report(tiny_corpus, encoder) -> EvalReport:
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    return evaluate(retriever, QUERIES, metrics=tuple(MEASURES))


def test_run_file_has_one_trec_line_per_ranked_entry(report: EvalReport, tmp_path: Path) -> None:
    path = report.to_trec_run(tmp_path / "run.txt", run_name="hash64")
    lines = path.read_text("utf-8").splitlines()
    assert len(lines) == sum(len(r.ranked) for r in report.results)
    qid, q0, doc, rank, score, name = lines[0].split()
    first = report.results[0]
    assert (qid, q0, doc, rank, name) == ("q1", "Q0", first.ranked[0], "1", "hash64")
    assert float(score) == pytest.approx(first.top_score)


def test_qrels_file_lists_the_gold_ids_of_in_domain_queries(
    report: EvalReport, tmp_path: Path
) -> None:
    lines = report.to_trec_qrels(tmp_path / "qrels.txt").read_text("utf-8").splitlines()
    assert lines[:2] == ["q1 0 topup 1", "q2 0 refund 1"]
    assert len(lines) == sum(len(r.gold) for r in report.results)
    assert not [line for line in lines if line.startswith("q6 ")]  # out of domain


def test_trec_eval_on_the_exported_files_reproduces_the_report(
    report: EvalReport, tmp_path: Path
) -> None:
    run = report.to_trec_run(tmp_path / "run.txt")
    qrels = report.to_trec_qrels(tmp_path / "qrels.txt")
    scored = ir_measures.calc_aggregate(
        list(MEASURES.values()),
        ir_measures.read_trec_qrels(str(qrels)),
        ir_measures.read_trec_run(str(run)),
    )
    for name, measure in MEASURES.items():
        assert scored[measure] == pytest.approx(report.metrics[name]), name


def test_ids_with_whitespace_never_reach_a_trec_file(tiny_corpus) -> None:
    # the id grammar refuses them when the corpus is built: no report can hold one
    with pytest.raises(WalletFAQError, match="an id is 1 to 64 characters"):
        tiny_corpus.from_entries(
            [{**e.to_dict(), "id": e.id + " x"} for e in tiny_corpus], source="spaced"
        )


def test_a_run_name_with_whitespace_cannot_be_written_as_trec(
    report: EvalReport, tmp_path: Path
) -> None:
    with pytest.raises(WalletFAQError, match="whitespace"):
        report.to_trec_run(tmp_path / "run.txt", run_name="hash 64")
    assert not (tmp_path / "run.txt").exists()
