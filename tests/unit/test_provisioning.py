"""The AWS IAM policy shipped for the provisioning guide (README, 'Provisioning your bucket')."""

from __future__ import annotations

import json

from conftest import ROOT

POLICY = ROOT / "provisioning" / "aws-iam-policy.json"


def rendered(bucket: str = "my-bucket", folder: str = "jupyterlab/alice") -> dict:
    """The policy as the README's `sed` line makes it."""
    return json.loads(POLICY.read_text().replace("<BUCKET>", bucket).replace("<FOLDER>", folder))


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_the_policy_parses_and_has_only_the_placeholders_to_fill():
    text = POLICY.read_text()
    json.loads(text)
    assert "<BUCKET>" in text and "<FOLDER>" in text
    assert "<" not in json.dumps(rendered())


def test_the_policy_allows_only_what_syncing_needs_and_only_in_the_folder():
    policy = rendered()
    assert policy["Version"] == "2012-10-17"
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        statement_actions = as_list(statement["Action"])
        actions.update(statement_actions)
        resources = as_list(statement["Resource"])
        if statement_actions == ["s3:ListBucket"]:
            # Listing is a bucket-level right: limited by the prefix condition to the folder.
            assert resources == ["arn:aws:s3:::my-bucket"]
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            assert set(prefixes) == {"jupyterlab/alice", "jupyterlab/alice/*"}
            assert set(statement["Condition"]) == {"StringLike"}
        else:
            assert set(statement_actions) <= {"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                              "s3:AbortMultipartUpload"}
            assert resources == ["arn:aws:s3:::my-bucket/jupyterlab/alice/*"]
    # AbortMultipartUpload: rclone aborts a large upload it cancels or that fails, so no parts stay billed.
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    assert "*" not in "".join(actions)


LIFECYCLE = ROOT / "provisioning" / "aws-s3-lifecycle.json"


def test_the_lifecycle_rule_aborts_incomplete_uploads_of_the_whole_bucket():
    rules = json.loads(LIFECYCLE.read_text())["Rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}
    # A day: far longer than any upload takes (5 GB at SaladCloud's 10th-percentile uplink: 17 minutes).
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
