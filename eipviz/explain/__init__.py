"""Explanations of a ``Classifier``'s answers: gallery, uploads, overlays, faithfulness metrics, sanity checks."""
