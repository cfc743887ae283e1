"""The Keras callback that records a run's explanation timeline (``eipviz.explain.timeline``) as it trains."""

from pathlib import Path

import keras
import numpy as np

from eipviz.classifier import Classifier
from eipviz.data import load_test_split
from eipviz.errors import EipvizError
from eipviz.explain.timeline import TIMELINE_FILE, Timeline, probe_indices, record_epoch, start_timeline


class ExplanationTimeline(keras.callbacks.Callback):
    """At each epoch end, explains the run's probe set with the model as it is, appends it to ``timeline.npz``,
    and puts the probe set's deletion AUC and average drop into the epoch's logs, so the run store and
    ``metrics.csv`` record them like any metric (it must come before the callbacks that record logs)."""

    def __init__(self, classifier: Classifier, run_dir: Path, initial_epoch: int):
        super().__init__()
        self.classifier = classifier
        self.path = Path(run_dir) / TIMELINE_FILE
        images, labels = load_test_split(str(classifier.dataset))
        indices = probe_indices(labels)
        start = (images[indices], labels[indices], indices, classifier.class_names, classifier.cam_layer)
        try:
            self.timeline: Timeline = start_timeline(self.path, *start, initial_epoch)
        except EipvizError as error:  # a damaged file must not stop a resumed run from training
            print(f"{error} It starts again at this epoch.", flush=True)
            self.path.unlink()
            self.timeline = start_timeline(self.path, *start, initial_epoch)

    def on_epoch_end(self, epoch, logs=None):
        _ = self.model  # under JAX, reading Callback.model copies the training state into the classifier's variables
        self.timeline = record_epoch(self.timeline, self.classifier, epoch + 1, self.path)
        if logs is not None:
            logs["probe_deletion_auc"] = float(self.timeline.deletion_auc[-1])
            logs["probe_average_drop_pct"] = float(self.timeline.average_drop_pct[-1])
            logs["probe_accuracy"] = float(np.mean(self.timeline.accuracy()[-1]))
