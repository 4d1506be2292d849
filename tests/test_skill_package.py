"""The skill package: interaction models, manifest, ask-cli resources and the build command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from skill import package
from skill.cli_commands import skill_package_group
from skill.intents import ALL as INTENTS

ROOT = Path(__file__).resolve().parent.parent
SMAPI_SPEC = ROOT / "tests" / "e2e" / "node_modules" / "ask-smapi-model" / "spec.json"
KIDS_CATEGORIES = {
    "CHILDRENS_EDUCATION_AND_REFERENCE",
    "CHILDRENS_GAMES",
    "CHILDRENS_MUSIC_AND_AUDIO",
    "CHILDRENS_NOVELTY_AND_HUMOR",
}
BUILT_INS = {
    "AMAZON.YesIntent",
    "AMAZON.NoIntent",
    "AMAZON.NextIntent",
    "AMAZON.RepeatIntent",
    "AMAZON.StartOverIntent",
    "AMAZON.PauseIntent",
    "AMAZON.ResumeIntent",
    "AMAZON.HelpIntent",
    "AMAZON.StopIntent",
    "AMAZON.CancelIntent",
    "AMAZON.FallbackIntent",
    "AMAZON.NavigateHomeIntent",
}


@pytest.fixture(scope="module")
def smapi_definitions() -> dict:
    """Component schemas of the SMAPI OpenAPI spec shipped by npm ask-smapi-model."""
    if not SMAPI_SPEC.exists():
        if os.environ.get("BEDTIME_REQUIRE_E2E") == "1":
            pytest.fail(f"{SMAPI_SPEC} is missing: run `npm ci` in tests/e2e")
        pytest.skip("ask-smapi-model not installed: run `npm ci` in tests/e2e")
    return json.loads(SMAPI_SPEC.read_text())["definitions"]


def smapi_errors(definitions: dict, name: str, document: dict) -> list[str]:
    from jsonschema import Draft4Validator

    schema = {"$ref": f"#/definitions/{name}", "definitions": definitions}
    validator = Draft4Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@pytest.fixture(scope="module")
def models() -> dict[str, dict]:
    return {locale: package.load_seed_model(locale) for locale in package.LOCALES}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return package.load_json(package.MANIFEST_PATH)


CATALOGUE = [
    ("dragon", ["wyrm"]),
    ("zebra", ["stripy horse"]),
    ("rabbit", []),
    ("teddy bear", ["teddies"]),
    ("sheep", []),
]


@pytest.mark.parametrize("locale", package.LOCALES)
def test_checked_in_models_match_the_smapi_schema(smapi_definitions, models, locale):
    errors = smapi_errors(
        smapi_definitions, "v1.skill.interactionModel.InteractionModelData", models[locale]
    )
    assert errors == []


@pytest.mark.parametrize("locale", package.LOCALES)
def test_built_models_match_the_smapi_schema(smapi_definitions, models, locale):
    merged = package.merge_keyword_values(models[locale], CATALOGUE)
    errors = smapi_errors(
        smapi_definitions, "v1.skill.interactionModel.InteractionModelData", merged
    )
    assert errors == []


def test_schema_check_catches_a_broken_model(smapi_definitions, models):
    broken = json.loads(json.dumps(models["en-US"]))
    broken["interactionModel"]["languageModel"]["types"][0]["values"][0]["name"]["synonyms"] = []
    del broken["interactionModel"]["languageModel"]["invocationName"]
    errors = smapi_errors(
        smapi_definitions, "v1.skill.interactionModel.InteractionModelData", broken
    )
    assert len(errors) == 2


def test_manifest_matches_the_smapi_schema(smapi_definitions, manifest):
    errors = smapi_errors(smapi_definitions, "v1.skill.Manifest.SkillManifestEnvelope", manifest)
    assert errors == []


@pytest.mark.parametrize("locale", package.LOCALES)
def test_models_follow_alexas_rules(models, locale):
    assert package.check_interaction_model(models[locale]) == []


@pytest.mark.parametrize("locale", package.LOCALES)
def test_voice_contract(models, locale):
    lm = package.language_model(models[locale])
    assert lm["invocationName"] == "bedtime stories"
    intents = {intent["name"]: intent for intent in lm["intents"]}
    # Every intent the handlers know (skill/intents.py), the built-ins we rely on among them.
    assert set(intents) == set(INTENTS) and set(intents) >= BUILT_INS
    tell = intents["TellStoryIntent"]
    assert {s["name"]: s["type"] for s in tell["slots"]} == {
        "keyword": "STORY_KEYWORD",
        "secondKeyword": "STORY_KEYWORD",
        "length": "STORY_LENGTH",
        "count": "AMAZON.NUMBER",
    }
    for sample in (
        "a {length} story about a {keyword}",
        "tell me {count} stories",
        "tell me a story",
        "a story about {keyword}",
        "surprise me",
        "tell me a story about {keyword} and {secondKeyword}",
        "read me a bedtime story about a {keyword}",
    ):
        assert sample in tell["samples"]
    assert "make up a new story about {keyword}" in intents["NewStoryIntent"]["samples"]
    assert "what stories do you have" in intents["ListTopicsIntent"]["samples"]
    assert "play {sound} for {duration}" in intents["SleepSoundIntent"]["samples"]
    lengths = next(t for t in lm["types"] if t["name"] == "STORY_LENGTH")["values"]
    assert {v["id"] for v in lengths} == {"short", "medium", "long"}
    values = lm["types"][0]["values"]
    assert lm["types"][0]["name"] == "STORY_KEYWORD" and len(values) >= 50
    assert all(v["id"] == v["name"]["value"] and v["name"]["synonyms"] for v in values)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Bedtime Stories", "lower case"),
        ("stories", "two words"),
        ("alexa stories", "alexa"),
        ("bedtime stories!", "letters"),
        ("tell bedtime stories", "launch phrase"),
    ],
)
def test_invocation_name_rules(name, fragment):
    assert any(fragment in problem for problem in package.check_invocation_name(name))


@pytest.mark.parametrize(
    ("sample", "fragment"),
    [
        ("a story about {animal}", "undefined slot"),
        ("tell me a story!", "punctuation"),
        ("Tell me a story", "upper case"),
        ("what stories do you have", "is also a sample of"),
        ("a " + "very " * 50 + "long story", "longer than 200"),
        ("about {keyword}{secondKeyword}", "no words between"),
        ("a story about {keyword} and {keyword}", "slot twice"),
        ("tell me a story", "listed twice"),
    ],
)
def test_model_checks_catch_mistakes(models, sample, fragment):
    broken = json.loads(json.dumps(models["en-US"]))
    package.language_model(broken)["intents"][0]["samples"].append(sample)
    problems = package.check_interaction_model(broken)
    assert any(fragment in problem for problem in problems), problems


def test_duplicate_synonym_across_values_is_caught(models):
    broken = json.loads(json.dumps(models["en-US"]))
    values = package.language_model(broken)["types"][0]["values"]
    values[1]["name"]["synonyms"].append(values[0]["name"]["synonyms"][0])
    assert any("belongs to" in p for p in package.check_interaction_model(broken))


def test_example_phrases_come_from_the_samples(manifest, models):
    assert package.check_example_phrases(manifest, models) == []
    for info in manifest["manifest"]["publishingInformation"]["locales"].values():
        assert 1 <= len(info["examplePhrases"]) <= 3


def test_example_phrase_that_matches_no_sample_is_caught(manifest, models):
    changed = json.loads(json.dumps(manifest))
    changed["manifest"]["publishingInformation"]["locales"]["en-US"]["examplePhrases"].append(
        "Alexa, ask bedtime stories to sing a song"
    )
    problems = package.check_example_phrases(changed, models)
    assert problems == [
        "en-US: example phrase 'Alexa, ask bedtime stories to sing a song' "
        "matches no sample utterance"
    ]


def test_manifest_publishing_and_privacy(manifest):
    m = manifest["manifest"]
    publishing = m["publishingInformation"]
    assert set(publishing["locales"]) == set(package.LOCALES)
    assert publishing["category"] in KIDS_CATEGORIES
    for info in publishing["locales"].values():
        assert info["name"] == "Bedtime Stories"
        assert 0 < len(info["summary"]) <= 160 and len(info["description"]) > 200
        assert info["keywords"]
    privacy = m["privacyAndCompliance"]
    assert {
        key: privacy[key]
        for key in (
            "isChildDirected",
            "containsAds",
            "usesPersonalInfo",
            "allowsPurchases",
            "isExportCompliant",
        )
    } == {
        "isChildDirected": True,
        "containsAds": False,
        "usesPersonalInfo": False,
        "allowsPurchases": False,
        "isExportCompliant": True,
    }
    custom = m["apis"]["custom"]
    assert custom["endpoint"]["uri"] == package.PLACEHOLDER_ENDPOINT
    assert [i["type"] for i in custom["interfaces"]] == ["AUDIO_PLAYER", "ALEXA_PRESENTATION_APL"]


def test_ask_resources_point_at_the_package_and_the_lambda_shim():
    resources = json.loads((ROOT / "ask-resources.json").read_text())
    profile = resources["profiles"]["default"]
    assert profile["skillMetadata"]["src"] == "./skill-package"
    assert profile["code"]["default"]["src"] == "./build/lambda"
    infra = profile["skillInfrastructure"]
    assert infra["type"] == "@ask-cli/lambda-deployer"
    assert infra["userConfig"]["runtime"] == "python3.11"
    assert infra["userConfig"]["handler"] == "lambda_function.lambda_handler"


def test_merge_adds_catalogue_keywords_without_clashes(models):
    merged = package.merge_keyword_values(models["en-US"], CATALOGUE)
    values = {
        v["id"]: v["name"]["synonyms"] for v in package.language_model(merged)["types"][0]["values"]
    }
    assert "wyrm" in values["dragon"] and "dragons" in values["dragon"]
    assert values["zebra"] == ["zebras", "stripy horse"]
    assert "rabbit" in values and "rabbit" not in values["bunny"]
    assert "teddy bear" in values and "teddy bear" not in values["bear"]
    assert values["sheep"] == ["lamb", "lambs"]
    assert package.check_interaction_model(merged) == []
    # the checked-in model itself is left alone
    assert "zebra" not in {
        v["id"] for v in package.language_model(models["en-US"])["types"][0]["values"]
    }


def test_merge_gives_every_new_value_a_synonym(models):
    merged = package.merge_keyword_values(models["en-US"], [("sheep dog!", []), ("", ["x"])])
    values = {
        v["id"]: v["name"]["synonyms"] for v in package.language_model(merged)["types"][0]["values"]
    }
    assert values["sheep dog"] == ["sheep dogs"]
    assert "" not in values


def test_build_writes_an_ask_cli_v2_package(tmp_path):
    written = package.build_skill_package(
        tmp_path / "skill-package", CATALOGUE, endpoint="https://example.org/alexa"
    )
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == [
        "skill-package/interactionModels/custom/" + f"{loc}.json" for loc in sorted(package.LOCALES)
    ] + ["skill-package/skill.json"]
    skill_json = json.loads((tmp_path / "skill-package" / "skill.json").read_text())
    assert skill_json["manifest"]["apis"]["custom"]["endpoint"] == {
        "uri": "https://example.org/alexa",
        "sslCertificateType": "Trusted",
    }
    model = json.loads((tmp_path / "skill-package/interactionModels/custom/en-GB.json").read_text())
    ids = {v["id"] for v in package.language_model(model)["types"][0]["values"]}
    assert {"zebra", "dragon", "teddy bear"} <= ids


def test_build_accepts_a_lambda_arn(tmp_path):
    package.build_skill_package(
        tmp_path, [], endpoint="arn:aws:lambda:us-east-1:123456789012:function:bedtime"
    )
    endpoint = json.loads((tmp_path / "skill.json").read_text())["manifest"]["apis"]["custom"][
        "endpoint"
    ]
    assert endpoint == {"uri": "arn:aws:lambda:us-east-1:123456789012:function:bedtime"}


def test_build_refuses_a_bad_endpoint(tmp_path):
    with pytest.raises(package.SkillPackageError, match="https"):
        package.build_skill_package(tmp_path, [], endpoint="http://example.org/alexa")


def test_build_refuses_an_invalid_model(tmp_path, models):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    for locale, model in models.items():
        broken = json.loads(json.dumps(model))
        package.language_model(broken)["intents"][0]["samples"].append("about {animal}")
        (models_dir / f"{locale}.json").write_text(json.dumps(broken))
    with pytest.raises(package.SkillPackageError, match="undefined slot"):
        package.build_skill_package(tmp_path / "out", [], models_dir=models_dir)
    assert not (tmp_path / "out").exists()


def test_cli_build_seed_only(tmp_path, monkeypatch):
    monkeypatch.delenv("BEDTIME_ENDPOINT_URI", raising=False)
    out = tmp_path / "pkg"
    result = CliRunner().invoke(skill_package_group, ["build", "--seed-only", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Warning: no --endpoint" in result.output  # skill.json keeps the placeholder
    assert f"wrote {len(package.LOCALES) + 1} files" in result.output  # models + skill.json
    assert (out / "interactionModels" / "custom" / "en-IN.json").exists()


def test_cli_build_reads_the_catalogue(tmp_path, monkeypatch):
    from db.catalogue import load_starter_catalogue
    from db.engine import make_engine, session_factory, upgrade_database

    url = f"sqlite:///{tmp_path / 'bedtime.sqlite3'}"
    engine = make_engine(url)
    upgrade_database(engine)
    with session_factory(engine)() as session:
        load_starter_catalogue(session)
        session.commit()
    engine.dispose()
    monkeypatch.setenv("BEDTIME_DATABASE_URL", url)
    out = tmp_path / "pkg"
    result = CliRunner().invoke(skill_package_group, ["build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "0 catalogue keywords" not in result.output
    model = json.loads((out / "interactionModels" / "custom" / "en-US.json").read_text())
    ids = {v["id"] for v in package.language_model(model)["types"][0]["values"]}
    assert {"dragon", "kite", "whale", "moon"} <= ids


def test_cli_check():
    result = CliRunner().invoke(skill_package_group, ["check"])
    assert result.exit_code == 0, result.output


def test_cli_build_takes_the_endpoint_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BEDTIME_ENDPOINT_URI", "https://stories.example.net/alexa")
    out = tmp_path / "pkg"
    result = CliRunner().invoke(skill_package_group, ["build", "--seed-only", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    manifest = json.loads((out / "skill.json").read_text())
    assert manifest["manifest"]["apis"]["custom"]["endpoint"]["uri"] == (
        "https://stories.example.net/alexa"
    )


def test_cli_build_explains_an_unreachable_database(tmp_path, monkeypatch):
    monkeypatch.setenv("BEDTIME_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:1/nothing")
    result = CliRunner().invoke(skill_package_group, ["build", "--out", str(tmp_path / "pkg")])
    assert result.exit_code == 1
    assert "--seed-only" in result.output
    assert not (tmp_path / "pkg").exists()


def test_lambda_bundle_imports_the_shim_on_its_own(tmp_path):
    """ask deploy uploads only the bundle, so the shim must import from it alone."""
    bundle = tmp_path / "lambda"
    package.build_lambda_bundle(bundle)
    assert (bundle / "lambda_function.py").is_file()
    assert (bundle / "requirements.txt").is_file()
    assert not (bundle / "generator").exists()
    # Lambda cannot write bytecode at run time: the bundle carries it, for every module.
    tag = sys.implementation.cache_tag
    assert (bundle / "skill" / "__pycache__" / f"conversation.{tag}.pyc").is_file()
    assert (bundle / "__pycache__" / f"lambda_function.{tag}.pyc").is_file()
    code = (
        "import sys, lambda_function; "
        "assert lambda_function.__file__.startswith(sys.argv[1]); "
        "assert callable(lambda_function.lambda_handler); "
        "assert 'torch' not in sys.modules; "
        # every one of our packages the skill imports must come from the bundle, not this repo
        "import safety.requests, settings, db.store; "
        "ours = [m for n, m in sys.modules.items() if n.split('.')[0] in "
        "('skill', 'db', 'safety', 'settings', 'migrations') and getattr(m, '__file__', None)]; "
        "outside = [m.__name__ for m in ours if not m.__file__.startswith(sys.argv[1])]; "
        "assert not outside, outside"
    )
    env = {
        **os.environ,
        "BEDTIME_DATABASE_URL": f"sqlite:///{tmp_path / 'lambda.sqlite3'}",
        "PYTHONPATH": str(bundle),
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(bundle)],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
