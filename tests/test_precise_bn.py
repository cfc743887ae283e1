"""Precise BatchNorm: short runs validate with BatchNorm statistics of the weights they validate (issue #23 item 2)."""

import keras
import numpy as np
import pytest

from eipviz.preprocessing import preprocess
from eipviz.recipes import FAST
from eipviz.training.batches import ImageBatches
from eipviz.training.builders import PreciseBatchNorm, batch_norm_layers, reestimate_batch_norm
from eipviz.training.launcher import create_training_run
from eipviz.training.pipeline import TrainingModel
from eipviz.training.store import RunStore
from eipviz.training.worker import VALIDATION_BATCH, _arrays, train_run
from eipviz.zoo import get_spec


class ArrayBatches(keras.utils.PyDataset):
    """Fixed batches of in-memory arrays, in order."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


def _shifted_data(n=512, seed=0):
    """Inputs far from zero mean and unit variance, so BatchNorm's initial statistics are badly wrong."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, 4)) * 3.0 + 10.0).astype("float32")
    y = keras.utils.to_categorical((x[:, 0] > 10.0).astype(int), 2)
    return x, y


def _bn_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    features = keras.layers.Dense(8, name="features")(inputs)
    normalized = keras.layers.BatchNormalization(name="bn")(features)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.ReLU()(normalized))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _bn_input_statistics(model, batches):
    """Average over batches of the mean and (biased) variance of what the BatchNorm layer receives."""
    features = keras.Model(model.input, model.get_layer("features").output)
    values = [keras.ops.convert_to_numpy(features(batches[i][0])) for i in range(len(batches))]
    return np.mean([v.mean(axis=0) for v in values], axis=0), np.mean([v.var(axis=0) for v in values], axis=0)


def test_reestimation_sets_moving_statistics_to_the_training_batches_and_improves_inference():
    x, y = _shifted_data()
    train = ArrayBatches(x, y, 64)
    model = _bn_model()
    model.fit(train, epochs=1, verbose=0)  # 8 steps: momentum 0.99 keeps ~92% of the initial (0, 1)
    bn = model.get_layer("bn")
    mean, variance = _bn_input_statistics(model, train)
    stale_loss = model.evaluate(x, y, verbose=0)[0]
    assert not np.allclose(keras.ops.convert_to_numpy(bn.moving_mean), mean, atol=0.1)

    assert reestimate_batch_norm(model, (train[i] for i in range(len(train)))) == len(train)

    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), variance, rtol=1e-4, atol=1e-4)
    assert bn.momentum == 0.99  # restored
    assert model.evaluate(x, y, verbose=0)[0] < stale_loss


def test_a_small_last_batch_counts_by_its_images_not_as_a_whole_batch():
    """Batches of 64 and a last one of 2: each batch's statistics weigh as many images as it holds."""
    x, y = _shifted_data(n=66)
    model = _bn_model()
    batches = [(x[:64], y[:64]), (x[64:], y[64:])]
    assert reestimate_batch_norm(model, batches) == 2
    features = keras.Model(model.input, model.get_layer("features").output)
    values = [keras.ops.convert_to_numpy(features(part)) for part, _ in batches]
    sizes = np.array([[64], [2]])
    expected_mean = (np.stack([v.mean(axis=0) for v in values]) * sizes).sum(axis=0) / 66
    expected_variance = (np.stack([v.var(axis=0) for v in values]) * sizes).sum(axis=0) / 66
    bn = model.get_layer("bn")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), expected_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), expected_variance, rtol=1e-4,
                               atol=1e-4)


