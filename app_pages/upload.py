"""Upload page: predictions and CAMs for your own images (or a few test images), and your own model."""

import hashlib
from collections import Counter

import numpy as np
import streamlit as st

from app_pages.common import (
    default_layer_for,
    keep_across_pages,
    literal,
    model_identity,
    model_picker,
    show_error,
    show_upload_notes,
    upload_model_widget,
)
from eipviz.attribution.methods import METHODS, SMOOTHING, method_label
from eipviz.data import dataset_label, sample_images
from eipviz.errors import EipvizError
from eipviz.explain.predict import ImageExplanation, explain_images, explanation_overlay
from eipviz.images import IMAGE_TYPES, MAX_IMAGE_BYTES, DecodedImage, read_upload
from eipviz.plots import top_classes_figure

SAMPLE_COUNT = 4
SAMPLE_SEED = "up-sample-seed"  # set while the page shows test images instead of uploads; each click draws anew
IMAGE_LIMIT_MB = MAX_IMAGE_BYTES // 2**20  # the app's maxUploadSize is larger: model files need it
CLASSES_PICKED = "up-classes-picked"  # class boxes changed by hand; the others follow the top prediction
MAX_IMAGES = 16  # explained per upload: each costs a decode, a forward pass and a CAM per method, layer and class


def _draw_samples():
    st.session_state[SAMPLE_SEED] = st.session_state.get(SAMPLE_SEED, -1) + 1


def _use_uploads():
    st.session_state.pop(SAMPLE_SEED, None)


def _class_picked(key: str):
    st.session_state.setdefault(CLASSES_PICKED, set()).add(key)


def image_digest(image: np.ndarray) -> str:
    """A content hash of a uint8 image, its shape included: the key of its cached prediction and maps."""
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:24]


def kept(state_key: str, keys: list, compute) -> list:
    """The values of ``keys`` from this session's store ``state_key``, with the missing ones computed in one call
    (``compute(their positions)`` returns their values in order); the store then keeps only these keys."""
    saved = st.session_state.get(state_key, {})
    missing = [i for i, key in enumerate(keys) if key not in saved]
    fresh = dict(zip([keys[i] for i in missing], compute(missing))) if missing else {}
    current = {key: saved[key] if key in saved else fresh[key] for key in keys}
    st.session_state[state_key] = current
    return [current[key] for key in keys]


@st.cache_data(max_entries=4 * MAX_IMAGES, show_spinner=False)
def decoded_upload(data: bytes, name: str, model_side: int) -> DecodedImage:
    """An upload decoded once, not on every rerun; keyed by its bytes, each entry a preview-sized array
    (under 200 KB for the shipped 28-32 px models)."""
    return read_upload(data, name, model_side)


st.title("Explain your images")
upload_model_widget("up")
classifier, model_key = model_picker("up")
if classifier is None:
    st.stop()

files = st.file_uploader(
    f"Images (PNG, JPEG, WebP, BMP; up to {IMAGE_LIMIT_MB} MB each, {MAX_IMAGES} at a time)", type=IMAGE_TYPES,
    accept_multiple_files=True, key="up-images", max_upload_size=IMAGE_LIMIT_MB, on_change=_use_uploads,
    help=f"Any size or mode: images are EXIF-rotated, converted and resized to the model's input. "
         f"Files over {IMAGE_LIMIT_MB} MB are refused; of more than {MAX_IMAGES} files, the first {MAX_IMAGES} "
         f"are explained.")
st.button(f"Try {SAMPLE_COUNT} test images", key="up-try", on_click=_draw_samples,
          disabled=classifier.dataset is None,
          help=f"{SAMPLE_COUNT} images drawn at random from the {dataset_label(classifier.dataset)} test set "
               f"(click again for others); uploading images switches back to yours.")
keep_across_pages("up-method", "up-layer", "up-alpha", "up-smoothing")  # the uploads themselves cannot be kept
st.session_state.setdefault("up-alpha", 0.45)
c1, c2, c3 = st.columns(3)
method = c1.selectbox("CAM method", list(METHODS), format_func=method_label, key="up-method",
                      help="Methods marked slow run many forward passes per image.")
layers = classifier.cam_layers
default_layer_for("up-layer", classifier, model_key)
layer = c2.selectbox("Layer", layers, key="up-layer")
alpha = c3.slider("Overlay opacity", 0.0, 1.0, step=0.05, key="up-alpha")
smoothing = st.pills("Smoothing", list(SMOOTHING), selection_mode="multi", format_func=SMOOTHING.get,
                     key="up-smoothing")

