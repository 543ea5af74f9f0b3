"""Base model resolution, prompt formatting, LoRA training and batched generation."""
