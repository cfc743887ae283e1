"""The model zoo: documented specs and ``build_model``."""

import numpy as np

from eipviz.errors import EipvizError
from eipviz.zoo.specs import MODELS, ModelSpec, ParamCounts


def get_spec(name: str) -> ModelSpec:
    """Return the spec of a zoo model, or raise a clear error naming the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise EipvizError(f"Unknown model {name!r}. Choose one of: {', '.join(MODELS)}.") from None


def build_model(name: str):
    """Build the named zoo model (uncompiled, freshly initialised)."""
    # Imported here: reading a spec (recipes, the CLI submitting a run) then needs no Keras (4-5 s of CPU).
    from eipviz.zoo import architectures

    spec = get_spec(name)
    return getattr(architectures, spec.builder)(input_shape=spec.input_shape)


def param_counts(model) -> ParamCounts:
    """Count total, trainable and non-trainable parameters of a built model."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    non_trainable = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return ParamCounts(trainable + non_trainable, trainable, non_trainable)


__all__ = ["MODELS", "ModelSpec", "ParamCounts", "build_model", "get_spec", "param_counts"]
