"""Tables about zoo models and their recipes, shared by the Models page and the CLI."""

import pandas as pd

from eipviz.data import dataset_label
from eipviz.receptive_field import receptive_field_table
from eipviz.recipes import RECIPES, get_recipe
from eipviz.zoo import MODELS, build_model, get_spec, param_counts


def zoo_overview() -> list[dict]:
    """One row per zoo model: dataset, params built vs documented, documented accuracy."""
    rows = []
    for name, spec in MODELS.items():
        built = param_counts(build_model(name))
        rows.append({
            "model": name,
            "dataset": dataset_label(spec.dataset),  # as the model titles and the other pages write it
            "params": built.total,
            "documented_params": spec.documented_params.total,
            "params_match": built == spec.documented_params,
            "documented_accuracy": f"{spec.documented_accuracy:.2f}% ({spec.accuracy_kind})",
            "epochs": spec.documented_epochs,
            "seed": spec.seed_file,
        })
    return rows


def layer_table(name: str) -> list[dict]:
    """Receptive-field rows of a zoo model, with the seed's hand annotation beside each."""
    spec = get_spec(name)
    rows = []
    for row in receptive_field_table(build_model(name)):
        documented = spec.documented_rf.get(row.name)
        rows.append({
            "layer": row.name,
            "type": row.type,
            "output_shape": "x".join(str(d) for d in row.output_shape[1:]),
            "kernel": row.kernel,
            "stride": row.stride,
            "dilation": row.dilation,
            "jump": row.jump,
            "rf": row.receptive_field,
            "documented_rf": documented,
            "rf_differs": None if documented is None else documented != row.receptive_field,
            "params": row.params,
        })
    return rows


SIZE_COLUMNS = ("kernel", "stride", "dilation", "jump", "rf", "documented_rf")


def layer_frame(name: str) -> pd.DataFrame:
    """``layer_table`` as a DataFrame for display: whole numbers stay integers, not-applicable cells are missing.

    A column of numbers and None would be float64 (``3.000000``, ``nan``); sizes are pandas' nullable
    ``Int64`` instead, or text (``"3x1"``, missing for None) when a layer's size differs between axes;
    ``rf_differs`` is nullable ``boolean``.
    """
    rows = layer_table(name)
    frame = pd.DataFrame(rows)
    for column in SIZE_COLUMNS:
        values = [row[column] for row in rows]  # before pandas turns them into floats
        if all(value is None or isinstance(value, int) for value in values):
            frame[column] = pd.array(values, dtype="Int64")
        else:
            frame[column] = pd.array([None if value is None else "x".join(map(str, value))
                                      if isinstance(value, tuple) else str(value) for value in values],
                                     dtype="string")
    frame["rf_differs"] = pd.array([row["rf_differs"] for row in rows], dtype="boolean")
    return frame


def rf_annotation_check(frame: pd.DataFrame) -> tuple[str, str]:
    """("info" | "success" | "warning", message): whether the seed's hand-annotated receptive fields in a
    ``layer_frame`` agree with the computed ones, or that the seed annotates none."""
    if frame["documented_rf"].isna().all():
        return "info", "The seed does not annotate receptive fields; the table shows the computed ones only."
    differs = frame["rf_differs"].fillna(False).astype(bool)
    if differs.any():
        wrong = ", ".join(frame.loc[differs, "layer"])
        return "warning", f"The seed's hand-annotated receptive field is wrong for: {wrong}."
    return "success", "Every receptive field the seed annotates agrees with the computed one."


def recipe_table(model: str) -> list[dict]:
    """One row per recipe of a model, for the Models page."""
    rows = []
    for name in RECIPES:
        recipe = get_recipe(model, name)
        if recipe.schedule == "inverse_time":
            schedule = f"{recipe.learning_rate:g} / (1 + {recipe.decay:g} * epoch)"
        elif recipe.schedule == "one_cycle":
            schedule = f"one-cycle to {recipe.learning_rate:g}, cosine to 0"
        else:
            schedule = f"constant {recipe.learning_rate:g}"
        if recipe.plateau:
            schedule += f"; ReduceLROnPlateau(x{recipe.plateau.factor:.3f}, patience {recipe.plateau.patience})"
        rows.append({
            "recipe": name, "optimizer": recipe.optimizer, "schedule": schedule,
            "batch": recipe.batch_size, "epochs": recipe.epochs, "preprocessing": recipe.preprocessing,
            "augmentation": ", ".join(recipe.augmentation.transforms()) or "none",
            "source": recipe.source,
        })
    return rows
