"""The Keras log parser on the five seed logs and on every log shape we promise to read."""

import json
import math
import re

import pytest

from eipviz.errors import EipvizError
from eipviz.keraslog import parse_log, parse_log_bytes
from tests.conftest import seed_file

SEED_EPOCHS = {"000": 50, "001": 50, "002": 20, "003": 50, "004": 50}


def seed_text(prefix):
    return seed_file(prefix).read_text()


def metric_lines(text):
    """Every final metrics line of a seed, independently of the parser: (loss, acc, val_loss, val_acc)."""
    pattern = r"loss: ([\d.]+) - acc: ([\d.]+) - val_loss: ([\d.]+) - val_acc: ([\d.]+)"
    return [tuple(float(v) for v in m) for m in re.findall(pattern, text)]


@pytest.mark.parametrize("prefix", SEED_EPOCHS)
def test_every_seed_epoch_and_metric_matches_the_text(prefix):
    text = seed_text(prefix)
    rows = parse_log(text).rows()
    assert [r["epoch"] for r in rows] == list(range(1, SEED_EPOCHS[prefix] + 1))
    parsed = {(r["loss"], r["acc"], r["val_loss"], r["val_acc"]) for r in rows}
    assert parsed == set(metric_lines(text))  # seed 001 prints epoch 48 twice, identically


@pytest.mark.parametrize("prefix", ["001", "002", "004"])
def test_every_announced_scheduler_rate_is_kept(prefix):
    text = seed_text(prefix)
    announced = {int(e): float(v) for e, v in
                 re.findall(r"Epoch 0*(\d+): LearningRateScheduler setting learning rate to ([\d.e-]+?)\.?\s", text)}
    rates = parse_log(text).learning_rates
    assert announced and all(rates[e] == pytest.approx(v) for e, v in announced.items())


def test_seed_002_second_epoch_rate_and_seed_004_drop_at_epoch_32():
    assert parse_log(seed_text("002")).learning_rates[2] == 0.0022744503
    assert parse_log(seed_text("004")).learning_rates[32] == pytest.approx(4.1666666666666665e-05)


def test_seed_000_plateau_reductions_hold_from_the_next_epoch():
    rates = parse_log(seed_text("000")).learning_rates
    assert 6 not in rates  # the starting rate is never announced
    assert rates[7] == rates[18] == pytest.approx(0.0009486833062967954)
    assert rates[19] == pytest.approx(0.0003000000007813074) and rates[30] == rates[50] == 0.0001


def test_csv_header_is_epoch_then_metrics_as_printed_then_lr_and_round_trips(tmp_path):
    from eipviz.curves import import_log
    from eipviz.training.store import RunStore

    parsed = parse_log(seed_text("002"))
    text = parsed.to_csv()
    assert text.splitlines()[0] == "epoch,loss,acc,val_loss,val_acc,lr"
    assert text.splitlines()[2] == "2,0.1061,0.982,0.0503,0.9885,0.0022744503"
    assert parse_log(text).rows() == parsed.rows()  # our CSV reads back unchanged (1-based epochs)
    # stored as an imported run, the epochs and values come back unchanged (names made canonical)
    store = RunStore(tmp_path)
    rows = store.epoch_rows(import_log(store, parsed, "seed 002"))
    assert [r["epoch"] for r in rows] == list(range(1, 21))
    assert [(r["val_accuracy"], r["learning_rate"]) for r in rows] == [(r["val_acc"], r["lr"]) for r in parsed.rows()]


