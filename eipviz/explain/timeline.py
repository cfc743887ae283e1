"""Explanations across training epochs: a fixed probe set's predictions and Grad-CAMs, one set per epoch.

A run keeps 16 test images chosen once per dataset (stratified over
classes) in ``timeline.npz`` in its folder. At each epoch end the worker adds
their probabilities (float32; float16 ties flipped a caption's class away from the
class its map explains), their Grad-CAM at the model's default layer
(at that layer's resolution, uint8) and the probe set's deletion AUC and
average drop; the whole file is rewritten atomically, as ``last.keras`` is.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from eipviz.atomic import write_npz_atomically
from eipviz.attribution.graph import softmax
from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.explain.faithfulness import map_faithfulness
from eipviz.explain.overlay import FONT, FONT_SCALE, as_rgb, overlay

PROBE_SIZE = 16
PROBE_SEED = 0
TIMELINE_FILE = "timeline.npz"
METHOD = "gradcam"
METRICS = ("probe_deletion_auc", "probe_average_drop_pct")  # per-epoch metrics in the run store
RECORDED = ("deletion", "drop")  # the faithfulness metrics (``eipviz.explain.faithfulness``) those come from


def probe_indices(labels: np.ndarray, n: int = PROBE_SIZE, seed: int = PROBE_SEED) -> np.ndarray:
    """``n`` test-set indices stratified over classes: classes take turns, each class's images in a seeded
    order. The same labels always give the same indices, so every run of a dataset shares its probe set."""
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(n, len(labels)):
        for members in per_class:
            if members and len(picked) < n:
                picked.append(members.pop(0))
    return np.array(sorted(picked, key=lambda i: (labels[i], i)), np.int64)


@dataclass(frozen=True)
class Timeline:
    """One run's probe set and what the model made of it at each recorded epoch."""

    indices: np.ndarray  # (n,) test-set indices
    images: np.ndarray  # (n, H, W, C) uint8
    labels: np.ndarray  # (n,)
    class_names: tuple[str, ...]
    layer: str
    epochs: np.ndarray  # (E,) 1-based, increasing
    probabilities: np.ndarray  # (E, n, K) float32 (float16 in files written before 2026-11-27)
    maps: np.ndarray  # (E, n, h, w) uint8, Grad-CAM of the predicted class
    deletion_auc: np.ndarray  # (E,)
    average_drop_pct: np.ndarray  # (E,)

    @property
    def predictions(self) -> np.ndarray:
        """(E, n) the predicted class of each probe image at each epoch."""
        return self.probabilities.argmax(axis=-1)

    def position(self, epoch: int) -> int:
        """The row of ``epoch`` in the arrays."""
        rows = np.flatnonzero(self.epochs == epoch)
        if not len(rows):
            raise EipvizError(f"Epoch {epoch} is not in this timeline (it has epochs {self.epochs.min()}-"
                              f"{self.epochs.max()}).")
        return int(rows[0])

    def accuracy(self) -> np.ndarray:
        """(E,) the share of probe images classified right at each epoch."""
        return (self.predictions == self.labels[None]).mean(axis=1)


def start_timeline(path: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                   class_names, layer: str, keep_epochs: int) -> Timeline:
    """The run's timeline to append to: the stored one cut to its first ``keep_epochs`` epochs (a resumed run
    goes on from its checkpoint), else an empty one on this probe set."""
    stored = read_timeline(path) if path.is_file() else None
    if stored is not None and stored.layer == layer:
        keep = stored.epochs <= keep_epochs
        return Timeline(stored.indices, stored.images, stored.labels, stored.class_names, layer, stored.epochs[keep],
                        stored.probabilities[keep], stored.maps[keep], stored.deletion_auc[keep],
                        stored.average_drop_pct[keep])
    k = len(class_names)
    return Timeline(np.asarray(indices, np.int64), np.asarray(images, np.uint8), np.asarray(labels, np.int64),
                    tuple(class_names), layer, np.zeros(0, np.int64), np.zeros((0, len(images), k), np.float32),
                    np.zeros((0, len(images), 1, 1), np.uint8), np.zeros(0), np.zeros(0))


def record_epoch(timeline: Timeline, classifier: Classifier, epoch: int, path: Path) -> Timeline:
    """Explain the probe set with the model as it is now, append it as ``epoch``, write the file; return it."""
    inputs = classifier.prepare(timeline.images)
    cam = classifier.cam(METHOD, timeline.layer)
    maps, classes, logits = cam(inputs)
    probabilities = softmax(logits)
    scores = map_faithfulness(cam, inputs, maps, classes, metrics=RECORDED)  # the rest would be thrown away
    height, width = (int(d) for d in cam.probe.outputs[0].shape[1:3])  # stored at the layer's resolution
    small = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA) for m in maps])
    maps_uint8 = np.round(np.clip(small, 0, 1) * 255).astype(np.uint8)
    previous = timeline.maps if len(timeline.epochs) else np.zeros((0, *maps_uint8.shape), np.uint8)
    updated = Timeline(
        timeline.indices, timeline.images, timeline.labels, timeline.class_names, timeline.layer,
        np.append(timeline.epochs, epoch).astype(np.int64),
        np.concatenate([timeline.probabilities.astype(np.float32), probabilities[None].astype(np.float32)]),
        np.concatenate([previous, maps_uint8[None]]),
        np.append(timeline.deletion_auc, scores["deletion_auc"]),
        np.append(timeline.average_drop_pct, scores["average_drop_pct"]))
    write_timeline(path, updated)
    return updated


