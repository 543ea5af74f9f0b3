"""Raw corpora → canonical examples → cleaned corpora → curated train/validation/test splits."""
