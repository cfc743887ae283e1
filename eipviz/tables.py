"""Tables about zoo models and their recipes, shared by the Models page and the CLI."""

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
            "dataset": spec.dataset,
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