def write_timeline(path: Path, timeline: Timeline) -> None:
    write_npz_atomically(path, indices=timeline.indices, images=timeline.images, labels=timeline.labels,
                         class_names=np.array(timeline.class_names), layer=timeline.layer, epochs=timeline.epochs,
                         probabilities=timeline.probabilities, maps=timeline.maps,
                         deletion_auc=timeline.deletion_auc, average_drop_pct=timeline.average_drop_pct)


def read_timeline(path: Path) -> Timeline | None:
    """The timeline stored at ``path``, or None when there is none (runs from before timelines existed)."""
    if not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return Timeline(f["indices"], f["images"], f["labels"], tuple(str(c) for c in f["class_names"]),
                            str(f["layer"]), f["epochs"], f["probabilities"], f["maps"], f["deletion_auc"],
                            f["average_drop_pct"])
    except Exception as error:  # noqa: BLE001  a damaged zip raises BadZipFile, EOFError, zlib.error...
        raise EipvizError(f"{path} is not a readable timeline ({type(error).__name__}: {error}).") from error


@dataclass(frozen=True)
class TimelineTile:
    """One probe image at one epoch, as the page and the sheet show it."""

    overlay: np.ndarray  # RGB, the predicted class's Grad-CAM over the image
    caption: str  # the predicted class and its probability: "automobile 100%"
    truth: str  # the true class
    right: bool


def timeline_tiles(timeline: Timeline, epoch: int, size: int = 96) -> list[TimelineTile]:
    """A ``TimelineTile`` per probe image at ``epoch``."""
    row = timeline.position(epoch)
    tiles = []
    for i, image in enumerate(timeline.images):
        predicted, truth = int(timeline.predictions[row, i]), int(timeline.labels[i])
        cam = timeline.maps[row, i].astype(np.float32) / 255
        caption = f"{timeline.class_names[predicted]} {float(timeline.probabilities[row, i, predicted]):.0%}"
        tiles.append(TimelineTile(overlay(as_rgb(image), cam, size=size), caption, timeline.class_names[truth],
                                  predicted == truth))
    return tiles


def timeline_sheet(timeline: Timeline, epoch: int, columns: int = 4, size: int = 128) -> np.ndarray:
    """One RGB image of the probe set at ``epoch``: a header line, then a grid of overlays, each framed green
    (right) or red (wrong) with its prediction below, marked ``x`` when wrong (for those who cannot tell red
    from green) and then followed by the true class (a report's reader has no page to ask)."""
    tiles = timeline_tiles(timeline, epoch, size)
    row = timeline.position(epoch)
    header, caption, frame, line = 22, 32, 3, 14
    rows = -(-len(tiles) // columns)
    sheet = np.full((header + rows * (size + caption), columns * size, 3), 255, np.uint8)
    cv2.putText(sheet, f"epoch {epoch}: {timeline.accuracy()[row]:.0%} right, deletion AUC "
                       f"{timeline.deletion_auc[row]:.3f}, avg drop {timeline.average_drop_pct[row]:.1f}%",
                (4, 15), FONT, FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    for i, tile in enumerate(tiles):
        top, left = header + (i // columns) * (size + caption), (i % columns) * size
        framed = tile.overlay.copy()
        cv2.rectangle(framed, (0, 0), (size - 1, size - 1), (0, 150, 0) if tile.right else (210, 0, 0), frame)
        sheet[top:top + size, left:left + size] = framed
        lines = [tile.caption] if tile.right else [f"x {tile.caption}", f"true: {tile.truth}"]  # zoo names fit
        for number, text in enumerate(lines):
            cv2.putText(sheet, fitted_caption(text, size - 4) if number == 0 else text,
                        (left + 3, top + size + 13 + number * line), FONT, FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def fitted_caption(text: str, width: int) -> str:
    """``text`` (``x automobile 100%``) cut to ``width`` pixels by shortening the class name, never the
    percentage: a caption cut at its end read 100% as 10%."""
    head, _, percent = text.rpartition(" ")
    while cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0] > width and len(head) > 1:
        head = head[:-1]
        text = f"{head.rstrip()}. {percent}"
    return text


def export_timeline(timeline: Timeline, out: Path, frame_seconds: float = 0.6) -> list[Path]:
    """Write the sheet of every epoch as ``epoch-001.png`` ... and all of them as ``timeline.gif``; return the
    paths. The GIF holds its last frame twice as long, so a loop shows where training ended."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sheets = [timeline_sheet(timeline, int(epoch)) for epoch in timeline.epochs]
    if not sheets:
        raise EipvizError("This timeline has no epoch yet: the first one is recorded when epoch 1 ends.")
    paths = []
    for epoch, sheet in zip(timeline.epochs, sheets):
        paths.append(out / f"epoch-{int(epoch):03d}.png")
        Image.fromarray(sheet).save(paths[-1])
    frames = [Image.fromarray(sheet) for sheet in sheets]
    durations = [int(frame_seconds * 1000)] * (len(frames) - 1) + [int(frame_seconds * 2000)]
    paths.append(out / "timeline.gif")
    frames[0].save(paths[-1], save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return paths
