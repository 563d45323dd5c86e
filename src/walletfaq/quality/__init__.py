"""Layer 5, quality: measuring and improving retrieval.

Evaluation (:mod:`~walletfaq.quality.evaluation`: metrics, reports, statistics), the
no-answer threshold (:mod:`~walletfaq.quality.calibration`), corpus diagnosis
(:mod:`~walletfaq.quality.doctor`), training (:mod:`~walletfaq.quality.tuning`: data
readers, adapter training, fine-tuning), gap mining (:mod:`~walletfaq.quality.gaps`:
clusters of missed questions from the query log, with proposed FAQ changes) and the quality gate
of a publish (:mod:`~walletfaq.quality.gate`). Imports the retrieval layer and those below it;
the query-time layers never import it.
"""
