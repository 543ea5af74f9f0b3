"""tuneforge: raw text corpora to an evaluated, promoted LoRA adapter. Pure logic, free of Dagster."""
