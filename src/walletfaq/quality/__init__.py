"""Layer 5, quality: measuring and improving retrieval.

Evaluation (:mod:`~walletfaq.quality.evaluation`: metrics, reports, statistics), the
no-answer threshold (:mod:`~walletfaq.quality.calibration`), corpus diagnosis
(:mod:`~walletfaq.quality.doctor`) and training (:mod:`~walletfaq.quality.tuning`: data
readers, adapter training, fine-tuning). Imports the retrieval layer and those below it; the
query-time layers never import it.
"""
