"""The OpenAPI document builds without a single warning (`manage.py spectacular --fail-on-warn`, as CI runs it):
a warning means a client generator gets a wrong or ambiguous schema, for example two authentication classes
registered under one security scheme name."""

from __future__ import annotations

import io

import yaml
from django.core.management import call_command
from drf_spectacular.drainage import reset_generator_stats


def test_the_schema_builds_without_warnings_and_names_one_token_scheme(tmp_path):
    # Given no warnings counted by an earlier schema build in this process
    reset_generator_stats()

    # When the schema is generated with warnings as failures, and validated
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out), stderr=io.StringIO())

    # Then it was written, and the API token is one security scheme: `Authorization: Token <key>`
    schema = yaml.safe_load(out.read_text())
    schemes = schema["components"]["securitySchemes"]
    assert (schemes["tokenAuth"]["in"], schemes["tokenAuth"]["name"]) == ("header", "Authorization")
    assert 'prefix "Token"' in schemes["tokenAuth"]["description"]
    assert sorted(schemes) == ["cookieAuth", "tokenAuth"]


def test_the_next_item_is_documented_with_its_query_parameters_and_the_shape_it_answers(tmp_path):
    # When the schema is generated
    reset_generator_stats()
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--file", str(out), stderr=io.StringIO())
    schema = yaml.safe_load(out.read_text())

    # Then GET /next/ names the two query parameters the view reads, and its suggestions and prefetch entries have
    # the fields the view writes (they were free-form objects, and the parameters undocumented)
    operation = next(op["get"] for path, op in schema["paths"].items() if path.endswith("/next/"))
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {"suggest", "prefetch"}
    components = schema["components"]["schemas"]
    assert set(components["QueueSuggestion"]["properties"]) == {"class_id", "name", "probability"}
    assert set(components["QueuePrefetch"]["properties"]) == {"id", "thumb_url", "original_url"}


def test_fields_an_annotator_does_not_get_are_documented_as_optional(tmp_path):
    # When the schema is generated
    reset_generator_stats()
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out), stderr=io.StringIO())
    components = yaml.safe_load(out.read_text())["components"]["schemas"]

    # Then an item's labels and a job's result are not required (an annotator's answer has neither: a client
    # generated from the schema would refuse it), and say for whom they are; the fields everyone gets stay required
    item = next(c for name, c in components.items() if name.startswith("ItemOutput"))
    job = next(c for name, c in components.items() if name.startswith("JobOutput"))
    assert not {"labels", "label_source", "state", "is_gold"} & set(item.get("required", []))
    assert not {"result", "errors", "error_count", "download_url"} & set(job.get("required", []))
    assert {"id", "original_url"} <= set(item["required"])
    assert "an annotator's answer leaves it out" in item["properties"]["labels"]["description"]