def test_an_import_that_fails_part_way_leaves_no_half_imported_run(tmp_path, monkeypatch):
    """The run, its epochs and its best epoch are one transaction: readers listed an imported run finished with
    no epochs yet, and a killed import left one."""
    import sqlite3

    from eipviz.curves import import_log
    from eipviz.training import store as store_module
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)
    parsed = parse_log(seed_text("002"))
    real_rows = store_module._metric_rows

    def locked_at_the_metrics(run_id, epochs):
        assert [run.id for run in RunStore(tmp_path).list_runs()] == []  # another reader: no run yet
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store_module, "_metric_rows", locked_at_the_metrics)
    with pytest.raises(sqlite3.OperationalError):
        import_log(store, parsed, "seed 002")
    monkeypatch.setattr(store_module, "_metric_rows", real_rows)
    assert store.list_runs() == [] and [path.name for path in tmp_path.iterdir() if path.is_dir()] == []
    run = store.get_run(import_log(store, parsed, "seed 002"))
    best = max(parsed.rows(), key=lambda row: row["val_acc"])
    assert (run.status, run.best_epoch, store.completed_epochs(run.id)) == ("finished", best["epoch"], 20)


def test_committed_reference_csvs_equal_a_fresh_parse_of_the_seeds():
    from eipviz.curves import REFERENCE_DIR
    from eipviz.zoo import MODELS

    for name, spec in MODELS.items():
        committed = (REFERENCE_DIR / f"{name}.csv").read_text().splitlines()
        assert spec.seed_file in committed[0]
        assert committed[1:] == parse_log(seed_file(spec.seed_file).read_text()).to_csv().splitlines()


KERAS2 = """Train on 60000 samples, validate on 10000 samples
Epoch 1/2
60000/60000 [==============================] - 10s 168us/step - loss: 0.4110 - acc: 0.9359 - val_loss: 0.0839 - val_acc: 0.9848
Epoch 2/2
60000/60000 [==============================] - 7s 120us/step - loss: 0.1061 - acc: 0.9820 - val_loss: 0.0503 - val_acc: 0.9885
"""  # noqa: E501 (verbatim Keras output)

TFKERAS2 = """Epoch 1/2
  32/1875 [..............................] - ETA: 5:12 - loss: 2.3026 - accuracy: 0.0938\r 64/1875 [>.............................] - ETA: 3:01 - loss: 2.2000 - accuracy: 0.1200\r1875/1875 [==============================] - 12s 6ms/step - loss: 0.2947 - accuracy: 0.9143 - val_loss: 0.1405 - val_accuracy: 0.9582
Epoch 2/2
1875/1875 [==============================] - 11s 6ms/step - loss: 0.1402 - accuracy: 0.9585 - val_loss: 0.1010 - val_accuracy: 0.9690
"""  # noqa: E501 (verbatim Keras output)

VERBOSE2 = """Epoch 1/3
 - 3s - loss: 0.5000 - acc: 0.8000
Epoch 2/3
1875/1875 - 2s - 358ms/epoch - loss: 0.4000 - accuracy: 0.8500 - val_loss: 0.3500 - val_accuracy: 0.8700
Epoch 3/3
"""

KERAS3 = """Epoch 1/2
\x1b[1m 50/391\x1b[0m ━━━━━━━━━━━━━━━━━━━━ 12s 41ms/step - accuracy: 0.2 - loss: 2.1
391/391 ━━━━━━━━━━━━━━━━━━━━ 21s 50ms/step - accuracy: 0.4556 - loss: 1.8465 - val_accuracy: 0.3583 - val_loss: 2.5776 - learning_rate: 0.0010
Epoch 2/2
391/391 ━━━━━━━━━━━━━━━━━━━━ 20s 49ms/step - accuracy: 0.6000 - loss: 1.2000 - val_accuracy: 0.5500 - val_loss: 1.3000 - learning_rate: 5.0000e-04
"""  # noqa: E501 (verbatim Keras output)


def test_keras2_log():
    rows = parse_log(KERAS2).rows()
    assert rows == [{"epoch": 1, "loss": 0.411, "acc": 0.9359, "val_loss": 0.0839, "val_acc": 0.9848},
                    {"epoch": 2, "loss": 0.1061, "acc": 0.982, "val_loss": 0.0503, "val_acc": 0.9885}]


