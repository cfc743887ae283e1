"""Explanations: the CAM family, overlays and faithfulness metrics."""
