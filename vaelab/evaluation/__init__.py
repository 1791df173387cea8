"""What a trained model is worth: collapse and reconstruction metrics, probes, objectives, one evaluation pass."""
