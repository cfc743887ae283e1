"""The log parser on real logs as people pasted them (tests/data/real_logs/), values checked by hand."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eipviz.keraslog import parse_log

REAL_LOGS = Path(__file__).resolve().parent / "data" / "real_logs"


@dataclass
class RealLog:
    file: str
    source: str  # where the text was pasted
    epochs: list[int]
    values: dict = field(default_factory=dict)  # (epoch, column) -> value, read off the text by hand
    warns: tuple[str, ...] = ()  # fragments the parser's warnings must contain; none when empty


CORPUS = [
    RealLog("keras_8680_mid_run.txt", "https://github.com/keras-team/keras/issues/8680",
            list(range(39, 49)), {(39, "val_acc"): 0.7737, (45, "val_acc"): 0.7906, (48, "loss"): 0.7610}),
    RealLog("ssd_keras_47_verbose2_quoted.txt", "https://github.com/pierluigiferrari/ssd_keras/issues/47",
            list(range(37, 49)), {(37, "val_loss"): 1.7122, (41, "val_loss"): 1.6461, (48, "loss"): 1.3719}),
    RealLog("ssd_keras_344_scheduler.txt", "https://github.com/pierluigiferrari/ssd_keras/issues/344",
            list(range(26, 32)), {(26, "loss"): 3.6317, (31, "val_loss"): 3.4307, (29, "lr"): 0.001}),
    RealLog("rstudio_keras3_296_backtick.txt", "https://github.com/rstudio/keras3/issues/296",
            list(range(1, 10)), {(1, "loss"): 0.1583, (1, "acc"): 0.0, (7, "val_loss"): 0.0069}),
    RealLog("locator_23_eta_callbacks.txt", "https://github.com/kr-colab/locator/issues/23",
            list(range(86, 91)), {(86, "loss"): 0.1033, (86, "val_loss"): 0.2777, (90, "val_loss"): 0.2793,
                                  (87, "lr"): 0.0001250000059371814}),
    RealLog("magpie_183_top_k.txt", "https://github.com/inspirehep/magpie/issues/183",
            list(range(1, 8)), {(1, "loss"): 0.6284, (7, "val_loss"): 0.3898,
                                (4, "val_top_k_categorical_accuracy"): 1.0}),
    RealLog("keras_2937_no_first_header.txt", "https://github.com/keras-team/keras/issues/2937",
            list(range(1, 11)), {(1, "val_acc"): 0.5161, (2, "loss"): 1.3731, (10, "val_acc"): 0.7464},
            warns=("starts mid-run", "epoch 1 (a guess)")),
    RealLog("rmdl_12_verbose2.txt", "https://github.com/kk7nc/RMDL/issues/12",
            list(range(278, 285)), {(278, "loss"): 14.5063, (284, "val_acc"): 0.1}),
    RealLog("sbb_segmentation_25_tf29.txt", "https://github.com/qurator-spk/sbb_pixelwise_segmentation/pull/25",
            [1, 2], {(1, "val_accuracy"): 0.8679, (2, "lr"): 8.5968e-06, (2, "loss"): 0.5898},
            warns=("no final metrics line", "'Epoch 3/50'")),
    RealLog("keras_20323_keras3_early_stopping.txt", "https://github.com/keras-team/keras/issues/20323",
            list(range(1, 9)), {(1, "loss"): 270.5954, (6, "loss"): 33.2164, (8, "lr"): 0.1}),
    RealLog("mnrmja007_keras_readme_eta_runs_into_callback.md",
            "https://github.com/mnrmja007/keras/blob/28b01814adc6547332c182bd55063263e4ddfac5/README.md",
            list(range(1, 21)), {(1, "val_acc"): 0.9432, (10, "val_loss"): 0.0615, (16, "val_acc"): 0.9851,
                                 (20, "loss"): 0.0187},
            warns=("2 trainings", "only the last one")),  # two highlighted epochs, then the whole log
    RealLog("kanji_three_fit_calls.txt",
            "https://github.com/KyotoSunshine/CNN-for-handwritten-kanji/blob/68c1633c85615ff38eb1e01ecfbdc387fd03d98d/"
            "logs/model_for_augmented_dataset_training_log.py",
            list(range(1, 7)), {(1, "loss"): 0.0293, (6, "val_acc"): 0.9848}, warns=("3 trainings",)),
    RealLog("snippet_rnn_sweep_two_models.txt",
            "https://github.com/derekchen14/snippet_rnn/blob/e17af56943b7848ef86d3e2dd6428dcba797c181/"
            "results/0508_results.rb",
            list(range(1, 16)), {(1, "loss"): 2.6021, (6, "val_acc"): 0.5025, (15, "val_loss"): 1.9315},
            warns=("2 trainings",)),
]


def test_the_corpus_lists_every_file_once():
    files = sorted(p.name for p in REAL_LOGS.iterdir() if p.name != "README.md")
    assert sorted(log.file for log in CORPUS) == files and len(files) >= 12


@pytest.mark.parametrize("log", CORPUS, ids=lambda log: log.file)
def test_real_log_parses_to_the_hand_checked_epochs_and_values(log):
    parsed = parse_log((REAL_LOGS / log.file).read_text())
    rows = {row["epoch"]: row for row in parsed.rows()}
    assert list(rows) == log.epochs
    for (epoch, column), value in log.values.items():
        assert rows[epoch][column] == pytest.approx(value), (epoch, column)
    text = " ".join(parsed.warnings)
    assert all(fragment in text for fragment in log.warns), parsed.warnings
    if not log.warns:
        assert parsed.warnings == []


def test_a_log_whose_line_breaks_were_lost_parses_like_the_original():
    """Pasted from a rendered web page, a whole log sits on one line."""
    original = (REAL_LOGS / "keras_8680_mid_run.txt").read_text()
    assert parse_log(" ".join(original.split("\n"))).rows() == parse_log(original).rows()


def test_a_metric_value_glued_to_the_next_callback_message_is_read_exactly():
    log = ("Epoch 16/20\n33000/33600 [======>.] - ETA: 0s - loss: 0.0216 - acc: 0.9933Epoch 00015: val_loss did "
           "not improve\n33600/33600 [==============================] - 2s - loss: 0.0219 - acc: 0.9932 - val_loss: "
           "0.0650 - val_acc: 0.9851Epoch 00016: val_loss did not improve\n")
    assert parse_log(log).rows() == [{"epoch": 16, "loss": 0.0219, "acc": 0.9932, "val_loss": 0.065,
                                      "val_acc": 0.9851}]


def test_keras3_progress_line_before_a_callback_message_gives_way_to_the_final_line():
    """Keras 3 prints the epoch's last progress line, then ModelCheckpoint's message, then the final line."""
    log = ("Epoch 2/100\n31/31 ━━━━━━━━━━━━━━━━━━━━ 0s 523ms/step - accuracy: 0.7318 - loss: 0.9459\n"
           "Epoch 2: val_accuracy improved from 0.22010 to 0.52153, saving model to best.keras\n"
           "31/31 ━━━━━━━━━━━━━━━━━━━━ 17s 562ms/step - accuracy: 0.7317 - loss: 0.9449 - val_accuracy: 0.5215 - "
           "val_loss: 1.3697 - learning_rate: 5.0000e-04\n"
           "313/313 ━━━━━━━━━━━━━━━━━━━━ 2s 7ms/step - accuracy: 0.9925 - loss: 0.0289\n")
    parsed = parse_log(log)
    assert parsed.rows() == [{"epoch": 2, "accuracy": 0.7317, "loss": 0.9449, "val_accuracy": 0.5215,
                              "val_loss": 1.3697, "lr": 0.0005}]
    assert "313/313" in " ".join(parsed.warnings)  # the evaluate() line is skipped, and said so