def test_tf_keras2_progress_updates_are_not_epochs():
    rows = parse_log(TFKERAS2).rows()
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0]["accuracy"] == 0.9143


def test_verbose2_lines_and_a_truncated_last_epoch():
    parsed = parse_log(VERBOSE2)
    assert sorted(parsed.epochs) == [1, 2]  # epoch 3 has no metrics line: not an epoch
    assert parsed.epochs[1] == {"loss": 0.5, "acc": 0.8}
    assert parsed.epochs[2]["val_accuracy"] == 0.87


def test_keras3_bar_with_learning_rate_metric_goes_to_lr_last():
    parsed = parse_log(KERAS3)
    assert parsed.columns == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss", "lr"]
    assert [r["lr"] for r in parsed.rows()] == [0.001, 0.0005]


def test_markdown_and_html_wrapping():
    wrapped = ("<p><b>Epoch 1/1</b><br>\n"
               "| 100/100 [====] - 1s - loss: 0.5 - val\\_loss: 0.6 - val\\_acc: 0.7 |<br></p>\n"
               "```\n    Epoch 00001: val_acc improved from -inf to 0.70000\n```\n&lt;end&gt;")
    assert parse_log(wrapped).rows() == [{"epoch": 1, "loss": 0.5, "val_loss": 0.6, "val_acc": 0.7}]


def test_callback_lines_any_metric_names_nan_and_inf():
    log = """Epoch 5/8
Epoch 5: LearningRateScheduler setting learning rate to 0.01.
10/10 - 1s - loss: nan - mean_io_u: 0.42 - auc_1: 0.91 - dice_coef: inf - top_k_categorical_accuracy: 0.99
Epoch 5: ReduceLROnPlateau reducing learning rate to 0.001.
Epoch 6/8
10/10 - 1s - loss: 0.3 - mean_io_u: 0.5
Epoch 6: early stopping
"""
    parsed = parse_log(log)
    first = parsed.rows()[0]
    assert first["epoch"] == 5 and math.isnan(first["loss"]) and first["dice_coef"] == math.inf
    assert first["mean_io_u"] == 0.42 and first["auc_1"] == 0.91 and first["top_k_categorical_accuracy"] == 0.99
    assert parsed.learning_rates == {5: 0.01, 6: 0.001}  # resumed run starting at epoch 5


def test_repeated_epochs_keep_the_later_values():
    log = "Epoch 1/2\n1/1 - loss: 0.9\nEpoch 1/2\n1/1 - loss: 0.7\nEpoch 2/2\n1/1 - loss: 0.5\n"
    assert [r["loss"] for r in parse_log(log).rows()] == [0.7, 0.5]


def test_csvlogger_file_and_history_json():
    csvlogger = "epoch,accuracy,loss,learning_rate\n0,0.5,1.2,0.01\n1,0.6,1.0,0.005\n"
    parsed = parse_log(csvlogger)
    assert parsed.rows() == [{"epoch": 1, "accuracy": 0.5, "loss": 1.2, "lr": 0.01},
                             {"epoch": 2, "accuracy": 0.6, "loss": 1.0, "lr": 0.005}]
    history = json.dumps({"loss": [1.0, 0.8], "val_acc": [0.5, 0.6], "lr": [0.1, 0.1]})
    assert parse_log(history).columns == ["epoch", "loss", "val_acc", "lr"]


def test_csvlogger_na_and_list_values_are_left_out_not_refused():
    """Keras 3's CSVLogger writes ``NA`` for an epoch without validation and a list for a vector metric."""
    csvlogger = ("epoch,accuracy,f1_score,loss,val_accuracy,val_loss\n"
                 '0,0.5,"[0.28, 0.65]",1.2,NA,NA\n1,0.6,"[0.3, 0.7]",1.0,0.55,0.9\n')
    parsed = parse_log(csvlogger)
    assert parsed.rows() == [
        {"epoch": 1, "accuracy": 0.5, "loss": 1.2, "val_accuracy": None, "val_loss": None},
        {"epoch": 2, "accuracy": 0.6, "loss": 1.0, "val_accuracy": 0.55, "val_loss": 0.9}]
    assert parsed.warnings == ["Column 'f1_score' holds values that are not numbers (such as '[0.28, 0.65]'); "
                               "they were left out."]


