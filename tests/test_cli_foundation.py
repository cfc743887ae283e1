from tests.conftest import main_in_process, run_cli


def test_models_lists_every_model_with_matching_counts():
    out = main_in_process("models").stdout
    for name in ("resnet18", "sepconv59k", "mnist14k", "sepconv65k", "resnet20v1"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert "True" in line.split()
    assert "11192458" in out and "99.46%" in out


def test_summary_csv_has_the_receptive_field_columns():
    lines = main_in_process("summary", "sepconv65k", "--format", "csv").stdout.splitlines()
    assert lines[0] == "layer,type,output_shape,kernel,stride,dilation,jump,rf,documented_rf,rf_differs,params"
    row = next(line for line in lines if line.startswith("sepconv7,"))
    assert ",34,34,False," in row


def test_unknown_model_is_a_message_not_a_traceback():
    result = run_cli("summary", "vgg16", check=False)
    assert result.returncode == 2
    assert "Unknown model 'vgg16'" in result.stderr and "Traceback" not in result.stderr
