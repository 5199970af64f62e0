"""Every rendered variant passes the npm asl-validator and is accepted by moto's Step Functions."""
import json
import subprocess

import boto3
import pytest
from moto import mock_aws

from lambda_pipeline.definition import VARIANTS, render_definition
from tests.helpers import REPO

VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_asl_validator_accepts_the_variant(variant, tmp_path):
    assert VALIDATOR.exists(), "run `make test` (it installs asl-validator with npm ci)"
    path = tmp_path / f"{variant}.asl.json"
    path.write_text(json.dumps(render_definition(**VARIANTS[variant])))
    result = subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_asl_validator_rejects_a_broken_definition(tmp_path):
    broken = render_definition()
    broken["States"]["Evaluate"]["Next"] = "NoSuchState"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
    assert result.returncode != 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_moto_step_functions_creates_the_variant(variant):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(name=f"sb-{variant}", definition=json.dumps(render_definition(**VARIANTS[variant])),
                                       roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
        described = sfn.describe_state_machine(stateMachineArn=arn)
        assert json.loads(described["definition"])["StartAt"] == "Initialize"