inputs: list = []  # (name, uint8 image, the file's (width, height) when shrunk on reading, whether the file was grey)
if st.session_state.get(SAMPLE_SEED) is not None and classifier.dataset is not None:
    try:
        inputs = [(name, image, None, False) for name, image in
                  sample_images(classifier.dataset, SAMPLE_COUNT, st.session_state[SAMPLE_SEED])]
    except EipvizError as error:
        show_error(error)
        st.stop()
    if files:  # the uploads are still in the uploader above: one click back to them
        note, back = st.columns([3, 1], vertical_alignment="center")
        note.caption(f"Test images from {dataset_label(classifier.dataset)}, true class in brackets.")
        back.button(f"Back to your {len(files)} image{'s' if len(files) != 1 else ''}", key="up-back",
                    on_click=_use_uploads)
    else:
        st.caption(f"Test images from {dataset_label(classifier.dataset)}, true class in brackets. "
                   f"Upload images to explain your own.")
elif not files:
    st.info(f"Upload images to classify with {classifier.name}: {dataset_label(classifier.dataset)}, input "
            f"{'x'.join(map(str, classifier.input_size))}. Or try a few test images.")
    st.stop()
else:
    if len(files) > MAX_IMAGES:
        left_out = len(files) - MAX_IMAGES
        st.warning(f"{len(files)} images uploaded: the first {MAX_IMAGES} are explained, "
                   f"{'the other one is' if left_out == 1 else f'the other {left_out} are'} not. "
                   f"Remove some to explain others.")
    for file in files[:MAX_IMAGES]:
        try:
            decoded = decoded_upload(file.getvalue(), file.name, max(classifier.input_size[:2]))
            inputs.append((file.name, decoded.pixels, decoded.original_size, decoded.grayscale))
        except EipvizError as error:
            show_error(error)
if not inputs:
    st.stop()

images = [image for _, image, _, _ in inputs]
digests = [image_digest(image) for image in images]


def predicted(missing: list[int]) -> list[np.ndarray]:
    with st.spinner("Predicting…"):
        return list(classifier.probabilities([images[i] for i in missing]))


try:
    probabilities = np.stack(kept("up-probabilities", [(model_key, digest) for digest in digests], predicted))
except EipvizError as error:
    show_error(error)
    st.stop()

boxes, chosen, seen = [], [], Counter()
for (name, image, original_size, grayscale), digest, row in zip(inputs, digests, probabilities):
    box = st.container(border=True)
    box.markdown(f"**{literal(name)}**")  # a file name is the uploader's text, not markdown
    show_upload_notes(box, classifier, image, original_size, grayscale)
    # The image's own key, not its place in the list: removing another file, or the run's checkpoint improving,
    # keeps the class chosen for it (until 2026-11-27 both reset it); another model or image starts afresh.
    # A box never changed by hand follows the top prediction, of an improved checkpoint too.
    seen[name, digest] += 1
    class_key = f"up-class-{model_identity(model_key)}-{name}-{digest}-{seen[name, digest]}"
    if class_key not in st.session_state.get(CLASSES_PICKED, ()):
        st.session_state[class_key] = int(row.argmax())
    chosen.append(box.selectbox("Explain class", range(len(classifier.class_names)), key=class_key,
                                format_func=lambda k: classifier.class_names[k], on_change=_class_picked,
                                args=(class_key,), help="The top prediction until you pick another."))
    boxes.append(box)


def explained(missing: list[int]) -> list[np.ndarray]:
    with st.spinner(f"Explaining with {method_label(method)}…"):
        explanations = explain_images(classifier, [images[i] for i in missing], method=method, layer=layer,
                                      class_indices=[chosen[i] for i in missing], probabilities=probabilities[missing],
                                      aug_smooth="aug_smooth" in smoothing, eigen_smooth="eigen_smooth" in smoothing)
    return [explanation.cam for explanation in explanations]


# The maps are kept, and only blended on drawing: the opacity slider recomputes nothing, and another class for
# one image recomputes that image's map alone (until 2026-11-27 every change re-ran the method on every image).
try:
    cams = kept("up-maps", [(model_key, digest, method, layer, int(cls), tuple(smoothing))
                            for digest, cls in zip(digests, chosen)], explained)
except EipvizError as error:
    show_error(error)
    st.stop()

for position, (box, image, fitted, row, cls, cam) in enumerate(
        zip(boxes, images, classifier.fit(images), probabilities, chosen, cams)):
    explanation = ImageExplanation(row, int(cls), cam, explanation_overlay(fitted, cam, alpha))
    left, middle, right = box.columns([1, 1, 2])
    left.image(image, caption="input", width="stretch")
    middle.image(explanation.overlay, width="stretch",
                 caption=f"{method}: {classifier.class_names[cls]} ({explanation.probabilities[cls]:.1%})")
    right.plotly_chart(top_classes_figure(explanation.top(classifier.class_names)), key=f"top5-{position}")