def test_a_csvlogger_file_appended_to_by_two_trainings_reads_the_last_and_says_so():
    parsed = parse_log("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n3,0.7\n0,1.1\n1,0.95\n")
    assert [(r["epoch"], r["loss"]) for r in parsed.rows()] == [(1, 1.1), (2, 0.95)]
    assert "holds 2 trainings" in parsed.warnings[0]
    one_epoch_first = parse_log("epoch,loss\n0,1.0\n0,1.1\n1,0.95\n")  # a first training of one epoch
    assert [r["loss"] for r in one_epoch_first.rows()] == [1.1, 0.95] and "holds 2 trainings" in \
        one_epoch_first.warnings[0]


def test_a_csvlogger_file_of_a_resumed_training_keeps_its_later_rows_and_names_the_epochs_replaced():
    """Resumed from its epoch-1 checkpoint (``fit(initial_epoch=1)``), a training logs epochs 1 and 2 again: it
    continues the run, as a resumed TensorBoard run does, and the earlier values it replaces are said, not lost
    unsaid."""
    parsed = parse_log("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n1,0.85\n2,0.75\n3,0.7\n")
    assert [(r["epoch"], r["loss"]) for r in parsed.rows()] == [(1, 1.0), (2, 0.85), (3, 0.75), (4, 0.7)]
    assert parsed.warnings == ["Epoch(s) 2, 3 appear twice with different values, as a training resumed from a "
                               "checkpoint logs them again; the later ones were kept."]
    assert parse_log("epoch,loss\n0,1.0\n1,0.9\n1,0.9\n").warnings == []  # the same values again lose nothing


@pytest.mark.parametrize("text, line", [("epoch,loss\n0,1.0\n-1,0.9\n", 3), ("epoch;loss\n-3;1.0\n", 2),
                                        (",loss\n-1,1.0\n0,0.9\n", 2)],
                         ids=["csvlogger", "semicolons", "pandas row index"])
def test_a_negative_epoch_is_refused_naming_its_line(text, line):
    with pytest.raises(EipvizError, match=rf"^Line {line} of the CSV has epoch -\d; epochs count up from 0\.$"):
        parse_log(text)


def test_a_csv_whose_first_row_is_a_later_epoch_says_how_it_was_numbered():
    parsed = parse_log("epoch,loss\n5,0.5\n6,0.4\n")
    assert [r["epoch"] for r in parsed.rows()] == [5, 6]
    assert "If this file is CSVLogger's" in parsed.warnings[0] and "'Epoch 6/N'" in parsed.warnings[0]


def test_a_progress_line_with_a_less_than_sign_loses_no_epoch():
    """tqdm prints ``[00:01<00:00, …]``; everything up to Keras 2's next ``[>…]`` was once taken for a tag."""
    log = ("100%|##########| 10/10 [00:01<00:00,  5.20it/s]\n"
           "Epoch 1/2\n 32/100 [========>.....................] - ETA: 0s - loss: 0.9000\n"
           "100/100 [==============================] - 1s 5ms/step - loss: 0.8000 - val_loss: 0.7000\n"
           "Epoch 2/2\n100/100 [==============================] - 0s 4ms/step - loss: 0.6000 - val_loss: 0.5000\n")
    parsed = parse_log(log)
    assert [(r["epoch"], r["loss"]) for r in parsed.rows()] == [(1, 0.8), (2, 0.6)] and parsed.warnings == []
    assert parse_log("<p>Epoch 1/1</p><p>1/1 - loss: 0.5</p>").rows() == [{"epoch": 1, "loss": 0.5}]


