"""``doctor``: what in a corpus hurts retrieval, ranked by severity."""
