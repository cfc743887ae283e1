"""``Classifier``: the one object that turns uint8 images into answers (probabilities, classes, CAMs).

Every caller (pages, CLI, evaluation, gallery, faithfulness, uploads) asks a
``Classifier`` instead of resizing, preprocessing or reading outputs itself:
one preparation path, one probabilities path (the softmax of the logits of the
same softmax-stripped graph the CAMs differentiate), and the CAMs of this
model cached on the instance, so they are freed with it.
"""

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from eipviz.attribution.cams import BaseCAM, Probes
from eipviz.attribution.graph import logit_model, softmax
from eipviz.attribution.layers import conv_feature_layers
from eipviz.attribution.memory import images_per_pass
from eipviz.attribution.methods import make_cam
from eipviz.errors import EipvizError
from eipviz.images import fit_images
from eipviz.preprocessing import check_fits, preprocess

PREDICT_BATCH = 500  # images per prediction batch, fewer for a model with large maps (``memory``)
CAMS_KEPT = 8  # (method, layer) pairs kept traced per model; the least recently used is dropped

Images = np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class StoredPredictions:
    """Where a model file's test-set probabilities are kept, so that each model file is evaluated once."""

    path: Path
    model_sha256: str  # of the model file as it was loaded: predictions of any other file never match
    sha256: str | None = None  # the manifest's, for shipped weights (written only by `ship`); None: kept on first use


@dataclass(frozen=True, eq=False)
class Classifier:
    """A Keras image classifier with what it takes to feed it and name its answers.

    Frozen: a variant (another preprocessing, say) is ``dataclasses.replace(classifier, ...)``,
    which starts with an empty CAM cache of its own. To only *try* another preprocessing, pass it to
    ``prepare``, ``logits`` or ``predict``: the same traced model runs it.
    """

    model: keras.Model
    name: str  # shown to the user, e.g. "resnet20v1 (resnet20v1.keras)"
    preprocessing: str  # a name in eipviz.preprocessing.PREPROCESSINGS
    class_names: tuple[str, ...]
    dataset: str | None  # the dataset it was trained on, when known
    cam_layer: str  # the layer its CAMs look at by default
    source: str  # the file it was loaded from
    note: str | None = None  # e.g. why the automatic CAM layer is smaller than 5x5
    warning: str | None = None  # what its answers should not be trusted for, e.g. a preprocessing far off
    predictions: StoredPredictions | None = None  # None: evaluated afresh each time (uploads)
    sha256: str | None = None  # of the model file, for an upload whose file is gone (the report names it)
    _cams: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)
    _cams_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    probes: Probes = field(init=False, repr=False)  # the traced passes its CAMs share (and method classes')

    def __post_init__(self):
        object.__setattr__(self, "probes", Probes(self.model))
        check_fits(self.preprocessing, self.input_size)
        outputs = int(self.model.outputs[0].shape[-1])
        if len(self.class_names) != outputs:
            raise EipvizError(f"{self.name} has {outputs} outputs but {len(self.class_names)} class names.")

    @property
    def shown_source(self) -> str:
        """Where it came from, as a shared file (report, exported sheet) shows it: the file and its folder
        (``weights/resnet20v1.keras``, ``RUN_ID/best.keras``), not the server's whole path."""
        return str(Path(*Path(self.source).parts[-2:]))

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(height, width, channels) the model takes."""
        height, width, channels = self.model.inputs[0].shape[1:]
        return int(height), int(width), int(channels)

    @property
    def cam_layers(self) -> list[str]:
        """Every layer a CAM can look at, in graph order."""
        return conv_feature_layers(self.model)

    @functools.cached_property
    def _logits_model(self) -> keras.Model:
        return logit_model(self.model)

    @functools.cached_property
    def predict_batch(self) -> int:
        """Images per prediction batch: ``PREDICT_BATCH``, or as many as fit ``memory.PASS_BUDGET_BYTES``."""
        return images_per_pass(self.model, PREDICT_BATCH)

    @property
    def _black(self) -> np.ndarray:
        """One black uint8 image at the input size (the reference Integrated Gradients starts from)."""
        return np.zeros((1, *self.input_size), np.uint8)

    def fit(self, images: Images) -> np.ndarray:
        """uint8 images (N, H, W, C) at the model's input size: one array, or a list of any sizes."""
        if isinstance(images, np.ndarray):
            return fit_images(images, self.input_size)
        return np.stack([fit_images(np.asarray(image)[None], self.input_size)[0] for image in images])

    def prepare(self, images: Images, preprocessing: str | None = None) -> np.ndarray:
        """Model inputs (N, H, W, C) float32 from uint8 images: ``fit``, then the model's preprocessing (or
        ``preprocessing``, to try another one)."""
        return preprocess(self.fit(images), preprocessing or self.preprocessing)

    def logits(self, images: Images, preprocessing: str | None = None) -> np.ndarray:
        """Pre-softmax class scores (N, K); ``preprocessing`` as in ``prepare``."""
        inputs = self.prepare(images, preprocessing)
        return np.asarray(self._logits_model.predict(inputs, batch_size=self.predict_batch, verbose=0), np.float32)

    def probabilities(self, images: Images) -> np.ndarray:
        """Class probabilities (N, K): the softmax of ``logits``."""
        return softmax(self.logits(images))

    def predict(self, images: Images, preprocessing: str | None = None) -> np.ndarray:
        """The top class index of each image (N,); ``preprocessing`` as in ``prepare``."""
        return self.logits(images, preprocessing=preprocessing).argmax(axis=1)

    def class_index(self, name_or_number: str | int) -> int:
        """The index of a class given by name (``"cat"``) or by number (``3`` or ``"3"``)."""
        if isinstance(name_or_number, str) and name_or_number in self.class_names:
            return self.class_names.index(name_or_number)
        text = str(name_or_number).strip()
        if text.isdigit() and int(text) < len(self.class_names):
            return int(text)
        raise EipvizError(f"Unknown class {name_or_number!r}. Use a name ({', '.join(self.class_names)}) "
                          f"or an index from 0 to {len(self.class_names) - 1}.")

    def cam(self, method: str = "gradcam", layer: str | None = None) -> BaseCAM:
        """The CAM of ``method`` at ``layer`` (default: ``cam_layer``), traced once and kept on this instance
        (the ``CAMS_KEPT`` most recently used); methods at one layer share their traced passes."""
        key = (method, layer or self.cam_layer)
        with self._cams_lock:  # pages share a classifier across sessions: trace each CAM once
            if key not in self._cams:
                self._cams[key] = make_cam(self.model, *key, reference_input=self.prepare(self._black)[0],
                                           probes=self.probes)
                while len(self._cams) > CAMS_KEPT:
                    self._cams.popitem(last=False)
            self._cams.move_to_end(key)
            return self._cams[key]

    def cams(self, images: Images, method: str = "gradcam", layer: str | None = None,
             classes: int | str | Sequence[int | str] | np.ndarray | None = None, upsample: bool = True,
             aug_smooth: bool = False, eigen_smooth: bool = False) -> np.ndarray:
        """CAMs (N, H, W) float32 in [0, 1] for ``classes`` (None: each image's top class; one or one per image,
        by index or by name, as ``class_index`` reads them)."""
        if classes is not None:
            classes = [self.class_index(c) for c in np.atleast_1d(np.asarray(classes, dtype=object))]
        maps, _, _ = self.cam(method, layer)(self.prepare(images), classes, upsample=upsample,
                                             aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
        return maps
