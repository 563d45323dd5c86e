"""Layer 1, data: what walletfaq reads and writes, before any model is involved.

The FAQ corpus (:mod:`~walletfaq.data.corpus`), the support-contacts directory
(:mod:`~walletfaq.data.contacts`), labelled queries (:mod:`~walletfaq.data.queries`), the safety
exemplars (:mod:`~walletfaq.data.safety`), text
normalisation (:mod:`~walletfaq.data.normalize`), masking personal details before anything is
stored (:mod:`~walletfaq.data.privacy`), and the file primitives every layer above
uses: strict JSON (:mod:`~walletfaq.data.strictjson`), crash-safe writes
(:mod:`~walletfaq.data.atomic`) and file digests (:mod:`~walletfaq.data.integrity`).
Imports nothing from the layers above.
"""