def test_fit_validates_and_ends_with_the_reestimated_statistics():
    x, y = _shifted_data()
    x_val, y_val = _shifted_data(256, seed=1)
    train = ArrayBatches(x, y, 64)
    model = _bn_model()
    history = model.fit(train, validation_data=(x_val, y_val), epochs=2, verbose=0,
                        callbacks=[PreciseBatchNorm(train, num_batches=len(train))])
    mean, variance = _bn_input_statistics(model, train)  # of the final weights
    bn = model.get_layer("bn")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), variance, rtol=1e-4, atol=1e-4)
    # What fit reported for the last epoch is what the model (as it would be saved) gives now.
    val_loss, val_accuracy = model.evaluate(x_val, y_val, verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(val_accuracy)


def test_only_short_epochs_reestimate():
    recipe = FAST["mnist14k"]
    assert recipe.precise_bn_batches(steps_per_epoch=16) == 16  # 2,048 images at batch 128
    assert recipe.precise_bn_batches(steps_per_epoch=99) == 32
    assert recipe.precise_bn_batches(steps_per_epoch=469) == 0  # all 60,000 images: unchanged
    assert FAST["resnet20v1"].precise_bn_batches(steps_per_epoch=1563) == 0


def test_a_short_worker_run_records_precise_bn_and_its_checkpoints_keep_the_validated_statistics(tmp_path, data_dir):
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, batch_size=64, subset=256)
    assert train_run(store, run_id, verbose=0) == "finished"
    run = store.get_run(run_id)
    assert run.hyperparameters["precise_bn_batches"] == 4
    _, _, x_val, y_val = _arrays(get_spec("mnist14k").dataset, 256, 0)
    x_val = preprocess(x_val.astype("float32")[..., None], run.hyperparameters["preprocessing"])
    y_val = keras.utils.to_categorical(y_val, 10)
    rows = store.epoch_rows(run_id)
    for checkpoint, validated in (("last.keras", rows[-1]["val_accuracy"]), ("best.keras", run.best_val_accuracy)):
        model = keras.models.load_model(tmp_path / run_id / checkpoint)
        scores = model.evaluate(x_val, y_val, batch_size=VALIDATION_BATCH, verbose=0, return_dict=True)
        assert scores["accuracy"] == pytest.approx(validated), checkpoint


# -- guards the second mutation review of 2026-11-27 found untested --------------------------------------------------


def test_precise_batchnorm_finds_the_batchnorm_inside_the_training_model():
    """The worker re-estimates through a TrainingModel, whose BatchNorm layers sit in the nested classifier."""
    inputs = keras.Input((4, 4, 1))
    normalized = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(2, 1)(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(normalized)))
    trainer = TrainingModel(classifier, [], "unit_scale")
    assert batch_norm_layers(trainer) == [classifier.get_layer("bn")]


def test_image_batches_are_full_and_leave_out_a_different_remainder_each_epoch():
    """5 images at batch 2: two full batches of distinct images (one shape, so one compiled step), a new order
    each epoch, so over epochs every image is trained on; fewer images than a batch make one batch of them all."""
    images = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1)
    batches = ImageBatches(images, np.eye(5, dtype=np.float32)[:, :, None, None], batch_size=2, seed=3)
    assert len(batches) == 2
    seen = set()
    for _ in range(8):
        epoch = np.concatenate([batches[i][0].ravel() for i in range(len(batches))]).tolist()
        assert [len(batches[i][0]) for i in range(len(batches))] == [2, 2] and len(set(epoch)) == 4
        seen.add(tuple(sorted(epoch)))
        batches.on_epoch_end()
    assert len(seen) > 1 and set().union(*seen) == {0, 1, 2, 3, 4}
    assert batches[0][1].argmax(axis=1).ravel().tolist() == batches[0][0].ravel().tolist()  # labels follow images
    small = ImageBatches(images[:3], np.eye(3), batch_size=128)
    assert len(small) == 1 and len(small[0][0]) == 3


def test_image_batches_draw_the_same_orders_from_the_same_seed():
    """A run's order of images, epoch after epoch, is its seed's: the same again, another for another seed."""
    images, labels = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1), np.zeros((40, 10), np.float32)

    def orders(seed):
        batches, drawn = ImageBatches(images, labels, batch_size=8, seed=seed), []
        for _ in range(3):
            drawn.append([batches[i][0].ravel().tolist() for i in range(len(batches))])
            batches.on_epoch_end()
        return drawn

    assert orders(7) == orders(7)
    assert orders(7) != orders(8)
