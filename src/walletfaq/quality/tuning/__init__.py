"""Training: ``tune`` (data readers, adapter training, full fine-tuning)."""