def test_an_evaluate_line_with_the_epochs_metrics_does_not_replace_the_last_epoch():
    log = ("Epoch 2/2\n4/4 - 1s - 100ms/step - accuracy: 0.5625 - loss: 0.7535\n"
           "4/4 - 0s - 20ms/step - accuracy: 0.6250 - loss: 0.7182\n")
    parsed = parse_log(log)
    assert parsed.rows() == [{"epoch": 2, "accuracy": 0.5625, "loss": 0.7535}]
    assert "skipped: '4/4 - 0s - 20ms/step - accuracy: 0.6250" in parsed.warnings[-1]
    # Keras 3 without validation: the last progress line, a callback message, then the final line.
    keras3 = ("Epoch 1/1\n4/4 ━━━━ 0s 9ms/step - loss: 0.7600\nEpoch 1: saving model to m.keras\n"
              "4/4 ━━━━ 1s 100ms/step - loss: 0.7535\n")
    assert [r["loss"] for r in parse_log(keras3).rows()] == [0.7535]


def test_a_progress_line_of_a_dataset_of_unknown_size_is_not_an_epochs_end():
    truncated = "Epoch 1/2\n10/10 ━━━━ 1s 50ms/step - loss: 0.5000\nEpoch 2/2\n5/Unknown 1s 50ms/step - loss: 0.4000\n"
    parsed = parse_log(truncated)
    assert [r["epoch"] for r in parsed.rows()] == [1] and "no final metrics line" in parsed.warnings[-1]


def test_a_utf16_log_from_powershell_is_read():
    text = "Epoch 1/1\r\n1/1 - loss: 0.5 - accuracy: 0.75\r\n"
    for encoding in ("utf-16", "utf-16-be"):
        data = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
        assert parse_log_bytes(data).rows() == [{"epoch": 1, "loss": 0.5, "accuracy": 0.75}]


def test_an_epoch_column_or_metric_is_the_epoch_number_not_a_metric():
    parsed = parse_log(json.dumps({"epoch": [0, 1, 2], "loss": [0.9, 0.8, 0.7]}))
    assert parsed.columns == ["epoch", "loss"] and [r["epoch"] for r in parsed.rows()] == [1, 2, 3]
    assert len(parse_log("Epoch 1/2\n1/1 - loss: 0.9 - epoch: 7\nEpoch 2/2\n1/1 - loss: 0.8 - epoch: 7\n")
               .rows()) == 2


@pytest.mark.parametrize("history, where", [({"loss": [0.5, "abc"]}, 'loss[1] is "abc"'),
                                            ({"loss": [[0.5], 0.3]}, "loss[0] is [0.5]")])
def test_history_json_with_a_value_that_is_not_a_number_gets_a_message(history, where):
    with pytest.raises(EipvizError, match=re.escape(where)):
        parse_log(json.dumps(history))


@pytest.mark.parametrize("bad, message", [
    (b"", "empty"), (b"\x00\x01\x02binary", "binary"), (b"epoch,loss\n", "No epochs"),
    (b"just some words\nand more words\n" * 1000, "No epochs"), (b"{not json", "not valid"),
    (b"epoch,loss\n1e999,0.5\n", "a row is malformed"),  # an infinite epoch: OverflowError, found by fuzzing
])
def test_unparseable_input_gets_a_clear_message(bad, message):
    with pytest.raises(EipvizError, match=message):
        parse_log_bytes(bad)


def test_a_log_with_only_nan_still_parses():
    parsed = parse_log("Epoch 1/1\n1/1 - loss: nan - accuracy: nan\n")
    assert math.isnan(parsed.rows()[0]["loss"])


# -- guards the mutation review of 2026-11-27 found untested ---------------------------------------------------------


