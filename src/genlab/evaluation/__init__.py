"""Sample-quality and likelihood metrics, and the feature networks they use."""
