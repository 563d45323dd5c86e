"""Evaluation of a retriever on labelled queries: metrics, reports, statistics."""
