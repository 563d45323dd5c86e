import json, sys, time
sys.path.insert(0, "/work/main/benchmarks")
from pathlib import Path
from walletfaq import FAQRetriever, HybridRetriever, evaluate, paired_test
from walletfaq.tuning import tune
from hybrid import _memoised
BQ = Path("/work/shared/data/bq"); q = BQ / "bq_dev.queries.jsonl"
t = time.time()
base = FAQRetriever.from_corpus(BQ / "bq_dev.corpus.jsonl")
dense = evaluate(base, q)
doc = FAQRetriever.from_corpus(BQ / "bq_dev.corpus.jsonl", question_encoding="document")
out = {"untuned query rows": round(dense.metrics["mrr@10"], 4)}
r = evaluate(doc, q); out["untuned document rows"] = round(r.metrics["mrr@10"], 4); print(out, time.time()-t, flush=True)
tuned = tune(doc, BQ / "bq_dev_pairs.train.tsv", seed=0, progress=False).retriever
r = evaluate(tuned, q); out["adapter document rows"] = [round(r.metrics["mrr@10"], 4), round(r.metrics["recall@1"], 4), round(paired_test(dense, r, "mrr@10", seed=0).p_value, 4)]; print(out, time.time()-t, flush=True)
h = _memoised(HybridRetriever.from_retriever(tuned, models=["use-m3"], lexical="bm25"))
for label, w in {"+0.2 bm25": {"use-m3": 0, "bm25": 0.2}, "+0.7 use-m3 +0.2 bm25": {"use-m3": 0.7, "bm25": 0.2}, "+0.5 use-m3 +0.2 bm25": {"use-m3": 0.5, "bm25": 0.2}}.items():
    h.set_weights(w); r = evaluate(h, q)
    out["adapter document rows " + label] = [round(r.metrics["mrr@10"], 4), round(r.metrics["recall@1"], 4), round(paired_test(dense, r, "mrr@10", seed=0).p_value, 4)]
    print(label, out["adapter document rows " + label], time.time()-t, flush=True)
Path("/tmp/combo/doc.json").write_text(json.dumps(out, indent=1))