def test_keras3_progress_updates_without_validation_are_not_the_epochs_values():
    bar = "━" * 20
    text = ("Epoch 1/2\n"
            f"\r  1/100 {bar} 10s 100ms/step - accuracy: 0.1000 - loss: 2.3000"
            f"\r 50/100 {bar} 0s 10ms/step - accuracy: 0.5000 - loss: 1.5000"
            f"\r100/100 {bar} 1s 10ms/step - accuracy: 0.7000 - loss: 1.0000\n"
            "Epoch 2/2\n"
            f"\r  1/100 {bar} 1s 10ms/step - accuracy: 0.7100 - loss: 0.9000"
            f"\r100/100 {bar} 1s 10ms/step - accuracy: 0.8000 - loss: 0.6000\n")
    parsed = parse_log(text)
    assert parsed.epochs == {1: {"accuracy": 0.7, "loss": 1.0}, 2: {"accuracy": 0.8, "loss": 0.6}}
    assert parsed.warnings == []


def test_a_line_without_a_loss_is_no_epoch_in_a_log_without_headers():
    parsed = parse_log("1875/1875 - 5s - loss: 0.30 - accuracy: 0.91\n"
                       "1875/1875 - 5s - loss: 0.20 - accuracy: 0.94\n"
                       "evaluation - accuracy: 0.9512\n")
    assert sorted(parsed.epochs) == [1, 2]


def test_an_evaluate_line_before_epoch_1_is_skipped_not_epoch_0():
    parsed = parse_log("313/313 - 1s - loss: 2.3026 - accuracy: 0.1000\n"
                       "Epoch 1/2\n1875/1875 - 5s - loss: 0.30 - accuracy: 0.91\n"
                       "Epoch 2/2\n1875/1875 - 5s - loss: 0.20 - accuracy: 0.94\n")
    assert sorted(parsed.epochs) == [1, 2]
    assert any("skipped" in warning and "2.3026" in warning for warning in parsed.warnings)


def test_a_rate_announced_for_an_epoch_that_never_finished_is_dropped():
    parsed = parse_log("Epoch 1/2\n1875/1875 - 5s - loss: 0.30\n"
                       "Epoch 2/2\nEpoch 2: LearningRateScheduler setting learning rate to 0.05.\n")
    assert parsed.learning_rates == {} and parsed.columns == ["epoch", "loss"]


def test_keras3_colours_pasted_without_their_escape_character_are_dropped():
    """Kaggle and GitHub pages keep ``[1m469/469[0m`` of Keras 3's coloured bar but not the escape character;
    the line under ``Epoch 1/3`` once split that header in two, and every progress line became an epoch."""
    bar = "[32m━━━━━━━━━━━━━━━━━━━━[0m[37m[0m"
    text = ("Epoch 1/2\n[1m100/469[0m [32m━━━━[0m[37m━━━━[0m [1m2s[0m 8ms/step - accuracy: 0.5000 - loss: 0.9000\n"
            f"[1m469/469[0m {bar} [1m5s[0m 8ms/step - accuracy: 0.8012 - loss: 0.6512 - val_accuracy: 0.9500 "
            f"- val_loss: 0.1700\nEpoch 2/2\n[1m469/469[0m {bar} [1m3s[0m 7ms/step - accuracy: 0.9500 - "
            f"loss: 0.1600 - val_accuracy: 0.9600 - val_loss: 0.1300\n")
    parsed = parse_log(text)
    assert [(r["epoch"], r["loss"], r["val_loss"]) for r in parsed.rows()] == [(1, 0.6512, 0.17), (2, 0.16, 0.13)]
    assert parsed.warnings == []


def test_a_header_followed_by_a_bracketed_line_keeps_its_epoch():
    log = ("Epoch 1/2\n469/469 - 5s - loss: 0.6512\nEpoch 2/2\n[INFO] 2024-05-01 12:00:01 starting epoch 2\n"
           "469/469 - 3s - loss: 0.1600\n")
    assert [r["loss"] for r in parse_log(log).rows()] == [0.6512, 0.16]


