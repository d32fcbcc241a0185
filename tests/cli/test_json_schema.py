"""Each command's --json output, success and failure, against the JSON Schema shipped in the
package (sigchain/schemas/COMMAND.json), and the schema's keys against the command's."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

from sigchain.cli import keygen as keygen_cmd
from sigchain.cli import sign as sign_cmd
from sigchain.cli import verify as verify_cmd
from tests.conftest import EXAMPLE_ZONE, sc

SCHEMAS = resources.files("sigchain") / "schemas"


def _schema(name: str) -> tuple[dict, Registry]:
    docs = {p.name: json.loads(p.read_text()) for p in SCHEMAS.iterdir() if p.name.endswith(".json")}
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in docs.values()
    )
    return docs[f"{name}.json"], registry


def _check(command: str, *args: object, code: int) -> dict:
    proc = sc(command, *args, "--json")
    assert proc.returncode == code, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    schema, registry = _schema(command)
    jsonschema.Draft202012Validator(schema, registry=registry).validate(data)
    return data


@pytest.mark.parametrize("command, keys", [
    ("sign", sign_cmd.JSON_KEYS), ("verify", verify_cmd.JSON_KEYS), ("keygen", keygen_cmd.JSON_KEYS),
    ("ds", ("records",)),
])
def test_schema_lists_the_commands_keys(command: str, keys: tuple[str, ...]) -> None:
    schema, _ = _schema(command)
    (full,) = [s for s in schema["oneOf"] if "required" in s]
    assert set(full["required"]) == {*keys, "error"} == set(full["properties"])


def test_sign_and_verify_outputs_match_their_schemas(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    ok = _check("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--nsec3", "--salt", "AB", code=0)
    schema, registry = _schema("sign")
    for key, bad in (("denial", "-"), ("resign_at", ""), ("extra", 1)):
        with pytest.raises(jsonschema.ValidationError):  # the schema does catch what it must
            jsonschema.Draft202012Validator(schema, registry=registry).validate({**ok, key: bad})
    _check("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--inception", "now+1d", code=4)
    failed = _check("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "t", "--force",
                    "--inception", "now-30d", "--validity", "7d", code=4)
    assert failed["findings"]
    _check("sign", "--bogus", code=2)
    _check("verify", out, code=0)
    assert _check("verify", out, "--at", "now+60d", code=1)["errors"] > 0
    _check("verify", tmp_path / "missing", code=2)


def test_ds_and_keygen_outputs_match_their_schemas(tmp_path: Path) -> None:
    made = _check("keygen", "example.test", "--role", "ksk", "--dir", tmp_path, code=0)
    _check("keygen", "example.test", "--role", "ksk", "-a", "nosuch", "--dir", tmp_path, code=2)
    _check("ds", made["files"]["key"], "--cds", "--cdnskey", code=0)
    _check("ds", tmp_path / "missing.key", code=2)
