"""Explanations of a ``Classifier``'s answers: gallery, uploaded images, overlays, faithfulness metrics, sanity checks."""