def test_an_evaluate_line_after_keras2s_early_stopping_message_is_not_the_last_epoch():
    """tf.keras 2 prints callback messages after the epoch's final line, Keras 3 before it."""
    bar = "[==============================]"
    log = (f"Epoch 2/20\n1875/1875 {bar} - 5s 3ms/step - loss: 0.1400\nEpoch 3/20\n"
           f"1875/1875 {bar} - 5s 3ms/step - loss: 0.1450\nEpoch 00003: early stopping\n"
           f"1875/1875 {bar} - 4s 2ms/step - loss: 0.0950\n")
    parsed = parse_log(log)
    assert [r["loss"] for r in parsed.rows()] == [0.14, 0.145]
    assert "skipped: '1875/1875 [=====" in parsed.warnings[-1]


def test_tf_keras_2_0_schedulers_reducing_wording_gives_the_rates():
    log = "".join(f"\nEpoch {e:05d}: LearningRateScheduler reducing learning rate to {lr}.\nEpoch {e}/2\n"
                  f"500/500 [==============================] - 7s 14ms/step - loss: {lr * 100}\n"
                  for e, lr in ((1, 0.001), (2, 0.0005)))
    assert [r["lr"] for r in parse_log(log).rows()] == [0.001, 0.0005]


def test_history_json_of_fit_with_validation_freq_puts_the_validation_values_on_their_epochs():
    parsed = parse_log(json.dumps({"loss": [1.0, 0.9, 0.8, 0.7, 0.6], "val_loss": [2.0, 1.5]}))
    assert [r["val_loss"] for r in parsed.rows()] == [None, 2.0, None, 1.5, None]
    assert parsed.warnings == ["val_loss: 2 values for 5 epochs, read as validated every 2 epochs "
                               "(fit's validation_freq=2)."]
    unknown = parse_log(json.dumps({"loss": [1.0, 0.9, 0.8, 0.7], "val_loss": [2.0]}))  # every 3 or 4 epochs
    assert unknown.columns == ["epoch", "loss"] and "val_loss: fewer values" in unknown.warnings[0]


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csvlogger_file_with_another_separator_is_read(separator):
    text = f"epoch{separator}loss{separator}val_loss\n0{separator}0.9{separator}1.1\n1{separator}0.7{separator}0.8\n"
    assert parse_log(text).rows() == [{"epoch": 1, "loss": 0.9, "val_loss": 1.1},
                                      {"epoch": 2, "loss": 0.7, "val_loss": 0.8}]


@pytest.mark.parametrize("text", [",loss,val_loss\n0,0.9,1.1\n1,0.7,0.8\n",  # DataFrame(history.history).to_csv()
                                  "loss,val_loss\n0.9,1.1\n0.7,0.8\n"])  # ... with index=False
def test_a_pandas_dump_of_the_history_is_read_as_one_row_per_epoch(text):
    assert parse_log(text).rows() == [{"epoch": 1, "loss": 0.9, "val_loss": 1.1},
                                      {"epoch": 2, "loss": 0.7, "val_loss": 0.8}]


def test_a_printed_history_is_read_like_its_json():
    printed = "{'loss': [np.float64(0.9), np.float64(nan)], 'val_loss': [np.float32(-inf), 0.5], 'lr': [0.1, 0.01]}"
    rows = parse_log(printed).rows()
    assert rows[0] == {"epoch": 1, "loss": 0.9, "val_loss": -math.inf, "lr": 0.1}
    assert math.isnan(rows[1]["loss"]) and rows[1]["val_loss"] == 0.5 and rows[1]["lr"] == 0.01


@pytest.mark.parametrize("text", ["Name,State,Runtime,loss,accuracy\nrun1,finished,100,0.5,0.8\n",  # W&B runs table
                                  "step,Epoch,loss\n0,0,0.9\n1,1,0.8\n", "step,loss\n0,0.9\n1,0.8\n"])
def test_other_csvs_with_a_loss_column_are_not_taken_for_a_pandas_history(text):
    with pytest.raises(EipvizError, match="No epochs found"):
        parse_log(text)
